package syncer

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
)

// The 400-change workload of the failure-path benchmark (tests/BenchmarkFailurePaths) through the
// real handler: 400 adds of distinct users into two existing groups, Okta deliveries of 100
// events packed by the hook (4 messages of 50 changes per group), a cold container with the sync
// function's production SCIM client (scim.WithThrottleRetries(InvocationThrottleRetries)), and a
// queue that behaves like SQS FIFO: the event source mapping hands over up to 10 messages, read
// group by group, and a message reported failed comes back after the backoff the worker asked for
// (DefaultBackoff of its receive count), with its receive count raised.

// stormTimeout is the sync function's Timeout in template.yaml: each invocation's deadline.
const stormTimeout = 120 * time.Second

type stormResult struct {
	requests, throttled, patches int
	invocations, failed          int
	drain                        time.Duration
	members                      int
	maxValues                    int
}

func newStormEnv(tb testing.TB, latency time.Duration, seed uint64) (*scimtest.Server, *scim.Client, func()) {
	srv := scimtest.New(scimtest.Options{Seed: seed})
	for i := range benchDirectory {
		srv.AddUser(fmt.Sprintf("user%05d@example.com", i), fmt.Sprintf("00u%05d", i))
	}
	for j := range 2 {
		srv.AddGroup(fmt.Sprintf("AWS_G%02d", j), fmt.Sprintf("00g%02d", j))
	}
	srv.SetFaults(scimtest.Faults{Latency: latency})
	hs := httptest.NewServer(srv.Handler())
	client, err := scim.New(hs.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil },
		scim.WithThrottleRetries(InvocationThrottleRetries))
	if err != nil {
		tb.Fatal(err)
	}
	return srv, client, hs.Close
}

// runStorm delivers the workload and pumps the simulated queue until it is empty.
func runStorm(tb testing.TB, srv *scimtest.Server, client *scim.Client, run int) stormResult {
	changes := burst(400, 2, time.Date(2026, 12, 7, 12, 0, run, 0, time.UTC), membership.KindAdd)
	b, _ := tb.(*testing.B)
	var evs []events.SQSEvent
	if b != nil {
		evs = packedDeliveries(b, changes, 100)
	} else {
		evs = packedDeliveries(&testing.B{}, changes, 100)
	}
	h := benchHandler(client, scimapply.NewDirectory(client), ledger.NewMemory())
	var res stormResult
	start := time.Now()
	type pending struct {
		msg events.SQSMessage
		at  time.Time
	}
	var queue []pending
	for _, ev := range evs {
		for _, m := range ev.Records {
			m.Attributes["ApproximateReceiveCount"] = "1"
			queue = append(queue, pending{msg: m, at: start})
		}
	}
	for len(queue) > 0 {
		// Receive what is visible, at most 10 messages.
		now := time.Now()
		var batch events.SQSEvent
		var rest []pending
		next := time.Time{}
		for _, p := range queue {
			if !p.at.After(now) && len(batch.Records) < esmBatch {
				batch.Records = append(batch.Records, p.msg)
				continue
			}
			if next.IsZero() || p.at.Before(next) {
				next = p.at
			}
			rest = append(rest, p)
		}
		if len(batch.Records) == 0 {
			time.Sleep(time.Until(next))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), stormTimeout)
		resp, _ := h.Handle(ctx, batch)
		cancel()
		res.invocations++
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		res.failed += len(failed)
		for _, m := range batch.Records {
			if failed[m.MessageId] {
				var n int
				fmt.Sscan(m.Attributes["ApproximateReceiveCount"], &n)
				m.Attributes["ApproximateReceiveCount"] = fmt.Sprint(n + 1)
				rest = append(rest, pending{msg: m, at: time.Now().Add(DefaultBackoff(n))})
			}
		}
		queue = rest
	}
	res.drain = time.Since(start)
	res.requests, res.throttled = srv.TotalRequests(), srv.Throttled()
	res.patches = srv.Count("PATCH /Groups/{id}")
	res.members = memberCount(srv)
	res.maxValues = srv.MaxPatchValues()
	return res
}

// TestStormDrainsInOneInvocation: every other SCIM request answered 429 (Retry-After: 0, a 50 %
// storm without randomness, so the counts are exact): the 400 adds are applied by the first
// invocation within its own deadline (no message reported failed, none retried through the
// queue), with at most twice the fault-free requests and the same PATCHes of up to 100 values
// sent again, never split.
func TestStormDrainsInOneInvocation(t *testing.T) {
	srv, client, stop := newStormEnv(t, 0, 40)
	defer stop()
	clean := runStorm(t, srv, client, 0)
	if clean.members != 400 || clean.failed != 0 || clean.throttled != 0 {
		t.Fatalf("fault-free run: %+v", clean)
	}

	srv2, client2, stop2 := newStormEnv(t, 0, 40)
	defer stop2()
	var mu sync.Mutex
	n := 0
	srv2.SetFaultFunc(func(string, *http.Request) *scimtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if n++; n%2 == 1 {
			return &scimtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"}
		}
		return nil
	})
	storm := runStorm(t, srv2, client2, 0)
	t.Logf("fault-free %+v; storm %+v", clean, storm)
	if storm.members != 400 {
		t.Fatalf("storm: %d memberships applied, want 400", storm.members)
	}
	if storm.failed != 0 || storm.invocations != clean.invocations {
		t.Errorf("storm: %d messages reported failed, %d invocations (fault-free %d): not drained within the invocation",
			storm.failed, storm.invocations, clean.invocations)
	}
	if storm.throttled*2 < storm.requests-1 {
		t.Errorf("storm: %d of %d requests throttled: the storm did not happen", storm.throttled, storm.requests)
	}
	if storm.requests > 2*clean.requests {
		t.Errorf("storm: %d SCIM requests, fault-free %d: more than 2x", storm.requests, clean.requests)
	}
	if storm.patches > 2*clean.patches || storm.maxValues != clean.maxValues {
		t.Errorf("storm: %d PATCHes of at most %d values, fault-free %d of at most %d: a pack was split",
			storm.patches, storm.maxValues, clean.patches, clean.maxValues)
	}
}

// BenchmarkSyncStorm is the 400-change workload fault-free and under a seeded random 50 % 429
// storm (Retry-After: 0), 20 ms per SCIM request: SCIM requests, 429s, invocations, messages
// retried through the queue, and the drain time from the first receive to an empty queue. Each
// iteration draws another seed (40, 41, …), so the figures are means over b.N storms, not one
// draw (-benchtime 20x for a mean worth quoting).
func BenchmarkSyncStorm(b *testing.B) {
	for _, rate := range []int{0, 50} {
		b.Run(fmt.Sprintf("faults=429x%d%%", rate), func(b *testing.B) {
			var (
				sum      stormResult
				maxDrain time.Duration
				perStorm []float64 // SCIM requests of each storm
			)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				srv, client, stop := newStormEnv(b, benchLatency, 40+uint64(i))
				srv.SetFaults(scimtest.Faults{Latency: benchLatency, ThrottleRate: float64(rate) / 100, RetryAfter: "0"})
				b.StartTimer()
				r := runStorm(b, srv, client, i)
				b.StopTimer()
				stop()
				if r.members != 400 {
					b.Fatalf("%d memberships, want 400", r.members)
				}
				sum.requests += r.requests
				sum.throttled += r.throttled
				sum.patches += r.patches
				sum.invocations += r.invocations
				sum.failed += r.failed
				sum.drain += r.drain
				maxDrain = max(maxDrain, r.drain)
				perStorm = append(perStorm, float64(r.requests))
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(sum.requests)/n, "scim-req")
			b.ReportMetric(float64(sum.throttled)/n, "throttled")
			b.ReportMetric(float64(sum.patches)/n, "patches")
			b.ReportMetric(float64(sum.invocations)/n, "invocations")
			b.ReportMetric(float64(sum.failed)/n, "msgs-retried")
			b.ReportMetric(sum.drain.Seconds()/n, "drain-s")
			b.ReportMetric(maxDrain.Seconds(), "drain-max-s")
			b.ReportMetric(slices.Max(perStorm), "scim-req-max")
		})
	}
}
