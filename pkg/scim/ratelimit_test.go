package scim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manual clock; sleep advances it.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }
func (f *fakeClock) sleep(_ context.Context, d time.Duration) error {
	f.t = f.t.Add(d)
	return nil
}

func newTestLimiter() (*limiter, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLimiter(clk.now)
	l.sleep = clk.sleep
	return l, clk
}

// sendFor sends as fast as the limiter allows for d of fake time and returns how many went.
func sendFor(l *limiter, clk *fakeClock, d time.Duration) int {
	end := clk.t.Add(d)
	n := 0
	for clk.t.Before(end) {
		if err := l.wait(context.Background()); err != nil {
			panic(err)
		}
		n++
		clk.t = clk.t.Add(time.Millisecond) // a request takes 1 ms
	}
	return n
}

func TestLimiterUnlimitedUntilThrottled(t *testing.T) {
	l, clk := newTestLimiter()
	if n := sendFor(l, clk, time.Second); n < 900 {
		t.Fatalf("unthrottled limiter let %d requests through in 1 s of 1 ms requests", n)
	}
	if rate, dec := l.state(); rate != 0 || dec != 0 {
		t.Fatalf("state %v %d, want unlimited", rate, dec)
	}
}

func TestLimiterSlowsOnThrottleAndRecovers(t *testing.T) {
	l, clk := newTestLimiter()
	sendFor(l, clk, time.Second) // ~1000 rps measured
	l.throttled()
	rate, dec := l.state()
	if dec != 1 || rate < limitMinRate || rate > limitMaxRate {
		t.Fatalf("after a throttle: rate %v decreases %d", rate, dec)
	}
	// Throttles within one window count once.
	for range 10 {
		l.throttled()
	}
	if _, dec := l.state(); dec != 1 {
		t.Fatalf("a burst of 429s lowered the rate %d times", dec)
	}
	// A throttle every window holds the rate where the decrease undoes a window's growth:
	// r = beta·(r + growth·window), about 4.7 rps with the SDK-like constants.
	for range 20 {
		clk.t = clk.t.Add(limitWindow)
		l.throttled()
	}
	eq := max(limitMinRate, limitBeta*limitGrowth*limitWindow.Seconds()/(1-limitBeta))
	if rate, _ := l.state(); rate < limitMinRate || rate > eq*1.01 {
		t.Fatalf("sustained throttling: rate %v, want about %v", rate, eq)
	}
	if n := sendFor(l, clk, 2*time.Second); n > int(2*(eq+2*limitGrowth))+2 {
		t.Fatalf("at the floor the limiter let %d requests through in 2 s", n)
	}
	// Without throttles it climbs back and switches off.
	clk.t = clk.t.Add(time.Duration(limitMaxRate/limitGrowth) * time.Second)
	if rate, _ := l.state(); rate != 0 {
		t.Fatalf("after a quiet spell rate %v, want unlimited", rate)
	}
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	l := newLimiter(time.Now)
	l.throttled() // rate = floor: the second token is ~1/floor s away
	_ = l.wait(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.wait(ctx); err == nil {
		t.Fatal("wait past the deadline returned nil")
	}
}

// TestClientSharesOneLimiter: one Client's callers share the rate. After AWS throttles, a
// burst of concurrent requests is paced instead of hammering the endpoint.
func TestClientSharesOneLimiter(t *testing.T) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"429","detail":"Rate exceeded"}`))
			return
		}
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(`{"id":"u1","userName":"ann@example.com"}`))
	}))
	defer ts.Close()
	c, err := New(ts.URL+"/scim/v2", func(context.Context, bool) (string, error) { return "t", nil }, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.RateDecreases != 1 || st.Rate == 0 {
		t.Fatalf("after a 429: rate %v decreases %d", st.Rate, st.RateDecreases)
	}
	// 6 more requests at ≤ limitMinRate+growth rps cannot all go within 1 s of each other.
	start := time.Now()
	done := make(chan error)
	for range 6 {
		go func() { _, err := c.GetUser(context.Background(), "u1"); done <- err }()
	}
	for range 6 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Fatalf("6 concurrent requests after a throttle went in %s: not paced", el)
	}
}
