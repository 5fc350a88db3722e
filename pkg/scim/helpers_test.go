package scim

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// tokens is a TokenFunc whose answers and calls the test controls.
type tokens struct {
	mu        sync.Mutex
	cached    string // returned when refresh is false
	fresh     string // returned when refresh is true
	reads     int
	refreshes int
	err       error
}

func (tk *tokens) get(_ context.Context, refresh bool) (string, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.err != nil {
		return "", tk.err
	}
	if refresh {
		tk.refreshes++
		return tk.fresh, nil
	}
	tk.reads++
	return tk.cached, nil
}

func (tk *tokens) counts() (reads, refreshes int) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.reads, tk.refreshes
}

type fixture struct {
	srv *scimtest.Server
	c   *Client
	tok *tokens
	url string
}

// fastRetry keeps retry tests quick: waits of about a millisecond unless Retry-After asks for
// more (up to 5 s, so a Retry-After of 1 s is honoured).
var fastRetry = WithBackoff(time.Millisecond, 5*time.Second)

// newFixture builds a client with fast retries and the adaptive limiter off, so the retry
// policy is tested on its own; ratelimit_test.go tests the limiter.
func newFixture(tb testing.TB, so scimtest.Options, opts ...Option) *fixture {
	tb.Helper()
	if so.BasePath == "" {
		so.BasePath = "/d-9067729b3d/scim/v2"
	}
	if so.Token == "" {
		so.Token = "test-token"
	}
	srv := scimtest.New(so)
	ts := httptest.NewServer(srv)
	tb.Cleanup(ts.Close)
	tk := &tokens{cached: so.Token, fresh: so.Token}
	base := ts.URL + srv.BasePath()
	c, err := New(base, tk.get, append([]Option{fastRetry, WithRandSeed(1), WithAdaptiveRate(false)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{srv: srv, c: c, tok: tk, url: base}
}

// seedUsers adds n users u000… and returns their ids in order.
func (f *fixture) seedUsers(n int) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = f.srv.AddUser(fmt.Sprintf("user%05d@example.com", i), fmt.Sprintf("00u%05d", i))
	}
	return ids
}
