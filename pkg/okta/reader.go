// Package okta reads Okta groups, their members and a user's groups through okta-sdk-golang/v2,
// for the reconciler, rename handling and user lifecycle events. Every read returns all pages or a
// *ReadError, never a partial answer.
//
// The SDK is wrapped rather than used directly because of quirks found in v2.20.0's source:
//   - NewClient layers ~/.okta/okta.yaml, then OKTA_CLIENT_* / OKTA_TESTING_* environment variables
//     over its defaults, and only then applies the ConfigSetters it was given. NewReader therefore
//     passes a setter for every field that affects where requests go and how (org URL, token,
//     authorization mode, cache, HTTPS check, retries, backoff, timeouts, HTTP client), so a stray
//     file or variable cannot redirect the token or change behaviour.
//   - With the cache enabled (its default) it serves GET responses from memory for 5 minutes:
//     renames would be read stale. It is disabled.
//   - It retries only 429, waiting X-Rate-Limit-Reset - Date + 1 seconds (capped by the max backoff),
//     and gives up without retrying when either header is missing. After the last retry it returns
//     a nil *Response, so the SDK's own paging (resp.Next) would panic on it.
//   - It splits a Link header on ";" only: a server or proxy that folds the self and next links into
//     one comma-separated header makes the "next" page the current page, an endless loop. Paging
//     here stops with an error when a next page repeats.
//   - A Link URL that does not parse makes it dereference nil. Calls into the SDK recover from
//     panics and return them as errors, so one bad answer cannot crash the reconciler.
//   - Its default HTTP client has no timeout (envconfig allocates an empty *http.Client before the
//     SDK's defaults would apply); the Reader always supplies its own.
package okta

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	oktasdk "github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"
)

// Group is an Okta group.
type Group struct {
	ID, Name string
	// UsersCount is Okta's member count of the group (`_embedded.stats.usersCount` of a listing
	// with expand=stats), taken when the group was listed. HasCount says whether Okta sent it; a
	// caller compares it with a member listing to notice a listing that came back short.
	UsersCount int
	HasCount   bool
}

// User is a member of an Okta group. Status is Okta's (ACTIVE, STAGED, DEPROVISIONED, …): group
// listings include members in every state, and deciding what a status means is the caller's job.
type User struct{ ID, Login, Status string }

// Defaults, each overridable with an Option.
const (
	// DefaultPageSize is the limit per page for groups and members. Okta advises at most 200 for
	// group listings; members pages accept more (WithPageSize).
	DefaultPageSize = 200
	// DefaultMaxRetries is how often one request is retried after a 429.
	DefaultMaxRetries = 3
	// DefaultMaxBackoff caps one wait for the rate-limit window (Okta's windows are one minute).
	DefaultMaxBackoff = 30 * time.Second
	// DefaultRequestTimeout bounds one page including its 429 waits.
	DefaultRequestTimeout = 2 * time.Minute
	// DefaultAttemptTimeout bounds one HTTP request (http.Client.Timeout of the default client).
	DefaultAttemptTimeout = 30 * time.Second
)

type settings struct {
	httpClient     *http.Client
	pageSize       int
	maxRetries     int
	maxBackoff     time.Duration
	requestTimeout time.Duration
}

// Option configures a Reader.
type Option func(*settings)

// WithHTTPClient sets the HTTP client (its transport, TLS and timeout are kept; the client itself
// is not modified).
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.httpClient = c } }

// WithPageSize sets the page size (limit) for groups and members, 1..10000.
func WithPageSize(n int) Option { return func(s *settings) { s.pageSize = n } }

// WithMaxRetries sets how often one request is retried after a 429 (0: never).
func WithMaxRetries(n int) Option { return func(s *settings) { s.maxRetries = n } }

// WithMaxBackoff caps one wait after a 429. The SDK counts whole seconds, so it is rounded up;
// 0 retries at once whatever X-Rate-Limit-Reset says.
func WithMaxBackoff(d time.Duration) Option { return func(s *settings) { s.maxBackoff = d } }

// WithRequestTimeout bounds one page request including its 429 waits, in whole seconds (rounded
// up); 0 leaves only the context's deadline.
func WithRequestTimeout(d time.Duration) Option { return func(s *settings) { s.requestTimeout = d } }

// Reader reads groups and members. It is safe for concurrent use.
type Reader struct {
	client    *oktasdk.Client
	transport *countingTransport
	pageSize  int64
	// scrub removes the token from error text. A closure, not a string field, so that printing a
	// Reader with %v or %#v cannot show the token.
	scrub func(string) string
}

// NewReader builds a Reader for orgURL (https://<org>.okta.com, or http:// for a local fake) with an
// SSWS API token. Configuration comes only from the arguments: see the package comment.
func NewReader(ctx context.Context, orgURL, token string, opts ...Option) (*Reader, error) {
	s := settings{
		pageSize:       DefaultPageSize,
		maxRetries:     DefaultMaxRetries,
		maxBackoff:     DefaultMaxBackoff,
		requestTimeout: DefaultRequestTimeout,
	}
	for _, o := range opts {
		o(&s)
	}
	base, err := checkOrgURL(orgURL)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("okta: API token is empty")
	}
	// A control character would be rejected by net/http at request time; say so now, without
	// echoing the token.
	if strings.ContainsAny(token, "\r\n\t ") {
		return nil, errors.New("okta: API token contains whitespace")
	}
	if s.pageSize < 1 || s.pageSize > 10000 {
		return nil, fmt.Errorf("okta: page size %d out of range 1..10000", s.pageSize)
	}
	if s.maxRetries < 0 || s.maxBackoff < 0 || s.requestTimeout < 0 {
		return nil, errors.New("okta: retries, backoff and timeout must not be negative")
	}

	hc := &http.Client{Timeout: DefaultAttemptTimeout}
	if s.httpClient != nil {
		c := *s.httpClient // a copy: the caller's client keeps its transport
		hc = &c
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	counter := &countingTransport{base: rt}
	hc.Transport = counter

	// Setters run after the SDK read okta.yaml and the environment, so each one below overrides
	// whatever those said. Keep the list complete for every field that matters.
	_, client, err := oktasdk.NewClient(ctx,
		oktasdk.WithOrgUrl(base),
		oktasdk.WithToken(token),
		oktasdk.WithAuthorizationMode("SSWS"),
		oktasdk.WithCache(false),
		oktasdk.WithTestingDisableHttpsCheck(strings.HasPrefix(base, "http://")),
		oktasdk.WithHttpClientPtr(hc),
		oktasdk.WithRateLimitMaxRetries(int32(min(s.maxRetries, 1000))),
		oktasdk.WithRateLimitMaxBackOff(ceilSeconds(s.maxBackoff)),
		oktasdk.WithRequestTimeout(ceilSeconds(s.requestTimeout)),
		oktasdk.WithConnectionTimeout(ceilSeconds(DefaultAttemptTimeout)),
		oktasdk.WithUserAgentExtra("okta-aws-sso-sync"),
	)
	scrub := func(s string) string { return strings.ReplaceAll(s, token, "[REDACTED]") }
	if err != nil {
		// The SDK's validation messages name the org URL, never the token; scrub anyway.
		return nil, fmt.Errorf("okta: configure client: %w", redact(err, scrub))
	}
	return &Reader{client: client, transport: counter, pageSize: int64(s.pageSize), scrub: scrub}, nil
}

// checkOrgURL accepts an origin only: the SDK prefixes it to the path of every Link it follows, so a
// path would be doubled on page two.
func checkOrgURL(orgURL string) (string, error) {
	u, err := url.Parse(orgURL)
	if err != nil {
		// url.Parse's error quotes the input, which might hold credentials someone pasted into it.
		return "", errors.New("okta: org URL does not parse as a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("okta: org URL %q: scheme must be https (or http for a local fake)", u.Redacted())
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("okta: org URL %q: want scheme://host[:port] only", u.Redacted())
	}
	return u.Scheme + "://" + u.Host, nil
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Requests returns how many HTTP requests the Reader made, each 429 retry included.
func (r *Reader) Requests() int64 { return r.transport.requests.Load() }

// Groups lists the groups whose name starts with prefix (Okta's `search=profile.name sw "<prefix>"`,
// paged; `q=` would stop at 300 results) and keeps those match accepts. Okta's search ignores case
// and is eventually consistent, so match decides; nil match means strings.HasPrefix(name, prefix).
// Each group carries its member count (expand=stats) when Okta sends one.
//
// With an empty prefix every group is listed (no search parameter, so APP_GROUPs imported from a
// directory and the BUILT_IN Everyone group are included) and match alone selects. Callers with a
// GROUP_REGEX must pass an empty prefix unless every name the regex accepts starts with it.
func (r *Reader) Groups(ctx context.Context, prefix string, match func(name string) bool) ([]Group, error) {
	const op = "list groups"
	if match == nil {
		match = func(name string) bool { return strings.HasPrefix(name, prefix) }
	}
	// A member page that comes back short without a next link looks like the end of the list;
	// the count is the only independent figure to check a member listing against.
	qp := query.NewQueryParams(query.WithLimit(r.pageSize), query.WithExpand("stats"))
	if prefix != "" {
		qp.Search = `profile.name sw "` + searchEscape(prefix) + `"`
	}
	groups, err := collect(ctx, r, op, "", func(ctx context.Context) ([]*oktasdk.Group, *oktasdk.Response, error) {
		return r.client.Group.ListGroups(ctx, qp)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(groups))
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		if g == nil || seen[g.Id] {
			continue // a group moving between pages while we read shows up twice
		}
		seen[g.Id] = true
		name := groupName(g)
		if match(name) {
			n, ok := usersCount(g)
			out = append(out, Group{ID: g.Id, Name: name, UsersCount: n, HasCount: ok})
		}
	}
	return out, nil
}

// GroupMembers lists every member of a group, paged. An empty result is what Okta answered; the
// caller decides whether zero members is believable. A page that comes back short (even empty)
// without a next link cannot be told from the last page here: a caller that acts on absences
// compares the result with the group's UsersCount from Groups.
func (r *Reader) GroupMembers(ctx context.Context, groupID string) ([]User, error) {
	const op = "list group members"
	if groupID == "" {
		return nil, &ReadError{Op: op, Err: errors.New("empty group id")}
	}
	qp := query.NewQueryParams(query.WithLimit(r.pageSize))
	users, err := collect(ctx, r, op, groupID, func(ctx context.Context) ([]*oktasdk.User, *oktasdk.Response, error) {
		return r.client.Group.ListGroupUsers(ctx, url.PathEscape(groupID), qp)
	})
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(users))
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		if u == nil || seen[u.Id] {
			continue
		}
		seen[u.Id] = true
		var login string
		if u.Profile != nil {
			login, _ = (*u.Profile)["login"].(string)
		}
		out = append(out, User{ID: u.Id, Login: login, Status: u.Status})
	}
	return out, nil
}

// Group reads one group, for renames (the event hook payload lacks the new name). A group that does
// not exist is a *ReadError matching ErrNotFound.
func (r *Reader) Group(ctx context.Context, id string) (Group, error) {
	const op = "get group"
	if id == "" {
		return Group{}, &ReadError{Op: op, Err: errors.New("empty group id")}
	}
	var g *oktasdk.Group
	_, err := r.call(ctx, op, id, func(ctx context.Context) (*oktasdk.Response, error) {
		var resp *oktasdk.Response
		var err error
		g, resp, err = r.client.Group.GetGroup(ctx, url.PathEscape(id))
		return resp, err
	})
	if err != nil {
		return Group{}, err
	}
	if g == nil || g.Id == "" {
		return Group{}, &ReadError{Op: op, GroupID: id, Status: http.StatusOK, Err: errors.New("empty group in response")}
	}
	return Group{ID: g.Id, Name: groupName(g)}, nil
}

// UserGroups lists every group the user is a member of (GET /api/v1/users/{id}/groups, paged
// with Link rel="next": developer.okta.com, User Resources API, "List all groups"), for the sync
// worker's user lifecycle events: Okta keeps a deactivated user's memberships, so this is also the
// list of the groups a deactivated user is still in. Every group type is listed (OKTA_GROUP,
// APP_GROUP, the BUILT_IN Everyone group); the caller selects by name. okta-sdk-golang v2.20.0's
// ListUserGroups sends no limit, so Okta's default page size applies (200, which is also its
// maximum for this endpoint); retries, redaction and paging are the Reader's, as for the other
// reads. A user that does not exist is a *ReadError matching ErrNotFound, with UserID set.
func (r *Reader) UserGroups(ctx context.Context, userID string) ([]Group, error) {
	const op = "list user groups"
	if userID == "" {
		return nil, &ReadError{Op: op, Err: errors.New("empty user id")}
	}
	groups, err := collect(ctx, r, op, userID, func(ctx context.Context) ([]*oktasdk.Group, *oktasdk.Response, error) {
		return r.client.User.ListUserGroups(ctx, url.PathEscape(userID))
	})
	if err != nil {
		// collect names the subject of a read in GroupID; here it is a user.
		var re *ReadError
		if errors.As(err, &re) {
			re.UserID, re.GroupID = re.GroupID, ""
		}
		return nil, err
	}
	out := make([]Group, 0, len(groups))
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		if g == nil || g.Id == "" || seen[g.Id] {
			continue // a group moving between pages while we read shows up twice
		}
		seen[g.Id] = true
		out = append(out, Group{ID: g.Id, Name: groupName(g)})
	}
	return out, nil
}

func groupName(g *oktasdk.Group) string {
	if g.Profile == nil {
		return ""
	}
	return g.Profile.Name
}

// usersCount reads `_embedded.stats.usersCount`, which Okta adds with expand=stats. The SDK keeps
// _embedded as decoded JSON (map[string]any, numbers as float64). A missing or malformed count is
// reported as absent, never as zero: zero would make every listing look complete.
func usersCount(g *oktasdk.Group) (int, bool) {
	emb, _ := g.Embedded.(map[string]any)
	stats, _ := emb["stats"].(map[string]any)
	f, ok := stats["usersCount"].(float64)
	if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// searchEscape quotes a value for Okta's search expression language (backslash escapes).
func searchEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// collect reads the first page with first and follows Link rel="next" until the last page. Any page
// failing fails the whole read.
func collect[T any](ctx context.Context, r *Reader, op, groupID string, first func(context.Context) ([]T, *oktasdk.Response, error)) ([]T, error) {
	var all []T
	resp, err := r.call(ctx, op, groupID, func(ctx context.Context) (*oktasdk.Response, error) {
		page, resp, err := first(ctx)
		all = append(all, page...)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	if resp.Self != "" {
		seen[resp.Self] = true
	}
	for resp.HasNextPage() {
		if seen[resp.NextPage] {
			return nil, &ReadError{Op: op, GroupID: groupID, Status: resp.StatusCode,
				Err: errors.New("paging loop: the next page repeats an earlier page (malformed Link header?)")}
		}
		seen[resp.NextPage] = true
		if err := ctx.Err(); err != nil {
			return nil, &ReadError{Op: op, GroupID: groupID, Err: err}
		}
		prev := resp
		resp, err = r.call(ctx, op, groupID, func(ctx context.Context) (*oktasdk.Response, error) {
			var page []T
			resp, err := prev.Next(ctx, &page)
			all = append(all, page...)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
	}
	return all, nil
}

// call runs one SDK request (one page) and turns every way it can fail into a *ReadError: an API
// error with a response, a nil response after exhausted 429 retries, a transport error, a panic.
func (r *Reader) call(ctx context.Context, op, groupID string, f func(context.Context) (*oktasdk.Response, error)) (resp *oktasdk.Response, err error) {
	ctx, tr := withTracker(ctx)
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, r.readError(op, groupID, tr, nil, fmt.Errorf("okta sdk panicked: %v", p))
		}
	}()
	resp, err = f(ctx)
	if err != nil {
		return nil, r.readError(op, groupID, tr, resp, err)
	}
	if resp == nil || resp.Response == nil {
		return nil, r.readError(op, groupID, tr, nil, errors.New("no response"))
	}
	return resp, nil
}

func (r *Reader) readError(op, groupID string, tr *tracker, resp *oktasdk.Response, err error) *ReadError {
	e := &ReadError{Op: op, GroupID: groupID, Status: tr.status, RequestID: tr.requestID, Attempts: tr.attempts, Err: redact(err, r.scrub)}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
		if id := resp.Header.Get("X-Okta-Request-Id"); id != "" {
			e.RequestID = id
		}
	}
	var apiErr *oktasdk.Error
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode
		e.Summary = apiErr.ErrorSummary
		if e.Summary == "" {
			e.Summary = apiErr.ErrorDescription
		}
		// The SDK appends the request id to 500 summaries; it has its own field here.
		e.Summary, _, _ = strings.Cut(e.Summary, ", x-okta-request-id=")
		e.Summary = r.scrub(e.Summary)
	}
	if e.Status == http.StatusTooManyRequests && e.Summary == "" {
		e.Summary = "rate limit still exceeded after retries"
	}
	return e
}

// redact removes the token from an error's text. Nothing known puts it there (the SDK only sends it
// in the Authorization header), so the original error, and its chain, is kept when it is clean.
func redact(err error, scrub func(string) string) error {
	if err == nil {
		return nil
	}
	if msg := err.Error(); scrub(msg) != msg {
		return errors.New(scrub(msg))
	}
	return err
}
