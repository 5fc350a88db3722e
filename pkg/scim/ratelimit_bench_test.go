package scim

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

var (
	adaptiveDuration = flag.Duration("scim.adaptive-duration", 40*time.Second, "how long each BenchmarkAdaptiveRate case sends")
	membershipRates  = flag.String("scim.membership-rates", "500,1000,2000", "BenchmarkAdaptiveRate: comma-separated membership budgets to try, in member values per second")
	writeRates       = flag.String("scim.write-rates", "", "BenchmarkAdaptiveRate: comma-separated extra write budgets to try, in requests per second (besides AWS's 25)")
)

// rateList parses a comma-separated list of rates.
func rateList(b *testing.B, s string) []float64 {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			b.Fatalf("bad rate %q", f)
		}
		out = append(out, v)
	}
	return out
}

// BenchmarkAdaptiveRate: how much of AWS's SCIM budget the adaptive limiters use, and how many
// requests AWS throttles meanwhile. The production client (5 retries, 250 ms–20 s backoff,
// Retry-After honoured, limiters on) against the emulator's token buckets (AWSLimits: 40/s per
// read API, 25/s per write API, bursts of one second; membership buckets of 500, 1,000 and 2,000
// values/s, bursts of one second, for the membership cases, since AWS gives no figure) with 20 ms latency per request, and
// 8 callers per class sending as fast as the client lets them for -scim.adaptive-duration.
// Membership PATCHes carry 100 values, except in membership=1000/values=10 (10 values each), where
// PatchGroup's 25/s binds before the membership bucket: the emulator charges a PATCH with members
// to both, as AWS's quotas page does.
// -scim.membership-rates and -scim.write-rates try other budgets (AWS gives none for membership);
// the shared case is the older quotas page's one collective 20 TPS for reads and writes together.
//
// of-allowed is what AWS accepted over what the bucket could accept in that time (rate × time +
// burst), startup included; throttled-% is the share of requests answered 429. The steady-
// figures leave out the first quarter of the run (the startup: an unlimited client's first burst
// meets 429s for everything in flight before it learns the rate), against rate × time, no burst.
func BenchmarkAdaptiveRate(b *testing.B) {
	type load struct {
		class   string
		callers int
		allowed float64 // per second, in the bucket's unit
		burst   float64
		values  int // membership: member values per PATCH (0: 100)
	}
	type benchCase struct {
		name   string
		loads  []load
		limits scimtest.Limits
		shared float64 // the loads share one bucket of this rate: report their sum against it
	}
	aws := scimtest.AWSLimits()
	cases := []benchCase{
		{"read", []load{{"read", 8, scimtest.AWSReadTPS, scimtest.AWSReadTPS, 0}}, aws, 0},
		{"write", []load{{"write", 8, scimtest.AWSWriteTPS, scimtest.AWSWriteTPS, 0}}, aws, 0},
		{"read+write", []load{{"read", 8, scimtest.AWSReadTPS, scimtest.AWSReadTPS, 0}, {"write", 8, scimtest.AWSWriteTPS, scimtest.AWSWriteTPS, 0}}, aws, 0},
	}
	for _, r := range rateList(b, *writeRates) {
		l := aws
		l.Write = scimtest.Bucket{Rate: r}
		cases = append(cases, benchCase{fmt.Sprintf("write=%g", r), []load{{"write", 8, r, max(1, r), 0}}, l, 0})
	}
	for _, r := range rateList(b, *membershipRates) {
		l := aws
		l.Membership = scimtest.Bucket{Rate: r, Burst: r}
		cases = append(cases, benchCase{fmt.Sprintf("membership=%g", r), []load{{"membership", 8, r, r, 0}}, l, 0})
	}
	// Membership PATCHes of 10 values against 1,000 values/s: PatchGroup's 25/s write budget binds
	// (250 values/s), not the membership one; of allowed is against 25 × 10 values/s.
	few := aws
	few.Membership = scimtest.Bucket{Rate: 1000, Burst: 1000}
	cases = append(cases, benchCase{"membership=1000/values=10", []load{{"membership", 8, scimtest.AWSWriteTPS * 10, scimtest.AWSWriteTPS * 10, 10}}, few, 0})
	// The older page's collective 20 TPS: reads and writes share one bucket (and keep their own).
	shared := aws
	shared.Shared = scimtest.Bucket{Rate: 20}
	cases = append(cases, benchCase{"shared=20", []load{{"read", 8, 20, 20, 0}, {"write", 8, 20, 20, 0}}, shared, 20})
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				limits := tc.limits
				srv := scimtest.New(scimtest.Options{BasePath: "/d-9067729b3d/scim/v2", Token: "t", Limits: limits,
					Faults: scimtest.Faults{Latency: 20 * time.Millisecond}})
				ts := httptest.NewServer(srv)
				uids := make([]string, 100)
				for i := range uids {
					uids[i] = srv.AddUser(fmt.Sprintf("u%03d@example.com", i), fmt.Sprintf("00u%03d", i))
				}
				c, err := New(ts.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return "t", nil })
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), *adaptiveDuration)
				start := time.Now()
				var wg sync.WaitGroup
				accepted := make([]atomic.Int64, len(tc.loads))
				for li, l := range tc.loads {
					for w := range l.callers {
						gid := srv.AddGroup(fmt.Sprintf("AWS_%s_%d", l.class, w), "")
						wg.Go(func() {
							for i := 0; ctx.Err() == nil; i++ {
								var err error
								cost := int64(1)
								switch l.class {
								case "read":
									_, err = c.GetUser(ctx, uids[i%len(uids)])
								case "write":
									err = c.SetGroupExternalID(ctx, gid, fmt.Sprintf("00g%d", i))
								case "membership":
									vs := uids
									if l.values > 0 {
										vs = uids[:l.values]
									}
									if i%2 == 0 {
										_, err = c.AddMembers(ctx, gid, vs)
									} else {
										_, err = c.RemoveMembers(ctx, gid, vs)
									}
									cost = int64(len(vs))
								}
								if err == nil {
									accepted[li].Add(cost)
								}
							}
						})
					}
				}
				// Steady state: the figures from steadyFrom on, past the startup's first throttles.
				steadyFrom := *adaptiveDuration / 4
				time.Sleep(steadyFrom)
				reqs0, thr0 := srv.TotalRequests(), srv.Throttled()
				acc0 := make([]int64, len(tc.loads))
				for li := range tc.loads {
					acc0[li] = accepted[li].Load()
				}
				wg.Wait()
				elapsed := time.Since(start)
				steady := elapsed - steadyFrom
				cancel()
				st := c.Stats()
				total := st.TotalRequests()
				b.ReportMetric(100*float64(st.Throttles)/float64(total), "throttled-%")
				b.ReportMetric(float64(total), "requests")
				b.ReportMetric(float64(st.RateDecreases), "decreases")
				b.ReportMetric(100*float64(srv.Throttled()-thr0)/float64(srv.TotalRequests()-reqs0), "steady-throttled-%")
				if tc.shared > 0 {
					var all, all0 int64
					for li := range tc.loads {
						all, all0 = all+accepted[li].Load(), all0+acc0[li]
					}
					b.ReportMetric(100*float64(all)/(tc.shared*elapsed.Seconds()+tc.shared), "shared-of-allowed-%")
					b.ReportMetric(100*float64(all-all0)/(tc.shared*steady.Seconds()), "shared-steady-of-allowed-%")
				}
				for li, l := range tc.loads {
					possible := l.allowed*elapsed.Seconds() + l.burst
					b.ReportMetric(100*float64(accepted[li].Load())/possible, l.class+"-of-allowed-%")
					b.ReportMetric(100*float64(accepted[li].Load()-acc0[li])/(l.allowed*steady.Seconds()), l.class+"-steady-of-allowed-%")
				}
				ts.Close()
			}
		})
	}
}
