package okta_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
)

const token = "00TestToken-very-secret-value"

func newFake(t testing.TB) (*oktatest.Server, string) {
	t.Helper()
	s := oktatest.New(oktatest.Options{Token: token})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func newReader(t testing.TB, base string, opts ...okta.Option) *okta.Reader {
	t.Helper()
	r, err := okta.NewReader(context.Background(), base, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// seedGroup creates a group with n members and returns its id and the member ids in order.
func seedGroup(t testing.TB, s *oktatest.Server, name string, n int) (string, []string) {
	t.Helper()
	gid := s.AddGroup(name)
	ids := make([]string, n)
	for i := range n {
		ids[i] = s.AddUser(fmt.Sprintf("%s.user%04d@example.com", strings.ToLower(name), i))
		if err := s.AddMember(gid, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	return gid, ids
}

func ctx(t *testing.T) context.Context {
	// Every read is bounded so a paging bug fails the test instead of hanging it.
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func asReadError(t *testing.T, err error) *okta.ReadError {
	t.Helper()
	var re *okta.ReadError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *okta.ReadError", err, err)
	}
	return re
}

func TestGroupMembersPaging(t *testing.T) {
	s, base := newFake(t)
	gid, ids := seedGroup(t, s, "AWS_Big", 450)
	if err := s.SetUserStatus(ids[7], "DEPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	r := newReader(t, base)

	users, err := r.GroupMembers(ctx(t), gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 450 {
		t.Fatalf("got %d members, want 450", len(users))
	}
	for i, u := range users {
		wantLogin := fmt.Sprintf("aws_big.user%04d@example.com", i)
		if u.ID != ids[i] || u.Login != wantLogin {
			t.Fatalf("member %d = %+v, want id %s login %s", i, u, ids[i], wantLogin)
		}
	}
	if users[7].Status != "DEPROVISIONED" || users[8].Status != "ACTIVE" {
		t.Fatalf("statuses %q %q", users[7].Status, users[8].Status)
	}
	// 450 members at 200 per page: exactly three requests, following the next links.
	if got := r.Requests(); got != 3 {
		t.Fatalf("Requests() = %d, want 3", got)
	}
	log := s.RequestLog()
	if len(log) != 3 || strings.Contains(log[0].RawQuery, "after=") || !strings.Contains(log[1].RawQuery, "after=") || !strings.Contains(log[2].RawQuery, "limit=200") {
		t.Fatalf("request log %+v", log)
	}
}

func TestGroupMembersPageSize(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Mid", 1200)
	r := newReader(t, base, okta.WithPageSize(1000))
	users, err := r.GroupMembers(ctx(t), gid)
	if err != nil || len(users) != 1200 || r.Requests() != 2 {
		t.Fatalf("%d users, %d requests, err %v; want 1200 in 2", len(users), r.Requests(), err)
	}
	if _, err := okta.NewReader(context.Background(), base, token, okta.WithPageSize(0)); err == nil {
		t.Fatal("page size 0 accepted")
	}
}

func TestGroupsSearchPaging(t *testing.T) {
	s, base := newFake(t)
	want := map[string]bool{}
	for i := range 450 {
		want[s.AddGroup(fmt.Sprintf("AWS_%03d", i))] = true
		s.AddGroup(fmt.Sprintf("Eng_%03d", i))
	}
	// Okta's search ignores case; the client-side prefix check must drop these.
	s.AddGroup("aws_lowercase")
	s.AddGroup("Aws_Mixed")
	r := newReader(t, base)

	groups, err := r.Groups(ctx(t), "AWS_", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 450 {
		t.Fatalf("got %d groups, want 450", len(groups))
	}
	for _, g := range groups {
		if !want[g.ID] || !strings.HasPrefix(g.Name, "AWS_") {
			t.Fatalf("unexpected group %+v", g)
		}
	}
	// 452 search hits at 200 per page: three requests, each a paged search (not q=).
	if got := r.Requests(); got != 3 {
		t.Fatalf("Requests() = %d, want 3", got)
	}
	for _, req := range s.RequestLog() {
		q, _ := url.ParseQuery(req.RawQuery)
		if q.Get("search") != `profile.name sw "AWS_"` || q.Get("limit") != "200" || q.Has("q") {
			t.Fatalf("request %q: want search=profile.name sw \"AWS_\"&limit=200", req.RawQuery)
		}
	}
}

func TestGroupsMatchFunc(t *testing.T) {
	s, base := newFake(t)
	s.AddGroup("AWS_Admins")
	s.AddGroup("AWS_ReadOnly")
	dev := s.AddGroup("team-dev-aws")
	ops := s.AddGroupOfType("team-ops-aws", oktatest.TypeAppGroup)
	s.AddGroup("team-dev-gcp")
	r := newReader(t, base, okta.WithPageSize(2))

	// GROUP_REGEX with no prefix: everything is listed (paged) and the regex selects.
	re := regexp.MustCompile(`^team-.*-aws$`)
	groups, err := r.Groups(ctx(t), "", re.MatchString)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(groups) != fmt.Sprint([]okta.Group{{ID: dev, Name: "team-dev-aws", HasCount: true}, {ID: ops, Name: "team-ops-aws", HasCount: true}}) {
		t.Fatalf("groups %+v", groups)
	}
	log := s.RequestLog()
	if len(log) != 3 {
		t.Fatalf("5 groups at 2 per page: %d requests, want 3", len(log))
	}
	for _, req := range log {
		if strings.Contains(req.RawQuery, "search=") {
			t.Fatalf("empty prefix sent a search: %q", req.RawQuery)
		}
	}

	// A prefix narrows the server side; match still decides.
	groups, err = r.Groups(ctx(t), "AWS_", func(name string) bool { return name == "AWS_ReadOnly" })
	if err != nil || len(groups) != 1 || groups[0].Name != "AWS_ReadOnly" {
		t.Fatalf("groups %+v err %v", groups, err)
	}
}

func TestGroupsPrefixIsEscaped(t *testing.T) {
	s, base := newFake(t)
	want := s.AddGroup(`AWS "prod" \ admins`)
	s.AddGroup("AWS other")
	r := newReader(t, base)
	groups, err := r.Groups(ctx(t), `AWS "prod" \`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].ID != want {
		t.Fatalf("groups %+v", groups)
	}
}

func TestGroupRenameAndNotFound(t *testing.T) {
	s, base := newFake(t)
	gid := s.AddGroup("AWS_Old")
	r := newReader(t, base)
	g, err := r.Group(ctx(t), gid)
	if err != nil || g != (okta.Group{ID: gid, Name: "AWS_Old"}) {
		t.Fatalf("group %+v err %v", g, err)
	}
	if err := s.SetGroupName(gid, "AWS_New"); err != nil {
		t.Fatal(err)
	}
	// A second read must reach the server: the SDK's cache would answer the old name for 5 minutes.
	g, err = r.Group(ctx(t), gid)
	if err != nil || g.Name != "AWS_New" {
		t.Fatalf("after rename: %+v err %v", g, err)
	}

	if err := s.DeleteGroup(gid); err != nil {
		t.Fatal(err)
	}
	_, err = r.Group(ctx(t), gid)
	if !errors.Is(err, okta.ErrNotFound) {
		t.Fatalf("deleted group: %v, want ErrNotFound", err)
	}
	re := asReadError(t, err)
	if re.GroupID != gid || re.Status != 404 || re.Code != "E0000007" || re.RequestID == "" || errors.Is(err, okta.ErrUnauthorized) {
		t.Fatalf("read error %+v", re)
	}
	if _, err := r.GroupMembers(ctx(t), gid); !errors.Is(err, okta.ErrNotFound) {
		t.Fatalf("members of deleted group: %v", err)
	}
}

func TestRetry429ThenSuccess(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Busy", 250)
	// Two 429s on the second page. ResetIn -1s: X-Rate-Limit-Reset one second before Date, so
	// the SDK (which waits Reset-Date+1 s) retries at once; the wait is honoured, just zero.
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Status: 429, Skip: 1, Times: 2, ResetIn: -time.Second})
	r := newReader(t, base)

	users, err := r.GroupMembers(ctx(t), gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 250 {
		t.Fatalf("got %d members, want 250", len(users))
	}
	if got := r.Requests(); got != 4 {
		t.Fatalf("Requests() = %d, want 4 (2 pages + 2 retries)", got)
	}
	st := s.Stats()
	if st.Throttled != 2 || st.Retries != 2 || st.GroupUsers != 2 {
		t.Fatalf("server stats %+v", st)
	}
	log := s.RequestLog()
	if log[2].RetryCount == "" || log[3].RetryCount == "" {
		t.Fatalf("retries did not carry X-Okta-Retry-Count: %+v", log)
	}
}

func TestRetry429Exhausted(t *testing.T) {
	for _, tc := range []struct {
		name string
		skip int
	}{{"first page", 0}, {"second page", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			s, base := newFake(t)
			gid, _ := seedGroup(t, s, "AWS_Throttled", 250)
			s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Status: 429, Skip: tc.skip, Times: -1, ResetIn: -time.Second})
			r := newReader(t, base, okta.WithMaxRetries(2))

			// After the last retry the SDK returns a nil *Response: this must be an error, not a
			// panic, and never a partial member list.
			users, err := r.GroupMembers(ctx(t), gid)
			if err == nil || users != nil {
				t.Fatalf("users %d, err %v; want an error and no users", len(users), err)
			}
			if !errors.Is(err, okta.ErrRateLimited) {
				t.Fatalf("err %v, want ErrRateLimited", err)
			}
			re := asReadError(t, err)
			if re.GroupID != gid || re.Status != 429 || re.Attempts != 3 || re.RequestID == "" {
				t.Fatalf("read error %+v", re)
			}
			if got := s.Stats().Throttled; got != 3 {
				t.Fatalf("server saw %d 429s, want 3 (1 + 2 retries)", got)
			}
			if !strings.Contains(err.Error(), gid) || !strings.Contains(err.Error(), "429") {
				t.Fatalf("message %q should name the group and the status", err)
			}
		})
	}
}

// The SDK computes its wait from Date and X-Rate-Limit-Reset and gives up at once when either is
// missing (a proxy's 429, for example): still an error, not a panic.
func Test429WithoutRateLimitHeaders(t *testing.T) {
	var calls int
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header()["Date"] = nil // suppress net/http's automatic Date header
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`))
	}))
	defer ts.Close()
	r := newReader(t, ts.URL)
	_, err := r.Groups(ctx(t), "AWS_", nil)
	if !errors.Is(err, okta.ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited", err)
	}
	if re := asReadError(t, err); re.Attempts != 1 || calls != 1 {
		t.Fatalf("attempts %d calls %d, want 1 (no retry without headers)", re.Attempts, calls)
	}
}

func TestServerError(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Flaky", 10)
	s.FailGroupMembers(gid, 500, 1)
	r := newReader(t, base)

	_, err := r.GroupMembers(ctx(t), gid)
	re := asReadError(t, err)
	if re.Status != 500 || re.Code != "E0000009" || re.GroupID != gid || re.Op != "list group members" || re.RequestID == "" {
		t.Fatalf("read error %+v", re)
	}
	if errors.Is(err, okta.ErrNotFound) || errors.Is(err, okta.ErrRateLimited) || errors.Is(err, okta.ErrUnauthorized) {
		t.Fatalf("500 matched a sentinel: %v", err)
	}
	if strings.Contains(re.Summary, "x-okta-request-id") {
		t.Fatalf("summary %q still carries the SDK's request id suffix", re.Summary)
	}
	// 5xx is not retried: one request. The reconciler skips the group and the next run repairs it.
	if got := r.Requests(); got != 1 {
		t.Fatalf("Requests() = %d, want 1", got)
	}
	users, err := r.GroupMembers(ctx(t), gid)
	if err != nil || len(users) != 10 {
		t.Fatalf("after the fault: %d users, err %v", len(users), err)
	}
}

func TestErrorOnLaterPageReturnsNothing(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Half", 450)
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Status: 503, Skip: 2, Times: 1})
	r := newReader(t, base)
	users, err := r.GroupMembers(ctx(t), gid)
	if err == nil || users != nil {
		t.Fatalf("%d users, err %v: a failed third page must fail the whole read", len(users), err)
	}
	if re := asReadError(t, err); re.Status != 503 || re.GroupID != gid {
		t.Fatalf("read error %+v", re)
	}
}

// An empty answer is passed on as such; judging it (the "Okta outage" rule) is the reconciler's job.
func TestEmptyAnswer(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Ghost", 5)
	s.EmptyGroupMembers(gid, 1)
	r := newReader(t, base)
	users, err := r.GroupMembers(ctx(t), gid)
	if err != nil || len(users) != 0 {
		t.Fatalf("users %v err %v, want none and no error", users, err)
	}
}

func TestUnauthorizedHidesToken(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_A", 1)
	wrong := "00WrongToken-also-secret"
	r, err := okta.NewReader(context.Background(), base, wrong)
	if err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() error{
		"groups":  func() error { _, err := r.Groups(ctx(t), "AWS_", nil); return err },
		"members": func() error { _, err := r.GroupMembers(ctx(t), gid); return err },
		"group":   func() error { _, err := r.Group(ctx(t), gid); return err },
	} {
		err := read()
		if !errors.Is(err, okta.ErrUnauthorized) {
			t.Fatalf("%s: %v, want ErrUnauthorized", name, err)
		}
		re := asReadError(t, err)
		if re.Status != 401 || re.Code != "E0000011" {
			t.Fatalf("%s: %+v", name, re)
		}
		for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%#v", *re)} {
			if strings.Contains(text, wrong) || strings.Contains(text, token) {
				t.Fatalf("%s: error text carries a token: %s", name, text)
			}
		}
	}
	for _, text := range []string{fmt.Sprintf("%v", r), fmt.Sprintf("%+v", *r), fmt.Sprintf("%#v", *r)} {
		if strings.Contains(text, wrong) {
			t.Fatalf("printing the Reader shows the token: %s", text)
		}
	}
	if s.Stats().Unauthorized != 3 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestNewReaderValidation(t *testing.T) {
	for _, tc := range []struct{ url, tok string }{
		{"", token},
		{"okta.example.com", token},
		{"ftp://okta.example.com", token},
		{"https://", token},
		{"https://org.okta.com/api/v1", token},
		{"https://org.okta.com?x=1", token},
		{"https://user:pass@org.okta.com", token},
		{"https://user:pass@org.okta.com:bad", token}, // does not parse
		{"https://org-admin.okta.com", token},         // the SDK's own check
		{"https://org.okta.com", ""},
		{"https://org.okta.com", "abc\ndef" + token},
	} {
		_, err := okta.NewReader(context.Background(), tc.url, tc.tok)
		if err == nil {
			t.Errorf("NewReader(%q) accepted", tc.url)
			continue
		}
		if tc.tok != "" && strings.Contains(err.Error(), tc.tok) || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "pass") {
			t.Errorf("NewReader(%q): error carries a secret: %v", tc.url, err)
		}
	}
	for _, ok := range []string{"https://org.okta.com", "https://org.okta.com/", "http://127.0.0.1:8080"} {
		if _, err := okta.NewReader(context.Background(), ok, token); err != nil {
			t.Errorf("NewReader(%q): %v", ok, err)
		}
	}
}

// The SDK reads OKTA_CLIENT_* (and ~/.okta/okta.yaml, which fills the same fields) before the
// Reader's setters; none of it may change the server, the token, the auth scheme, the cache or
// the retries.
func TestEnvironmentIsIgnored(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Env", 3)
	decoy, decoyURL := newFake(t)
	decoy.AddGroup("AWS_Decoy")

	t.Setenv("OKTA_CLIENT_ORGURL", decoyURL)
	t.Setenv("OKTA_CLIENT_TOKEN", oktatest.DefaultToken)
	t.Setenv("OKTA_CLIENT_AUTHORIZATIONMODE", "Bearer")
	t.Setenv("OKTA_CLIENT_CACHE_ENABLED", "true")
	t.Setenv("OKTA_CLIENT_RATE_LIMIT_MAX_RETRIES", "0")
	t.Setenv("OKTA_CLIENT_RATE_LIMIT_MAX_BACKOFF", "100")
	t.Setenv("OKTA_CLIENT_REQUEST_TIMEOUT", "1")
	t.Setenv("OKTA_TESTING_DISABLE_HTTPS_CHECK", "true")
	t.Setenv("OKTA_HTTPCLIENT_TIMEOUT", "1ns")

	// One 429 with the window resetting in a minute: the Reader's retry with max backoff 0 must
	// succeed well inside the 10 s deadline; the environment's retries=0 or backoff=100 s would not.
	r := newReader(t, base, okta.WithMaxBackoff(0))
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Status: 429, Times: 1, ResetIn: time.Minute})
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	users, err := r.GroupMembers(c, gid)
	if err != nil || len(users) != 3 {
		t.Fatalf("members: %d, err %v (env retries, backoff, Bearer, timeout or the decoy would fail this)", len(users), err)
	}
	if _, err := r.Group(ctx(t), gid); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGroupName(gid, "AWS_Renamed"); err != nil {
		t.Fatal(err)
	}
	if g, err := r.Group(ctx(t), gid); err != nil || g.Name != "AWS_Renamed" {
		t.Fatalf("group %+v err %v: a cached answer means OKTA_CLIENT_CACHE_ENABLED won", g, err)
	}
	if st := decoy.Stats(); st.Requests != 0 {
		t.Fatalf("decoy server got %d requests", st.Requests)
	}
	if st := s.Stats(); st.Unauthorized != 0 || st.Retries != 1 {
		t.Fatalf("real server stats %+v", st)
	}

	// The HTTPS check stays on for https:// URLs whatever OKTA_TESTING_DISABLE_HTTPS_CHECK says, and
	// the environment cannot supply a missing token.
	if _, err := okta.NewReader(context.Background(), decoyURL, ""); err == nil {
		t.Fatal("empty token accepted with OKTA_CLIENT_TOKEN set")
	}
}

func TestHTTPS(t *testing.T) {
	s := oktatest.New(oktatest.Options{Token: token})
	gid, _ := seedGroup(t, s, "AWS_TLS", 201)
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	r := newReader(t, ts.URL, okta.WithHTTPClient(ts.Client()))
	users, err := r.GroupMembers(ctx(t), gid)
	if err != nil || len(users) != 201 || r.Requests() != 2 {
		t.Fatalf("%d users, %d requests, err %v", len(users), r.Requests(), err)
	}
	// The caller's client is copied, not wrapped in place.
	if fmt.Sprintf("%T", ts.Client().Transport) != "*http.Transport" {
		t.Fatalf("caller's transport replaced by %T", ts.Client().Transport)
	}
}

// okta-sdk-golang splits a Link header on ";" only. Folded into one header, "<self>; rel=self,
// <next>; rel=next" makes the self URL the next page, forever; the reader must stop.
func TestFoldedLinkHeaderDoesNotLoop(t *testing.T) {
	var calls int
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		base := "http://" + r.Host
		w.Header().Set("Link", "<"+base+r.URL.RequestURI()+`>; rel="self", <`+base+r.URL.Path+`?after=00u2&limit=200>; rel="next"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id":"00u1","status":"ACTIVE","profile":{"login":"a@example.com"}}]`))
	}))
	defer ts.Close()
	r := newReader(t, ts.URL)
	_, err := r.GroupMembers(ctx(t), "00gX")
	if err == nil || !strings.Contains(err.Error(), "paging loop") {
		t.Fatalf("err %v, want a paging loop error", err)
	}
	if calls > 2 {
		t.Fatalf("%d requests before stopping", calls)
	}
}

// A Link URL that does not parse makes the SDK dereference nil; the reader turns it into an error.
func TestMalformedLinkDoesNotPanic(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", `<http://`+r.Host+`/api/v1/gr%zzoups?after=00g2>; rel="next"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	}))
	defer ts.Close()
	r := newReader(t, ts.URL)
	_, err := r.Groups(ctx(t), "AWS_", nil)
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("err %v, want the recovered SDK panic as an error", err)
	}
	asReadError(t, err)
}

func TestContextDeadlineStopsRateLimitWait(t *testing.T) {
	s, base := newFake(t)
	gid, _ := seedGroup(t, s, "AWS_Slow", 1)
	// Reset one minute away: the SDK would sleep up to the max backoff (30 s).
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Status: 429, Times: -1, ResetIn: time.Minute})
	r := newReader(t, base)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := r.GroupMembers(c, gid)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want context.DeadlineExceeded", err)
	}
	if re := asReadError(t, err); re.GroupID != gid {
		t.Fatalf("read error %+v", re)
	}
}

func TestConcurrentReads(t *testing.T) {
	s, base := newFake(t)
	var gids []string
	for i := range 8 {
		gid, _ := seedGroup(t, s, fmt.Sprintf("AWS_C%d", i), 30+i)
		gids = append(gids, gid)
	}
	r := newReader(t, base, okta.WithPageSize(10))
	var wg sync.WaitGroup
	errs := make([]error, len(gids))
	counts := make([]int, len(gids))
	for i, gid := range gids {
		wg.Go(func() {
			users, err := r.GroupMembers(context.Background(), gid)
			errs[i], counts[i] = err, len(users)
		})
	}
	wg.Wait()
	var want int64
	for i := range gids {
		if errs[i] != nil || counts[i] != 30+i {
			t.Fatalf("group %d: %d users, err %v", i, counts[i], errs[i])
		}
		want += int64((30+i)/10 + 1)
		if (30+i)%10 == 0 {
			want-- // a full last page has no next link
		}
	}
	if got := r.Requests(); got != want {
		t.Fatalf("Requests() = %d, want %d", got, want)
	}
}

func TestGroupsCarryMemberCount(t *testing.T) {
	s, base := newFake(t)
	big, _ := seedGroup(t, s, "AWS_Big", 450)
	small, _ := seedGroup(t, s, "AWS_Small", 2)
	empty := s.AddGroup("AWS_Empty")
	r := newReader(t, base)

	groups, err := r.Groups(ctx(t), "AWS_", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{big: 450, small: 2, empty: 0}
	if len(groups) != len(want) {
		t.Fatalf("groups %+v", groups)
	}
	for _, g := range groups {
		if !g.HasCount || g.UsersCount != want[g.ID] {
			t.Errorf("group %s: UsersCount %d HasCount %v, want %d true", g.Name, g.UsersCount, g.HasCount, want[g.ID])
		}
	}
	for _, req := range s.RequestLog() {
		if q, _ := url.ParseQuery(req.RawQuery); q.Get("expand") != "stats" {
			t.Errorf("request %q does not ask for expand=stats", req.RawQuery)
		}
	}

	// A truncated member listing (page 2 of 3 empty, no next link) is returned as Okta answered
	// it; the count from the listing is what tells it apart from a group of 200.
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: big, Empty: true, Skip: 1, Times: 1})
	users, err := r.GroupMembers(ctx(t), big)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 200 {
		t.Fatalf("truncated listing: %d members, want the 200 of page one", len(users))
	}
}

// A server that sends no stats (an older API, a proxy dropping _embedded) or a malformed count
// must leave HasCount false, never claim a count of zero.
func TestGroupsWithoutOrMalformedCount(t *testing.T) {
	body := `[
	 {"id":"00g1","type":"OKTA_GROUP","profile":{"name":"AWS_NoStats"}},
	 {"id":"00g2","type":"OKTA_GROUP","profile":{"name":"AWS_String"},"_embedded":{"stats":{"usersCount":"12"}}},
	 {"id":"00g3","type":"OKTA_GROUP","profile":{"name":"AWS_Negative"},"_embedded":{"stats":{"usersCount":-1}}},
	 {"id":"00g4","type":"OKTA_GROUP","profile":{"name":"AWS_NoCount"},"_embedded":{"stats":{}}},
	 {"id":"00g5","type":"OKTA_GROUP","profile":{"name":"AWS_Zero"},"_embedded":{"stats":{"usersCount":0}}},
	 {"id":"00g6","type":"OKTA_GROUP","profile":{"name":"AWS_Twelve"},"_embedded":{"stats":{"usersCount":12,"appsCount":1}}}
	]`
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	r := newReader(t, ts.URL)
	groups, err := r.Groups(ctx(t), "AWS_", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, g := range groups {
		got[g.Name] = fmt.Sprintf("%d/%v", g.UsersCount, g.HasCount)
	}
	want := map[string]string{
		"AWS_NoStats": "0/false", "AWS_String": "0/false", "AWS_Negative": "0/false",
		"AWS_NoCount": "0/false", "AWS_Zero": "0/true", "AWS_Twelve": "12/true",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
}
