package reconciler

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// Benchmark conditions (docs/BENCHMARKS.md, "Reconciler"). AWS does not document its SCIM rate
// limit; the emulator has no token bucket, so benchWorld puts one in front of it.
const (
	benchLatency      = 20 * time.Millisecond // per request, SCIM and Okta
	benchSCIMRate     = 20                    // SCIM requests per second, token bucket …
	benchSCIMBurst    = 40                    // … with this burst; excess answered 429, Retry-After: 1
	benchOktaPerMin   = 1000                  // Okta fixed window per minute (X-Rate-Limit-* headers)
	benchDrift        = 0.01                  // of all memberships: half missing in SCIM, half extra
	benchLambdaBudget = 15 * time.Minute      // the run gets a Lambda-like deadline
)

var benchBootstrap = flag.Bool("reconcile.bootstrap", false, "also run BenchmarkReconcile's first-install case at 10,000 users (about 70 s per run)")

// BenchmarkReconcile reconciles U users in U/20 groups (sizes Zipf-skewed: a few large, many
// small; about two memberships per user) with 1 % drift, against the SCIM emulator and the Okta
// fake over HTTP with 20 ms latency and rate limits. One op is one complete run. Reported per op:
// SCIM and Okta requests, SCIM 429s, and the peak heap in use above the fakes' own data.
func BenchmarkReconcile(b *testing.B) {
	for _, users := range []int{1000, 3000, 10000} {
		b.Run(fmt.Sprintf("users=%d/groups=%d", users, users/20), func(b *testing.B) { benchReconcile(b, users, false) })
	}
	// First install: every membership is an add and every group is created. Long, so opt-in.
	if *benchBootstrap {
		b.Run("bootstrap/users=10000/groups=500", func(b *testing.B) { benchReconcile(b, 10000, true) })
	}
}

func benchReconcile(b *testing.B, users int, bootstrap bool) {
	var scimReq, oktaReq, throttles, drift, peak float64
	for range b.N {
		b.StopTimer()
		w := newBenchWorld(b, users, users/20, 1, bootstrap)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := samplePeakHeap()
		ctx, cancel := context.WithTimeout(context.Background(), benchLambdaBudget)
		b.StartTimer()

		s, err := w.h.Handle(ctx, Input{})

		b.StopTimer()
		cancel()
		maxHeap := stop()
		if err != nil {
			b.Fatalf("reconcile: %v (summary %+v)", err, s)
		}
		if s.Failed != 0 || s.Added+s.Removed != w.drift || len(s.NotReached)+len(s.Skipped) != 0 {
			b.Fatalf("drift %d, summary %+v", w.drift, s)
		}
		scimReq += float64(s.ScimRequests)
		oktaReq += float64(s.OktaRequests)
		throttles += float64(w.scim.Throttled())
		drift += float64(w.drift)
		peak = max(peak, float64(maxHeap)-float64(base.HeapInuse))
		b.Logf("SCIM requests by route %v; %d throttled; Okta %+v; %d memberships, drift %d, %s",
			w.scim.Requests(), w.scim.Throttled(), w.okta.Stats(), w.memberships, w.drift, time.Duration(s.DurationMs)*time.Millisecond)
		w.close()
	}
	n := float64(b.N)
	b.ReportMetric(scimReq/n, "scim-req/op")
	b.ReportMetric(oktaReq/n, "okta-req/op")
	b.ReportMetric(throttles/n, "scim-429/op")
	b.ReportMetric(drift/n, "drift/op")
	b.ReportMetric(peak, "peak-heap-B")
}

// samplePeakHeap samples HeapInuse every 5 ms until the returned stop is called, which returns
// the maximum seen.
func samplePeakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

type benchWorld struct {
	h           *Handler
	scim        *scimtest.Server
	okta        *oktatest.Server
	drift       int
	memberships int
	close       func()
}

// tokenBucket is a light SCIM rate limiter for the emulator (which only injects throttles at
// random): rate tokens per second, up to burst.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func (t *tokenBucket) take(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() {
		t.tokens = min(t.burst, t.tokens+now.Sub(t.last).Seconds()*t.rate)
	}
	t.last = now
	if t.tokens < 1 {
		return false
	}
	t.tokens--
	return true
}

// newBenchWorld seeds the fakes: users in both, Zipf-sized selected groups in Okta, and in SCIM
// either the same memberships with benchDrift of drift or, for bootstrap, no groups at all.
func newBenchWorld(b testing.TB, users, groups int, seed uint64, bootstrap bool) *benchWorld {
	b.Helper()
	rnd := rand.New(rand.NewPCG(seed, uint64(users)))
	ofake := oktatest.New(oktatest.Options{Token: oktaToken, Latency: benchLatency})
	ofake.SetRateLimit(benchOktaPerMin, time.Minute)
	ss := scimtest.New(scimtest.Options{Seed: seed, Faults: scimtest.Faults{Latency: benchLatency}})
	bucket := &tokenBucket{rate: benchSCIMRate, burst: benchSCIMBurst, tokens: benchSCIMBurst}
	ss.SetFaultFunc(func(string, *http.Request) *scimtest.Fault {
		if !bucket.take(time.Now()) {
			return &scimtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}
		}
		return nil
	})

	oktaIDs := make([]string, users)
	scimIDs := make([]string, users)
	for i := range users {
		login := fmt.Sprintf("user%05d@example.com", i)
		oktaIDs[i] = ofake.AddUser(login)
		scimIDs[i] = ss.AddUser(login, oktaIDs[i])
	}
	// Zipf-like sizes: group k has ~C/(k+1) members, C chosen for ~2 memberships per user.
	var harmonic float64
	for k := range groups {
		harmonic += 1 / float64(k+1)
	}
	c := 2 * float64(users) / harmonic
	idx := make([]int, users)
	for i := range idx {
		idx[i] = i
	}
	var memberships int
	type pair struct{ g, u int }
	var all []pair
	gOkta := make([]string, groups)
	gSCIM := make([]string, groups)
	for k := range groups {
		name := fmt.Sprintf("AWS_Group%03d", k)
		gOkta[k] = ofake.AddGroup(name)
		if !bootstrap {
			gSCIM[k] = ss.AddGroup(name, gOkta[k])
		}
		size := max(1, min(users, int(c/float64(k+1))))
		// Partial Fisher-Yates: size distinct users.
		for i := range size {
			j := i + rnd.IntN(users-i)
			idx[i], idx[j] = idx[j], idx[i]
			all = append(all, pair{k, idx[i]})
		}
		memberships += size
	}
	for k := range 20 { // groups outside the selection, on both sides
		ofake.AddGroup(fmt.Sprintf("Other%02d", k))
		ss.AddGroup(fmt.Sprintf("Other%02d", k), "")
	}
	inOkta := make(map[pair]bool, len(all))
	for _, p := range all {
		inOkta[p] = true
		if err := ofake.AddMember(gOkta[p.g], oktaIDs[p.u]); err != nil {
			b.Fatal(err)
		}
	}
	missing := int(float64(memberships) * benchDrift / 2)
	extra := missing
	if bootstrap {
		missing, extra = memberships, 0
	}
	skip := map[pair]bool{}
	for !bootstrap && len(skip) < missing {
		skip[all[rnd.IntN(len(all))]] = true
	}
	for _, p := range all {
		if !bootstrap && !skip[p] {
			ss.AddMember(gSCIM[p.g], scimIDs[p.u])
		}
	}
	added := map[pair]bool{}
	for len(added) < extra {
		p := pair{rnd.IntN(groups), rnd.IntN(users)}
		if !inOkta[p] && !added[p] {
			added[p] = true
			ss.AddMember(gSCIM[p.g], scimIDs[p.u])
		}
	}

	ohs := httptest.NewServer(ofake.Handler())
	shs := httptest.NewServer(ss.Handler())
	client, err := scim.New(shs.URL+ss.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil })
	if err != nil {
		b.Fatal(err)
	}
	reader, err := okta.NewReader(context.Background(), ohs.URL, oktaToken)
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(Config{
		SCIM:         client,
		Okta:         func(context.Context, bool) (Okta, error) { return reader, nil },
		Selection:    config.Selection{Prefix: "AWS_"},
		CreateGroups: true,
		MaxRemovals:  1000, // the 1 % drift removes more than the default 100 at 10k users
		Concurrency:  config.DefaultReconcileConcurrency,
		Log:          telemetry.NewLogger(io.Discard, slog.LevelInfo),
		MetricsOut:   io.Discard,
		Namespace:    "Bench",
	})
	return &benchWorld{h: h, scim: ss, okta: ofake, drift: missing + extra, memberships: memberships, close: func() { ohs.Close(); shs.Close() }}
}
