package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

func TestNewValidates(t *testing.T) {
	tk := (&tokens{}).get
	for _, u := range []string{"", "ftp://x/scim/v2", "https://", "https://x/scim?x=1", "::"} {
		if _, err := New(u, tk); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New("https://scim.eu-west-1.amazonaws.com/t/scim/v2", nil); err == nil {
		t.Error("nil token func accepted")
	}
	for i, o := range []Option{WithPageSize(0), WithPageSize(101), WithMaxRetries(-1), WithBackoff(2, 1), WithHTTPClient(nil), WithLogger(nil)} {
		if _, err := New("https://x/scim/v2", tk, o); err == nil {
			t.Errorf("option %d accepted", i)
		}
	}
	if _, err := New("http://127.0.0.1:1/t/scim/v2/", tk, WithPageSize(100), WithUserAgent("x")); err != nil {
		t.Errorf("valid client: %v", err)
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(3)

	u, err := f.c.GetUser(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != ids[1] || u.UserName != "user00001@example.com" || u.ExternalID != "00u00001" || !u.Active || u.DisplayName == "" {
		t.Errorf("GetUser = %+v", u)
	}
	if u, err = f.c.FindUserByUserName(ctx, "user00002@example.com"); err != nil || u.ID != ids[2] {
		t.Errorf("FindUserByUserName = %+v, %v", u, err)
	}
	if u, err = f.c.FindUserByExternalID(ctx, "00u00000"); err != nil || u.ID != ids[0] {
		t.Errorf("FindUserByExternalID = %+v, %v", u, err)
	}

	_, err = f.c.GetUser(ctx, "no-such-id")
	var apiErr *APIError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.RequestID == "" || apiErr.Detail == "" {
		t.Errorf("GetUser unknown: %v (%+v)", err, apiErr)
	}
	for name, fn := range map[string]func() (User, error){
		"by userName":   func() (User, error) { return f.c.FindUserByUserName(ctx, "nobody@example.com") },
		"by externalId": func() (User, error) { return f.c.FindUserByExternalID(ctx, "00uNOPE") },
		"empty name":    func() (User, error) { return f.c.FindUserByUserName(ctx, "") },
	} {
		if _, err := fn(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := f.c.GetUser(ctx, ""); err == nil {
		t.Error("GetUser(\"\") succeeded")
	}
	st := f.c.Stats()
	if st.Requests[OpGetUser] != 2 || st.Requests[OpFindUserByUserName] != 2 || st.Requests[OpFindUserByExternalID] != 2 {
		t.Errorf("stats %v", st.Requests)
	}
}

// Filter values are JSON-quoted: quotes, backslashes and non-ASCII must round-trip.
func TestFilterQuoting(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	names := []string{`o"brien@example.com`, `back\slash@example.com`, "zoë@example.com", `a and userName eq "b"`, "tab\there<&>", "日本@example.com"}
	for i, n := range names {
		id := f.srv.AddUser(n, "ext-"+n)
		u, err := f.c.FindUserByUserName(ctx, n)
		if err != nil || u.ID != id || u.UserName != n {
			t.Errorf("name %d %q: %+v, %v", i, n, u, err)
		}
		if u, err := f.c.FindUserByExternalID(ctx, "ext-"+n); err != nil || u.ID != id {
			t.Errorf("externalId %d %q: %+v, %v", i, n, u, err)
		}
		gid := f.srv.AddGroup("grp "+n, "")
		if g, err := f.c.FindGroupByDisplayName(ctx, "grp "+n); err != nil || g.ID != gid {
			t.Errorf("group %d %q: %+v, %v", i, n, g, err)
		}
	}
}

func TestListGroupMembersPages(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(260)
	gid := f.srv.AddGroup("AWS_Big", "")
	for _, id := range ids[:250] {
		f.srv.AddMember(gid, id)
	}
	members, err := f.c.ListGroupMembers(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(members))
	for i, m := range members {
		got[i] = m.ID
	}
	if !slices.Equal(got, ids[:250]) {
		t.Errorf("members: %d, want the 250 seeded in order", len(got))
	}
	if n := f.srv.Count("GET /Users"); n != 3 {
		t.Errorf("%d requests for 250 members, want 3 pages", n)
	}
	if n := f.c.Stats().Requests[OpListGroupMembers]; n != 3 {
		t.Errorf("stats ListGroupMembers %d", n)
	}
	// An unknown group has no members.
	if ms, err := f.c.ListGroupMembers(ctx, "no-such-group"); err != nil || len(ms) != 0 {
		t.Errorf("unknown group: %v %v", ms, err)
	}
}

// AWS may return short pages with a nextCursor; the client must follow the cursor, not count.
func TestListGroupMembersUnevenPages(t *testing.T) {
	f := newFixture(t, scimtest.Options{UnevenPages: true, Seed: 3})
	ids := f.seedUsers(500)
	gid := f.srv.AddGroup("AWS_Uneven", "")
	for _, id := range ids {
		f.srv.AddMember(gid, id)
	}
	members, err := f.c.ListGroupMembers(context.Background(), gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 500 {
		t.Errorf("got %d members, want 500", len(members))
	}
	if n := f.srv.Count("GET /Users"); n <= 5 {
		t.Errorf("only %d requests: pages were not short", n)
	}
}

func TestListUsers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{}, WithPageSize(40))
	f.seedUsers(101)
	var pages, n int
	err := f.c.ListUsers(ctx, func(us []User) error {
		pages++
		n += len(us)
		return nil
	})
	if err != nil || pages != 3 || n != 101 {
		t.Errorf("ListUsers: pages %d users %d err %v", pages, n, err)
	}
	stop := errors.New("stop")
	calls := 0
	err = f.c.ListUsers(ctx, func([]User) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("callback error: %v after %d calls", err, calls)
	}
}

func TestListGroups(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	for i := range 230 {
		f.srv.AddGroup(fmt.Sprintf("G%03d", i), "")
	}
	var names []string
	err := f.c.ListGroups(context.Background(), func(gs []Group) error {
		for _, g := range gs {
			names = append(names, g.DisplayName)
		}
		return nil
	})
	if err != nil || len(names) != 230 || names[229] != "G229" {
		t.Errorf("ListGroups: %d %v", len(names), err)
	}
	if n := f.srv.Count("GET /Groups"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestGroupLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(3)

	g, err := f.c.CreateGroup(ctx, Group{DisplayName: "AWS_Dev", ExternalID: "00g1"}, []string{ids[0], ids[1], ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if g.ID == "" || g.DisplayName != "AWS_Dev" || g.ExternalID != "00g1" {
		t.Errorf("created %+v", g)
	}
	if _, err := f.c.CreateGroup(ctx, Group{DisplayName: "AWS_Dev"}, nil); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate create: %v", err)
	}
	if got, err := f.c.GetGroup(ctx, g.ID); err != nil || got != g {
		t.Errorf("GetGroup = %+v, %v", got, err)
	}
	if got, err := f.c.FindGroupByDisplayName(ctx, "AWS_Dev"); err != nil || got != g {
		t.Errorf("FindGroupByDisplayName = %+v, %v", got, err)
	}
	if _, err := f.c.FindGroupByDisplayName(ctx, "AWS_None"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing group: %v", err)
	}
	if got, err := f.c.FindGroupsByExternalID(ctx, "00g1"); err != nil || len(got) != 1 || got[0] != g {
		t.Errorf("FindGroupsByExternalID = %+v, %v", got, err)
	}
	if got, err := f.c.FindGroupsByExternalID(ctx, "00gNone"); err != nil || len(got) != 0 {
		t.Errorf("missing externalId: %+v, %v", got, err)
	}
	if err := f.c.SetGroupExternalID(ctx, g.ID, "00g2"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.c.FindGroupsByExternalID(ctx, "00g2"); err != nil || len(got) != 1 || got[0].ID != g.ID || got[0].ExternalID != "00g2" {
		t.Errorf("after SetGroupExternalID: %+v, %v", got, err)
	}
	if got, err := f.c.FindGroupsByExternalID(ctx, "00g1"); err != nil || len(got) != 0 {
		t.Errorf("old externalId still found: %+v, %v", got, err)
	}
	// AWS does not keep externalId unique: a second group given the id by hand is found too.
	copyID := f.srv.AddGroup("AWS_Dev_copy", "00g2")
	if got, err := f.c.FindGroupsByExternalID(ctx, "00g2"); err != nil || len(got) != 2 || got[0].ID != g.ID || got[1].ID != copyID {
		t.Errorf("two groups carrying 00g2: %+v, %v", got, err)
	}
	if err := f.c.SetGroupExternalID(ctx, g.ID, "00g1"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		if in, err := f.c.IsMember(ctx, g.ID, ids[i]); err != nil || in != want {
			t.Errorf("IsMember(user %d) = %v, %v", i, in, err)
		}
	}
	if err := f.c.RenameGroup(ctx, g.ID, "AWS_Developers"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.c.GetGroup(ctx, g.ID); got.DisplayName != "AWS_Developers" {
		t.Errorf("after rename: %+v", got)
	}
	f.srv.AddGroup("AWS_Taken", "")
	if err := f.c.RenameGroup(ctx, g.ID, "AWS_Taken"); !errors.Is(err, ErrConflict) {
		t.Errorf("rename onto a taken name: %v", err)
	}
	want := map[string][]string{"AWS_Developers": {"user00000@example.com", "user00001@example.com"}, "AWS_Dev_copy": {}, "AWS_Taken": {}}
	if got := f.srv.Snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("snapshot %v", got)
	}
	if err := f.c.DeleteGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.GetGroup(ctx, g.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetGroup after delete: %v", err)
	}
	if err := f.c.DeleteGroup(ctx, g.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if in, err := f.c.IsMember(ctx, g.ID, ids[0]); err != nil || in {
		t.Errorf("IsMember on deleted group = %v, %v", in, err)
	}
}

func TestCreateGroupBeyond100Members(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(250)
	g, err := f.c.CreateGroup(context.Background(), Group{DisplayName: "AWS_Many"}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.srv.Members(g.ID)); n != 250 {
		t.Errorf("%d members, want 250", n)
	}
	if f.srv.Count("POST /Groups") != 1 || f.srv.Count("PATCH /Groups/{id}") != 2 || f.srv.MaxPatchValues() != 100 {
		t.Errorf("requests %v, max values %d", f.srv.Requests(), f.srv.MaxPatchValues())
	}
}

func TestCreateGroupAddFailsReturnsGroup(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(101)
	f.srv.Inject(scimtest.Fault{Status: 400, Route: "PATCH /Groups/{id}"})
	g, err := f.c.CreateGroup(context.Background(), Group{DisplayName: "AWS_Partial"}, ids)
	if err == nil || g.ID == "" {
		t.Fatalf("got %+v, %v; want the created group and an error", g, err)
	}
	if n := len(f.srv.Members(g.ID)); n != 100 {
		t.Errorf("%d members after a failed follow-up PATCH, want 100", n)
	}
}

func TestAddRemoveMembersChunked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(150)
	gid := f.srv.AddGroup("AWS_Chunk", "")

	reqIDs, err := f.c.AddMembers(ctx, gid, append(slices.Clone(ids), ids[:10]...))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqIDs) != 2 || reqIDs[0] == "" || reqIDs[0] == reqIDs[1] {
		t.Errorf("request ids %v, want 2 distinct", reqIDs)
	}
	if f.srv.Count("PATCH /Groups/{id}") != 2 || f.srv.MaxPatchValues() != 100 || len(f.srv.Members(gid)) != 150 {
		t.Errorf("after add: patches %d, max %d, members %d", f.srv.Count("PATCH /Groups/{id}"), f.srv.MaxPatchValues(), len(f.srv.Members(gid)))
	}

	reqIDs, err = f.c.RemoveMembers(ctx, gid, ids[:149])
	if err != nil || len(reqIDs) != 2 {
		t.Fatalf("remove: %v %v", reqIDs, err)
	}
	if got := f.srv.Members(gid); len(got) != 1 || got[0] != "user00149@example.com" {
		t.Errorf("after remove: %v", got)
	}

	// Nothing to do sends nothing, and never a value-less remove.
	f.srv.ResetCounters()
	for _, in := range [][]string{nil, {}} {
		if r, err := f.c.RemoveMembers(ctx, gid, in); err != nil || r != nil {
			t.Errorf("RemoveMembers(%v) = %v, %v", in, r, err)
		}
		if r, err := f.c.AddMembers(ctx, gid, in); err != nil || r != nil {
			t.Errorf("AddMembers(%v) = %v, %v", in, r, err)
		}
	}
	if _, err := f.c.RemoveMembers(ctx, gid, []string{ids[0], ""}); err == nil {
		t.Error("empty user id accepted")
	}
	if _, err := f.c.AddMembers(ctx, "", ids[:1]); err == nil {
		t.Error("empty group id accepted")
	}
	if n := f.srv.TotalRequests(); n != 0 {
		t.Errorf("%d requests for no-op calls", n)
	}
	if f.srv.EmptyRemoves() != 0 || len(f.srv.Members(gid)) != 1 {
		t.Errorf("empty removes %d, members %v", f.srv.EmptyRemoves(), f.srv.Members(gid))
	}
}

func TestAddMembersPartialFailure(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(250)
	gid := f.srv.AddGroup("AWS_Fail", "")
	// The second PATCH fails with a non-retryable 400.
	var n int
	var mu sync.Mutex
	f.srv.SetFaultFunc(func(route string, _ *http.Request) *scimtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if route == "PATCH /Groups/{id}" {
			if n++; n == 2 {
				return &scimtest.Fault{Status: 400}
			}
		}
		return nil
	})
	reqIDs, err := f.c.AddMembers(context.Background(), gid, ids)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || len(reqIDs) != 1 {
		t.Fatalf("got %v, %v", reqIDs, err)
	}
	if !strings.Contains(err.Error(), "101-200 of 250") {
		t.Errorf("error does not say which members failed: %v", err)
	}
	if got := len(f.srv.Members(gid)); got != 100 {
		t.Errorf("%d members applied, want 100", got)
	}
}

func TestRetriesThrottleAndServerErrors(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t, scimtest.Options{Faults: scimtest.Faults{RetryAfter: "0"}})
			id := f.seedUsers(1)[0]
			f.srv.FailNext(2, status)
			if _, err := f.c.GetUser(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			st := f.c.Stats()
			if f.srv.Count("GET /Users/{id}") != 3 || st.Retries != 2 || st.Requests[OpGetUser] != 3 {
				t.Errorf("server saw %d, stats %+v", f.srv.Count("GET /Users/{id}"), st)
			}
			if status == 429 && st.Throttles != 2 || status != 429 && st.ServerErrors != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	f := newFixture(t, scimtest.Options{}, WithMaxRetries(2))
	id := f.seedUsers(1)[0]
	f.srv.FailNext(5, 500)
	_, err := f.c.GetUser(context.Background(), id)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Fatalf("err %v", err)
	}
	if n := f.srv.Count("GET /Users/{id}"); n != 3 {
		t.Errorf("%d attempts, want 1 + 2 retries", n)
	}
}

// Retry-After is honoured: the client waits at least as long as asked. Asserted on the wait
// the client chose (Stats.RetryWait), not on wall time.
func TestRetryAfterHonoured(t *testing.T) {
	f := newFixture(t, scimtest.Options{Faults: scimtest.Faults{RetryAfter: "1"}})
	id := f.seedUsers(1)[0]
	f.srv.FailNext(1, 429)
	if _, err := f.c.GetUser(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if st := f.c.Stats(); st.RetryWait < time.Second || st.Throttles != 1 {
		t.Errorf("stats %+v: want one throttle and a wait of at least 1s", st)
	}
}

func TestRetryAfterBeyondCapReturnsAPIError(t *testing.T) {
	f := newFixture(t, scimtest.Options{Faults: scimtest.Faults{RetryAfter: "30"}}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	id := f.seedUsers(1)[0]
	f.srv.FailNext(1, 429)
	_, err := f.c.GetUser(context.Background(), id)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 429 || apiErr.RetryAfter != 30*time.Second {
		t.Fatalf("err %v", err)
	}
	if n := f.srv.Count("GET /Users/{id}"); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// A Retry-After that would end past the context deadline is not waited for.
func TestDeadlineStopsRetries(t *testing.T) {
	f := newFixture(t, scimtest.Options{Faults: scimtest.Faults{RetryAfter: "3"}})
	id := f.seedUsers(1)[0]
	f.srv.FailNext(1, 429)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := f.c.GetUser(ctx, id)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 429 || apiErr.RetryAfter != 3*time.Second {
		t.Fatalf("err %v", err)
	}
	if n := f.srv.Count("GET /Users/{id}"); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	if ctx.Err() != nil {
		t.Error("client slept into the deadline")
	}
}

// Under constant throttling the deadline, not the retry budget, ends the call.
func TestDeadlineBoundsConstantThrottling(t *testing.T) {
	f := newFixture(t, scimtest.Options{Faults: scimtest.Faults{ThrottleRate: 1}},
		WithBackoff(20*time.Millisecond, 80*time.Millisecond), WithMaxRetries(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := f.c.GetUser(ctx, "any")
	var apiErr *APIError
	if !errors.As(err, &apiErr) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if n := f.srv.TotalRequests(); n < 2 || n > 20 {
		t.Errorf("%d attempts within a 300ms deadline at ≥20ms backoff", n)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	ids := f.seedUsers(1)
	f.srv.AddGroup("AWS_X", "")

	f.srv.FailNext(1, 400)
	_, err400 := f.c.GetUser(ctx, ids[0])
	_, err404 := f.c.GetUser(ctx, "missing")
	_, err409 := f.c.CreateGroup(ctx, Group{DisplayName: "AWS_X"}, nil)
	f.srv.FailNext(1, 403)
	_, err403 := f.c.GetUser(ctx, ids[0])
	for status, err := range map[int]error{400: err400, 404: err404, 409: err409, 403: err403} {
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != status {
			t.Errorf("%d: %v", status, err)
		}
	}
	if n := f.srv.TotalRequests(); n != 4 {
		t.Errorf("%d requests for 4 calls: client errors were retried", n)
	}
	if st := f.c.Stats(); st.Retries != 0 {
		t.Errorf("retries %d", st.Retries)
	}
}

func TestUnauthorizedRefreshesTokenOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{})
	id := f.seedUsers(1)[0]

	// Rotated secret: the cached token is stale, the refreshed one works.
	f.srv.SetToken("rotated-token")
	f.tok.fresh = "rotated-token"
	if _, err := f.c.GetUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, refreshes := f.tok.counts(); refreshes != 1 {
		t.Errorf("%d refreshes, want 1", refreshes)
	}
	if f.srv.Count("GET /Users/{id}") != 2 || f.c.Stats().Unauthorized != 1 {
		t.Errorf("requests %d, stats %+v", f.srv.Count("GET /Users/{id}"), f.c.Stats())
	}

	// Expired token: one refresh, one re-send, then ErrUnauthorized; never a loop.
	f.srv.ResetCounters()
	f.srv.ExpireToken(true)
	_, err := f.c.GetUser(ctx, id)
	var apiErr *APIError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("err %v", err)
	}
	if _, refreshes := f.tok.counts(); refreshes != 2 {
		t.Errorf("%d refreshes in total, want 2 (one per call)", refreshes)
	}
	if n := f.srv.TotalRequests(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestTokenFuncErrors(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	f.tok.err = errors.New("secrets manager down")
	if _, err := f.c.GetUser(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "secrets manager down") {
		t.Errorf("err %v", err)
	}
	if f.srv.TotalRequests() != 0 {
		t.Error("request sent without a token")
	}

	// Refresh fails after a 401: the refresh error is reported, no re-send.
	f.tok.err = nil
	f.srv.ExpireToken(true)
	f.c.token = func(_ context.Context, refresh bool) (string, error) {
		if refresh {
			return "", errors.New("refresh failed")
		}
		return "test-token", nil
	}
	if _, err := f.c.GetUser(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "refresh failed") {
		t.Errorf("err %v", err)
	}
	if n := f.srv.TotalRequests(); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestTransportErrorsRetried(t *testing.T) {
	f := newFixture(t, scimtest.Options{}, WithMaxRetries(2))
	// A closed port: connection refused on every attempt.
	c, err := New("http://127.0.0.1:1/t/scim/v2", f.tok.get, fastRetry, WithMaxRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(context.Background(), "x"); err == nil {
		t.Fatal("no error from a closed port")
	}
	if st := c.Stats(); st.Requests[OpGetUser] != 3 || st.Retries != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestConcurrentUseUnderFaults(t *testing.T) {
	f := newFixture(t, scimtest.Options{Seed: 9, Faults: scimtest.Faults{ThrottleRate: 0.25, ErrorRate: 0.1, RetryAfter: "0"}},
		WithMaxRetries(20))
	ids := f.seedUsers(400)
	gid := f.srv.AddGroup("AWS_Concurrent", "")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w * 50; i < (w+1)*50; i += 5 {
				if _, err := f.c.AddMembers(context.Background(), gid, ids[i:i+5]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	members, err := f.c.ListGroupMembers(context.Background(), gid)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(members))
	for i, m := range members {
		got[i] = m.ID
	}
	sort.Strings(got)
	want := slices.Clone(ids)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%d members, want 400", len(got))
	}
	st := f.c.Stats()
	if st.Throttles == 0 || st.ServerErrors == 0 || st.Retries != st.Throttles+st.ServerErrors {
		t.Errorf("stats %+v", st)
	}
	if st.TotalRequests() != int64(f.srv.TotalRequests()) {
		t.Errorf("client counted %d requests, server %d", st.TotalRequests(), f.srv.TotalRequests())
	}
}
