package scim

import (
	"context"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// BenchmarkListGroupMembers10k lists a 10,000-member group through the client against the
// emulator over loopback HTTP: 100 pages of 100. requests/op pins the paging cost; ns/op and
// allocs/op cover client decode plus emulator work (both in this process).
func BenchmarkListGroupMembers10k(b *testing.B) {
	f := newFixture(b, scimtest.Options{})
	ids := f.seedUsers(10_000)
	gid := f.srv.AddGroup("AWS_Everyone", "")
	for _, id := range ids {
		f.srv.AddMember(gid, id)
	}
	ctx := context.Background()
	before := f.c.Stats().Requests[OpListGroupMembers]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ms, err := f.c.ListGroupMembers(ctx, gid)
		if err != nil {
			b.Fatal(err)
		}
		if len(ms) != 10_000 {
			b.Fatalf("%d members", len(ms))
		}
	}
	b.StopTimer()
	reqs := f.c.Stats().Requests[OpListGroupMembers] - before
	b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
}
