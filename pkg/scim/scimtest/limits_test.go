package scimtest

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// manualClock is a clock the test moves; the token buckets run on it, so every count below is
// exact whatever the machine's speed.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimitedEnv(t *testing.T, l Limits) (*env, *manualClock) {
	clk := &manualClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	return newEnv(t, Options{Limits: l, Now: clk.now}), clk
}

// count sends n requests and returns how many were answered 429.
func (e *env) count(n int, method, path, body string) (throttled int) {
	e.t.Helper()
	for range n {
		r := e.req(method, path, body)
		switch r.status {
		case http.StatusTooManyRequests:
			throttled++
		case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		default:
			e.t.Fatalf("%s %s: status %d %s", method, path, r.status, r.body)
		}
	}
	return throttled
}

func TestTokenBucketPerAPI(t *testing.T) {
	e, clk := newLimitedEnv(t, AWSLimits())
	uid := e.srv.AddUser("ann@example.com", "00u1")
	gid := e.srv.AddGroup("AWS_A", "")

	// A full read bucket holds one second's worth: 40 reads pass, the 41st is throttled.
	if n := e.count(40, "GET", "/Users/"+uid, ""); n != 0 {
		t.Fatalf("%d of the first 40 reads throttled", n)
	}
	r := e.req("GET", "/Users/"+uid, "")
	m := wantAWSError(t, r, http.StatusTooManyRequests)
	if m["detail"] != detailThrottled || r.header.Get("Retry-After") != "1" {
		t.Errorf("429 detail %v Retry-After %q", m["detail"], r.header.Get("Retry-After"))
	}
	// Per API: another read API and the write APIs have buckets of their own.
	if n := e.count(40, "GET", "/Groups/"+gid, ""); n != 0 {
		t.Fatalf("GET /Groups/{id} throttled %d times by GET /Users/{id}'s bucket", n)
	}
	add := patchBody(membersOp("add", uid))
	if n := e.count(30, "PATCH", "/Groups/"+gid, add); n != 5 {
		t.Fatalf("30 PATCHes on a full 25/s bucket: %d throttled, want 5", n)
	}
	// 100 ms refill 4 read tokens and 2.5 write tokens.
	clk.advance(100 * time.Millisecond)
	if n := e.count(5, "GET", "/Users/"+uid, ""); n != 1 {
		t.Errorf("after 100 ms: %d of 5 reads throttled, want 1", n)
	}
	if n := e.count(3, "PATCH", "/Groups/"+gid, add); n != 1 {
		t.Errorf("after 100 ms: %d of 3 PATCHes throttled, want 1", n)
	}
	if got := e.srv.RateLimitedBy(BucketRead); got != 2 {
		t.Errorf("read 429s %d, want 2", got)
	}
	if got := e.srv.RateLimitedBy(BucketWrite); got != 6 {
		t.Errorf("write 429s %d, want 6", got)
	}
	if e.srv.RateLimited() != 8 || e.srv.Throttled() != 8 {
		t.Errorf("RateLimited %d Throttled %d, want 8", e.srv.RateLimited(), e.srv.Throttled())
	}
	// Once the burst is spent, a sustained 20 PATCHes a second stays under 25/s.
	clk.advance(time.Second)
	e.count(25, "PATCH", "/Groups/"+gid, add)
	for i := range 50 {
		clk.advance(50 * time.Millisecond)
		if r := e.req("PATCH", "/Groups/"+gid, add); r.status != http.StatusNoContent {
			t.Fatalf("request %d at 20/s: status %d", i, r.status)
		}
	}
}

func TestTokenBucketShared(t *testing.T) {
	// One bucket for every read route (PerAPI off) and the older collective 20 TPS over all.
	e, clk := newLimitedEnv(t, Limits{Read: Bucket{Rate: 40}, Write: Bucket{Rate: 25}, Shared: Bucket{Rate: 20, Burst: 20}})
	uid := e.srv.AddUser("ann@example.com", "00u1")
	gid := e.srv.AddGroup("AWS_A", "")
	if n := e.count(10, "GET", "/Users/"+uid, "") + e.count(10, "GET", "/Groups/"+gid, ""); n != 0 {
		t.Fatalf("%d throttled within the shared burst", n)
	}
	if n := e.count(5, "PATCH", "/Groups/"+gid, patchBody(membersOp("add", uid))); n != 5 {
		t.Fatalf("writes after the shared burst: %d of 5 throttled, want 5", n)
	}
	if e.srv.RateLimitedBy(BucketShared) != 5 {
		t.Errorf("shared 429s %d", e.srv.RateLimitedBy(BucketShared))
	}
	clk.advance(time.Second)
	e.srv.SetLimits(Limits{Read: Bucket{Rate: 40}})
	if n := e.count(40, "GET", "/Users/"+uid, "") + e.count(1, "GET", "/Groups/"+gid, ""); n != 1 {
		t.Errorf("a read bucket shared by two routes let %d of 41 through", 41-n)
	}
}

func TestTokenBucketMembership(t *testing.T) {
	// 100 member values a second, burst 150: charged per value, after validation, before the
	// change; a throttled PATCH changes nothing.
	e, clk := newLimitedEnv(t, Limits{Membership: Bucket{Rate: 100, Burst: 150}})
	gid := e.srv.AddGroup("AWS_A", "")
	var ids []string
	for i := range 100 {
		ids = append(ids, e.srv.AddUser(fmt.Sprintf("u%03d@example.com", i), ""))
	}
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("add", ids...))), http.StatusNoContent)
	r := e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("remove", ids...)))
	wantAWSError(t, r, http.StatusTooManyRequests)
	// 50 tokens left, 100 wanted: 0.5 s, rounded up to whole seconds.
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	if got := len(e.srv.Members(gid)); got != 100 {
		t.Fatalf("a throttled remove changed the group: %d members", got)
	}
	// A rename carries no member value and is not charged; a 400 is not charged either.
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(`{"op":"replace","path":"displayName","value":"AWS_B"}`)), http.StatusNoContent)
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("add", "nobody"))), http.StatusBadRequest)
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("remove", ids[:50]...))), http.StatusNoContent)
	clk.advance(time.Second)
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("remove", ids[50:]...))), http.StatusNoContent)
	if got := len(e.srv.Members(gid)); got != 0 {
		t.Errorf("%d members left", got)
	}
	// POST /Groups with members is charged too: 50 tokens left after 1 s of refill and 50 spent.
	body := `{"displayName":"AWS_C","members":[` + fmt.Sprintf(`{"value":%q}`, ids[0])
	for _, id := range ids[1:60] {
		body += fmt.Sprintf(`,{"value":%q}`, id)
	}
	wantStatus(t, e.req("POST", "/Groups", body+`]}`), http.StatusTooManyRequests)
	if _, ok := e.srv.GroupID("AWS_C"); ok {
		t.Error("a throttled POST /Groups created the group")
	}
	if e.srv.RateLimitedBy(BucketMembership) != 2 {
		t.Errorf("membership 429s %d, want 2", e.srv.RateLimitedBy(BucketMembership))
	}
	// Larger than the burst: waits for a full bucket instead of failing forever.
	e.srv.SetLimits(Limits{Membership: Bucket{Rate: 10, Burst: 10}})
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("add", ids...))), http.StatusNoContent)
}

// TestTokenBucketMembershipAndWriteAPI: a PATCH carrying members is charged to PatchGroup's 25/s
// and, per value, to the membership bucket, as AWS's quotas page describes: many small PATCHes
// run out of the write API's budget, few large ones out of the membership budget.
func TestTokenBucketMembershipAndWriteAPI(t *testing.T) {
	l := AWSLimits()
	l.Membership = Bucket{Rate: 1000, Burst: 1000}
	e, clk := newLimitedEnv(t, l)
	gid := e.srv.AddGroup("AWS_A", "")
	var ids []string
	for i := range 100 {
		ids = append(ids, e.srv.AddUser(fmt.Sprintf("u%03d@example.com", i), ""))
	}
	// 30 PATCHes of 10 values: 300 values fit the membership bucket, 30 requests not PatchGroup's.
	for i := range 30 {
		op := "add"
		if i%2 == 1 {
			op = "remove"
		}
		r := e.req("PATCH", "/Groups/"+gid, patchBody(membersOp(op, ids[:10]...)))
		if want := map[bool]int{true: http.StatusNoContent, false: http.StatusTooManyRequests}[i < 25]; r.status != want {
			t.Fatalf("PATCH %d of 10 values: status %d, want %d", i, r.status, want)
		}
	}
	if w, m := e.srv.RateLimitedBy(BucketWrite), e.srv.RateLimitedBy(BucketMembership); w != 5 || m != 0 {
		t.Fatalf("small PATCHes: %d write and %d membership 429s, want 5 and 0", w, m)
	}
	// A second later both buckets are full: 10 PATCHes of 100 values empty the membership
	// bucket with 15 write tokens left, and the 11th is throttled by membership.
	clk.advance(time.Second)
	for i := range 11 {
		op := "add"
		if i%2 == 1 {
			op = "remove"
		}
		r := e.req("PATCH", "/Groups/"+gid, patchBody(membersOp(op, ids...)))
		if want := map[bool]int{true: http.StatusNoContent, false: http.StatusTooManyRequests}[i < 10]; r.status != want {
			t.Fatalf("PATCH %d of 100 values: status %d, want %d", i, r.status, want)
		}
	}
	if w, m := e.srv.RateLimitedBy(BucketWrite), e.srv.RateLimitedBy(BucketMembership); w != 5 || m != 1 {
		t.Errorf("large PATCHes: %d write and %d membership 429s, want 5 and 1", w, m)
	}
}

func TestTokenBucketNoRetryAfterAndFaultsKept(t *testing.T) {
	l := AWSLimits()
	l.NoRetryAfter = true
	e, _ := newLimitedEnv(t, l)
	uid := e.srv.AddUser("ann@example.com", "00u1")
	e.count(40, "GET", "/Users/"+uid, "")
	if r := e.req("GET", "/Users/"+uid, ""); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "" {
		t.Errorf("status %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	// Injected faults still apply on top of the buckets.
	e.srv.SetLimits(Limits{})
	e.srv.FailNext(1, http.StatusServiceUnavailable)
	wantStatus(t, e.req("GET", "/Users/"+uid, ""), http.StatusServiceUnavailable)
	if e.srv.RateLimited() != 1 || e.srv.Throttled() != 1 {
		t.Errorf("RateLimited %d Throttled %d", e.srv.RateLimited(), e.srv.Throttled())
	}
}
