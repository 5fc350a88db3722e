// Package oktatest is an in-memory fake of the slice of the Okta Management API that
// okta-aws-sso-sync reads: list/search groups, get a group, list a group's members, list a user's
// groups, and the Event Hooks API (eventhooks.go) for registering the hook. It behaves like
// Okta where our reader depends on it: SSWS token auth with Okta's error bodies, `limit`/`after`
// cursor paging announced through separate `Link: <…>; rel="self"` and `Link: <…>; rel="next"`
// headers, X-Rate-Limit-* and Date headers (okta-sdk-golang computes its 429 wait from them), and it
// injects 429s, 5xx, empty answers and latency so tests and the demo can exercise failure paths.
//
// Modelled behaviour (and where it is a choice, not a documented Okta fact):
//   - GET /api/v1/groups: `search` accepts `<attr> <op> "<value>"` terms joined by `and`, with attr in
//     profile.name, profile.description, type, id and op in eq, sw (sw and eq on profile.* are
//     case-insensitive, an assumption); anything else is 400 E0000031. `filter` accepts only
//     `id eq`/`type eq`. `search` and plain listing page with `after`. `q` is a case-insensitive
//     prefix match on the name that Okta documents as unpageable: it returns at most `limit`
//     (default 300) results and never a next link, so a reader relying on `q` silently misses groups.
//   - GET /api/v1/groups/{id} and GET /api/v1/groups/{id}/users (paged; default limit 1000).
//   - GET /api/v1/users/{id}/groups: the groups the user is a member of, whatever the user's
//     status (Okta keeps a deactivated user's memberships), the Everyone group included; paged
//     with Okta's documented default and maximum limit of 200 (a larger limit is capped, an
//     assumption); 404 E0000007 for an unknown user.
//   - `expand=stats` on the group list and on a group adds `_embedded.stats.usersCount` (the
//     group's real member count, whatever faults the member pages get), so a reader can notice a
//     truncated member listing the way it can against Okta.
//   - Results are ordered by id; the `after` cursor is the last id of the previous page, so paging
//     stays consistent while a test mutates the data. A next link is sent only when more results
//     exist. `limit` is capped at 10000.
//   - Ids look like Okta's (00g…/00u…, 20 characters) and sort in creation order.
//
// Use it with httptest (`httptest.NewServer(s.Handler())`) or on a real port with Start.
package oktatest

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultToken is the API token the server accepts when Options.Token is empty.
const DefaultToken = "fake-okta-api-token"

// Group types Okta reports.
const (
	TypeOktaGroup = "OKTA_GROUP"
	TypeAppGroup  = "APP_GROUP"
	TypeBuiltIn   = "BUILT_IN"
)

// Options configure a Server.
type Options struct {
	// Token is the SSWS API token accepted in `Authorization: SSWS <token>`; DefaultToken if empty.
	Token string
	// Latency is added to every request (the reconcile benchmark uses 20 ms).
	Latency time.Duration
	// Everyone creates the BUILT_IN "Everyone" group every Okta org has; its members are all users.
	Everyone bool
}

// Route names one API operation, for fault injection and counters.
type Route string

// Routes the server implements. RouteAny matches all of them in a Fault.
const (
	RouteAny        Route = ""
	RouteListGroups Route = "list_groups"
	RouteGetGroup   Route = "get_group"
	RouteGroupUsers Route = "group_users"
	RouteUserGroups Route = "user_groups"
)

// Stats counts what the server saw. Every request counts once in Requests, whatever its outcome.
type Stats struct {
	Requests     int64
	ListGroups   int64 // GET /api/v1/groups answered with 200
	GetGroup     int64 // GET /api/v1/groups/{id} answered with 200
	GroupUsers   int64 // GET /api/v1/groups/{id}/users answered with 200
	UserGroups   int64 // GET /api/v1/users/{id}/groups answered with 200
	Unauthorized int64 // 401: missing or wrong token
	Throttled    int64 // 429: injected or from the rate limit
	Failed       int64 // other injected errors (5xx etc.)
	Empty        int64 // injected empty answers
	Retries      int64 // requests carrying X-Okta-Retry-Count (okta-sdk-golang's 429 retries)
}

// Request is one entry of the request log (the last requestLogSize requests).
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Status   int
	// RetryCount is the X-Okta-Retry-Count header okta-sdk-golang adds to retries after a 429.
	RetryCount string
}

const requestLogSize = 1000

type group struct {
	id, name, description, typ                  string
	created, lastUpdated, lastMembershipUpdated time.Time
	members                                     map[string]struct{}
}

type user struct {
	id, login, email, firstName, lastName, status  string
	created, activated, statusChanged, lastUpdated time.Time
}

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	token string
	mux   *http.ServeMux

	mu         sync.Mutex
	latency    time.Duration
	groups     map[string]*group
	users      map[string]*user
	hooks      map[string]*EventHook
	seq        int
	everyoneID string
	faults     []*faultState
	limiter    rateLimiter
	stats      Stats
	perGroup   map[string]int64
	log        []Request
	reqSeq     int64

	srv *http.Server
	url string
}

// New returns a Server with no data besides the optional Everyone group.
func New(opts Options) *Server {
	s := &Server{
		token:    opts.Token,
		latency:  opts.Latency,
		groups:   map[string]*group{},
		users:    map[string]*user{},
		hooks:    map[string]*EventHook{},
		perGroup: map[string]int64{},
	}
	if s.token == "" {
		s.token = DefaultToken
	}
	if opts.Everyone {
		s.everyoneID = s.addGroup("Everyone", "All users in your organization", TypeBuiltIn)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/groups", s.wrap(RouteListGroups, s.listGroups))
	mux.HandleFunc("GET /api/v1/groups/{id}", s.wrap(RouteGetGroup, s.getGroup))
	mux.HandleFunc("GET /api/v1/groups/{id}/users", s.wrap(RouteGroupUsers, s.groupUsers))
	mux.HandleFunc("GET /api/v1/users/{id}/groups", s.wrap(RouteUserGroups, s.userGroups))
	s.registerEventHookRoutes(mux)
	mux.HandleFunc("/", s.wrap(RouteAny, s.notFound))
	s.mux = mux
	return s
}

// Handler serves the fake API (for httptest.NewServer).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on addr ("127.0.0.1:0" when empty) and serves in the background, for the demo and
// for end-to-end tests that start real binaries. It returns the base URL (OKTA_ORG_URL).
func (s *Server) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("oktatest: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.url = "http://" + ln.Addr().String()
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }() // returns http.ErrServerClosed after Close
	return s.URL(), nil
}

// URL is the base URL after Start, "" before.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops a server started with Start.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("oktatest: close: %w", err)
	}
	return nil
}

// SetLatency changes the delay added to every request.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// GroupRequests returns how many requests named the group (get group and its member pages), or
// the user (its group pages).
func (s *Server) GroupRequests(groupID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perGroup[groupID]
}

// RequestLog returns the last requests (at most 1000), oldest first.
func (s *Server) RequestLog() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// ResetStats zeroes the counters and the request log (seeded data is kept).
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
	s.perGroup = map[string]int64{}
	s.log = nil
}

// wrap runs what every request goes through before its route: latency, counters, SSWS auth, the rate
// limit and injected faults, in that order (Okta authenticates before it rate-limits).
func (s *Server) wrap(route Route, h func(w http.ResponseWriter, r *http.Request, now time.Time) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		latency := s.latency
		s.mu.Unlock()
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		// Okta's Date header has one-second precision; X-Rate-Limit-Reset is computed from the same
		// second so a client that subtracts them (okta-sdk-golang does) gets exact waits.
		now := time.Now().UTC().Truncate(time.Second)
		groupID := r.PathValue("id")

		s.mu.Lock()
		s.stats.Requests++
		s.reqSeq++
		if groupID != "" {
			s.perGroup[groupID]++
		}
		retry := r.Header.Get("X-Okta-Retry-Count")
		if retry != "" {
			s.stats.Retries++
		}
		s.mu.Unlock()

		w.Header().Set("Date", now.Format(http.TimeFormat))
		w.Header().Set("X-Okta-Request-Id", s.requestID())
		status := s.gate(w, r, route, groupID, now)
		if status == 0 {
			status = h(w, r, now)
		}
		s.record(Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Status: status, RetryCount: retry})
	}
}

// gate applies auth, rate limit and faults. It returns the status it answered with, 0 to proceed.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, route Route, groupID string, now time.Time) int {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "SSWS ")
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) != 1 {
		s.count(func(st *Stats) { st.Unauthorized++ })
		writeError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided", s.errorID())
		return http.StatusUnauthorized
	}
	s.mu.Lock()
	limit, remaining, reset, limited := s.limiter.take(now)
	var f *faultState
	if route != RouteAny {
		f = s.matchFault(route, groupID)
	}
	s.mu.Unlock()
	setRateHeaders(w, limit, remaining, reset)
	if limited {
		s.count(func(st *Stats) { st.Throttled++ })
		writeError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.", s.errorID())
		return http.StatusTooManyRequests
	}
	if f == nil {
		return 0
	}
	switch {
	case f.Empty:
		s.count(func(st *Stats) { st.Empty++ })
		writeLinks(w, r, "")
		writeJSON(w, http.StatusOK, []any{})
		return http.StatusOK
	case f.Status == http.StatusTooManyRequests:
		s.count(func(st *Stats) { st.Throttled++ })
		setRateHeaders(w, limit, 0, now.Add(f.ResetIn))
		writeError(w, f.Status, "E0000047", "API call exceeded rate limit due to too many requests.", s.errorID())
		return f.Status
	default:
		s.count(func(st *Stats) { st.Failed++ })
		code, summary := errorFor(f.Status)
		writeError(w, f.Status, code, summary, s.errorID())
		return f.Status
	}
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

func (s *Server) record(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) == requestLogSize {
		copy(s.log, s.log[1:])
		s.log = s.log[:requestLogSize-1]
	}
	s.log = append(s.log, req)
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("fakeReq%020d", s.reqSeq)
}

func (s *Server) errorID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("oaeFake%015d", s.reqSeq)
}

// notFound answers paths and methods the fake does not implement like Okta does.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/groups") {
		writeError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method", s.errorID())
		return http.StatusMethodNotAllowed
	}
	writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.URL.Path, s.errorID())
	return http.StatusNotFound
}

// sortedIDs returns the keys of m in id order (= creation order).
func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
