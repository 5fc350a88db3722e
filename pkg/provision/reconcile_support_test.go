package provision

import (
	"context"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// TestSizeHintPicksLookupsOrListing: told the directory's size, a cold directory looks a few
// users up instead of starting a listing it cannot finish cheaply, and lists when that is cheaper.
func TestSizeHintPicksLookupsOrListing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(1000) // 10 pages

	// Without a hint, 9 unknown users (≥ the cold minimum of 8) start a listing of all 10 pages.
	res := NewDirectory(e.client).ResolveUsers(ctx, refs[:9])
	if res.Strategy != StrategyList || res.Requests != 10 {
		t.Fatalf("cold, no hint: %s with %d requests", res.Strategy, res.Requests)
	}

	// Hinted: 9 lookups beat 10 pages.
	d := NewDirectory(e.client)
	d.SizeHint(1000)
	d.SizeHint(10) // a smaller hint does not shrink what is known
	res = d.ResolveUsers(ctx, refs[100:109])
	if res.Strategy != StrategyLookup || res.Requests != 9 || len(res.Users) != 9 {
		t.Fatalf("hinted, 9 unknown: %s with %d requests, %d users", res.Strategy, res.Requests, len(res.Users))
	}
	// 30 unknown users: one listing (10 pages) beats 30 lookups, and it completes.
	res = d.ResolveUsers(ctx, refs[200:230])
	if res.Strategy != StrategyList || res.Requests != 10 || len(res.Users) != 30 {
		t.Fatalf("hinted, 30 unknown: %s with %d requests, %d users", res.Strategy, res.Requests, len(res.Users))
	}
	if st := d.Stats(); !st.CompleteIndex || st.KnownSize != 1000 {
		t.Fatalf("stats %+v", st)
	}
}
