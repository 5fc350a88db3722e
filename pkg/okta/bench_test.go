package okta_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
)

// BenchmarkGroupMembers1200 reads a 1,200-member group (the large group of the reconcile e2e test)
// from the fake over loopback HTTP, at the default page size and at 1000.
func BenchmarkGroupMembers1200(b *testing.B) {
	s, base := newFake(b)
	gid, _ := seedGroup(b, s, "AWS_Large", 1200)
	for _, size := range []int{okta.DefaultPageSize, 1000} {
		b.Run(fmt.Sprintf("limit=%d", size), func(b *testing.B) {
			r := newReader(b, base, okta.WithPageSize(size))
			ctx := context.Background()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				users, err := r.GroupMembers(ctx, gid)
				if err != nil || len(users) != 1200 {
					b.Fatalf("%d users, err %v", len(users), err)
				}
			}
			b.ReportMetric(float64(r.Requests())/float64(n), "requests/op")
		})
	}
}
