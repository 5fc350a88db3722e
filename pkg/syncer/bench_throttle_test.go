package syncer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
)

// throttleRetryAfter is the Retry-After of the injected 429s: whole seconds, as AWS's throttling
// answers elsewhere carry; the client waits at least that long before the retry.
const throttleRetryAfter = "1"

// BenchmarkSyncBurstThrottled is BenchmarkSyncBurst's cold bursts with and without 10 % of the
// SCIM requests answered 429 (Retry-After: 1, seeded draw), side by side: what throttling costs in
// requests (the retries) and in changes per second (the waits). delivery=esm10 is one change per
// message (v1), delivery=esm10-packed100 the hook's packed messages for Okta deliveries of 100
// events; both with the event source mapping's 10 messages per invocation.
func BenchmarkSyncBurstThrottled(b *testing.B) {
	type tc struct {
		changes, groups int
		delivery        string
	}
	// One change per message only for the target burst: at 1,000 changes it spends 20 s per run
	// waiting out Retry-After, for a shape the hook no longer produces.
	cases := []tc{
		{250, 1, "esm10"}, {250, 1, "esm10-packed100"},
		{1000, 1, "esm10-packed100"}, {1000, 10, "esm10-packed100"},
	}
	for _, c := range cases {
		for _, rate := range []int{0, 10} {
			name := fmt.Sprintf("changes=%d/groups=%d/delivery=%s/throttle=%d%%", c.changes, c.groups, c.delivery, rate)
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				var requests, throttled, invocations int
				var busy time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					env := newBenchEnv(b, c.groups, false)
					dir := scimapply.NewDirectory(env.client)
					changes := burst(c.changes, c.groups, time.Date(2024, 5, 1, 12, 0, i, 0, time.UTC), membership.KindAdd)
					h := benchHandler(env.client, dir, ledger.NewMemory())
					var evs []events.SQSEvent
					if c.delivery == "esm10-packed100" {
						evs = packedDeliveries(b, changes, 100)
					} else {
						evs = deliveries(b, changes, esmBatch)
					}
					env.srv.ResetCounters()
					env.srv.SetFaults(scimtest.Faults{Latency: benchLatency, ThrottleRate: float64(rate) / 100, RetryAfter: throttleRetryAfter})
					start := time.Now()
					b.StartTimer()
					for _, ev := range evs {
						resp, _ := h.Handle(ctx, ev)
						if len(resp.BatchItemFailures) > 0 {
							b.Fatalf("%d failures", len(resp.BatchItemFailures))
						}
					}
					b.StopTimer()
					busy += time.Since(start)
					requests += env.srv.TotalRequests()
					throttled += env.srv.Throttled()
					invocations += len(evs)
					if got := memberCount(env.srv); got != c.changes {
						b.Fatalf("%d memberships, want %d", got, c.changes)
					}
					env.close()
					b.StartTimer()
				}
				b.ReportMetric(float64(requests)/float64(b.N*c.changes), "scim-req/change")
				b.ReportMetric(float64(requests)/float64(b.N), "scim-req/burst")
				b.ReportMetric(float64(throttled)/float64(b.N), "throttled/burst")
				b.ReportMetric(float64(invocations)/float64(b.N), "invocations/burst")
				b.ReportMetric(float64(b.N*c.changes)/busy.Seconds(), "changes/s")
			})
		}
	}
}

// BenchmarkNaiveBurstThrottled is the naive per-event baseline (BenchmarkNaiveBurst) under the
// same 10 % throttling, for 100 changes into one group (larger bursts take minutes).
func BenchmarkNaiveBurstThrottled(b *testing.B) {
	const n = 100
	ctx := context.Background()
	var requests, throttled int
	var busy time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		env := newBenchEnv(b, 1, false)
		changes := burst(n, 1, time.Date(2024, 5, 1, 12, 0, i, 0, time.UTC), membership.KindAdd)
		env.srv.SetFaults(scimtest.Faults{Latency: benchLatency, ThrottleRate: 0.10, RetryAfter: throttleRetryAfter})
		start := time.Now()
		b.StartTimer()
		for _, c := range changes {
			if err := naiveApply(ctx, env.client, c); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		busy += time.Since(start)
		requests += env.srv.TotalRequests()
		throttled += env.srv.Throttled()
		env.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(requests)/float64(b.N*n), "scim-req/change")
	b.ReportMetric(float64(requests)/float64(b.N), "scim-req/burst")
	b.ReportMetric(float64(throttled)/float64(b.N), "throttled/burst")
	b.ReportMetric(float64(b.N*n)/busy.Seconds(), "changes/s")
}
