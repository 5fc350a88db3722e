package tests

// End-to-end failure paths of the event path (issue: no head-of-line stalls, throttling that costs
// less, the new-hire race). Real hook and sync bootstraps, moto's FIFO queue with the template's
// VisibilityTimeout (720 s) and MaxReceiveCount, the SCIM emulator. A reported failure stays in
// flight, and holds its FIFO group, until the visibility the worker set itself ends, so a stall
// the worker does not avoid shows here as a 12-minute wait and a failed pump.
//
// Pass/fail is about what ends where (applied, in the DLQ with a reason, how many SCIM requests);
// the times are logged and measured by BenchmarkFailurePaths (docs/BENCHMARKS.md).

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// stormRun is one run of the 400-change workload: 400 adds into two groups, in four deliveries of
// 100 events (50 per group each).
type stormRun struct {
	requests, throttled int
	drain               time.Duration
	lagP50, lagP99      float64 // LagMs (published → applied) of the applied changes, ms
}

func runStormWorkload(t testing.TB, aws faultAWS, name string, throttle float64) stormRun {
	t.Helper()
	w := newFaultWorld(t, aws, name, faultOptions{scim: scimtest.Options{Seed: 40}})
	// Published now, so LagMs measures delivery to AWS as in production.
	base := time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond)
	const users = 200
	want := map[string][]string{"AWS_StormA": nil, "AWS_StormB": nil}
	w.scim.AddGroup("AWS_StormA", "")
	w.scim.AddGroup("AWS_StormB", "")
	var evs []oktaEvent
	for i := range users {
		for g, name := range []string{"AWS_StormA", "AWS_StormB"} {
			login, uid := faultUser(fmt.Sprintf("w%d", g), i)
			w.scim.AddUser(login, uid)
			want[name] = append(want[name], login)
			evs = append(evs, memberEvent("add", fmt.Sprintf("%s-%d-%03d", name, g, i), base.Add(time.Duration(i)*time.Millisecond), uid, login, fmt.Sprintf("00gSTORM%c", 'A'+g), name))
		}
	}
	if throttle > 0 {
		var mu sync.Mutex
		rnd := rand.New(rand.NewPCG(40, 429))
		// Retry-After: 0, as measured on main; AWS documents no Retry-After on its 429s.
		w.setFault(func(string, *http.Request) *scimtest.Fault {
			mu.Lock()
			defer mu.Unlock()
			if rnd.Float64() >= throttle {
				return nil
			}
			return &scimtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"}
		})
	}
	// All four deliveries first, then the workers: the drain time is the queue's, not Okta's.
	for i := 0; i < len(evs); i += 100 {
		w.deliver(evs[i : i+100]...)
	}
	st := w.pumpFaults(pumpOptions{})
	w.expect(want)
	w.checkFaultWire()
	if dead := w.dlq(); len(dead) != 0 {
		t.Fatalf("%s: %d changes in the DLQ", name, len(dead))
	}
	t.Logf("%s: %s; %d SCIM requests, %d throttled", name, st, w.scim.TotalRequests(), w.scim.Throttled())
	lags := emfValues("LagMs", w.syncs...)
	if len(lags) != 2*users {
		t.Errorf("%s: %d LagMs values, want one per applied change (%d)", name, len(lags), 2*users)
	}
	return stormRun{requests: w.scim.TotalRequests(), throttled: w.scim.Throttled(), drain: st.elapsed,
		lagP50: percentile(lags, 0.5), lagP99: percentile(lags, 0.99)}
}

// newHireRun is what the new-hire race measured.
type newHireRun struct {
	neighbourLag    time.Duration // delivery of the group's later changes → the last of them applied
	hireLag         time.Duration // the user appearing in AWS → the hire's add applied
	neighboursFirst bool          // all neighbours were applied before the user appeared
	isolated        bool
}

// runNewHire delivers an add for a user AWS does not have yet, then adds and a remove for other
// users of the same group; the user appears in AWS 15 s after the add was delivered.
func runNewHire(t testing.TB, aws faultAWS, name string) newHireRun {
	t.Helper()
	base := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	w := newFaultWorld(t, aws, name, faultOptions{scim: scimtest.Options{Seed: 41}})
	gid := w.scim.AddGroup("AWS_NewHire", "")
	for i := range 4 {
		login, uid := faultUser("n", i)
		w.scim.AddUser(login, uid)
	}
	// n003 is a member; Okta removes them after the hire.
	n3, _ := w.scim.UserID("n003@example.com")
	w.scim.AddMember(gid, n3)
	hire := memberEvent("add", "hire-1", base, "00uHIRE", "hire@example.com", "00gHIRE", "AWS_NewHire")

	var (
		mu                                        sync.Mutex
		appearedAt, hireAppliedAt, neighboursSent time.Time
		neighbours                                = map[string]time.Time{}
		r                                         newHireRun
	)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			members := w.scim.Snapshot()["AWS_NewHire"]
			mu.Lock()
			now := time.Now()
			for _, l := range []string{"n000@example.com", "n001@example.com", "n002@example.com"} {
				if _, ok := neighbours[l]; !ok && slices.Contains(members, l) {
					neighbours[l] = now
				}
			}
			if _, ok := neighbours["-n003"]; !ok && !slices.Contains(members, "n003@example.com") {
				neighbours["-n003"] = now
			}
			if hireAppliedAt.IsZero() && slices.Contains(members, "hire@example.com") {
				hireAppliedAt = now
			}
			mu.Unlock()
		}
	}()
	st := w.pumpFaults(pumpOptions{limit: 5 * time.Minute, feed: func() {
		// The hire's add first, in its own delivery; the group's other changes after it.
		w.deliver(hire)
		delivered := time.Now()
		time.Sleep(500 * time.Millisecond)
		var evs []oktaEvent
		for i := range 3 {
			login, uid := faultUser("n", i)
			evs = append(evs, memberEvent("add", fmt.Sprintf("nb-%d", i), base.Add(time.Duration(i+1)*time.Second), uid, login, "00gHIRE", "AWS_NewHire"))
		}
		evs = append(evs, memberEvent("remove", "nb-rm", base.Add(5*time.Second), "00uN003", "n003@example.com", "00gHIRE", "AWS_NewHire"))
		mu.Lock()
		neighboursSent = time.Now()
		mu.Unlock()
		w.deliver(evs...)
		// Okta's AWS app provisions the hire 15 s after the assignment.
		time.Sleep(time.Until(delivered.Add(15 * time.Second)))
		w.scim.AddUser("hire@example.com", "00uHIRE")
		mu.Lock()
		appearedAt = time.Now()
		r.neighboursFirst = len(neighbours) == 4
		mu.Unlock()
	}})
	time.Sleep(100 * time.Millisecond)
	close(done)
	w.expect(map[string][]string{"AWS_NewHire": {"hire@example.com", "n000@example.com", "n001@example.com", "n002@example.com"}})
	if dead := w.dlq(); len(dead) != 0 {
		t.Fatalf("DLQ %v", dead)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, at := range neighbours {
		r.neighbourLag = max(r.neighbourLag, at.Sub(neighboursSent))
	}
	r.hireLag = hireAppliedAt.Sub(appearedAt)
	var logs []string
	for _, l := range w.logs {
		logs = append(logs, l())
	}
	r.isolated = strings.Contains(strings.Join(logs, "\n"), "moved out of their group's way")
	t.Logf("%s: %s", name, st)
	return r
}

func TestFailurePaths(t *testing.T) {
	t.Parallel()
	aws := startFaultAWS(t)
	base := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)

	t.Run("50% 429 storm on 400 changes costs at most 3x the fault-free requests", func(t *testing.T) {
		t.Parallel()
		clean := runStormWorkload(t, aws, "fp-clean", 0)
		storm := runStormWorkload(t, aws, "fp-storm", 0.5)
		if storm.throttled*3 < storm.requests {
			t.Fatalf("only %d of %d requests throttled: the storm did not happen", storm.throttled, storm.requests)
		}
		// Throttling keeps the changes packed (no split into single-change messages) and the
		// client slows down instead of multiplying requests.
		if storm.requests > 3*clean.requests {
			t.Errorf("storm: %d SCIM requests, fault-free %d: more than 3x", storm.requests, clean.requests)
		}
		t.Logf("fault-free: %d requests in %s; storm: %d requests (%d throttled) in %s",
			clean.requests, clean.drain.Round(time.Millisecond), storm.requests, storm.throttled, storm.drain.Round(time.Millisecond))
	})

	t.Run("new hire: an add waits for its user while the group goes on", func(t *testing.T) {
		t.Parallel()
		r := runNewHire(t, aws, "fp-newhire")
		if !r.neighboursFirst {
			t.Errorf("when the hire appeared the group's later changes were not all applied")
		}
		if !r.isolated {
			t.Error("the hire's add was not isolated")
		}
		t.Logf("neighbours applied within %s of their delivery; hire applied %s after the user appeared",
			r.neighbourLag.Round(time.Millisecond), r.hireLag.Round(time.Millisecond))
	})

	t.Run("poison change next to healthy ones in the same group", func(t *testing.T) {
		t.Parallel()
		// The operator's wait, short so the test sees the DLQ; the backoff is production's.
		w := newFaultWorld(t, aws, "fp-poison", faultOptions{scim: scimtest.Options{Seed: 42},
			syncEnv: map[string]string{"UNPROVISIONED_USER_WAIT": "30s"}})
		w.scim.AddGroup("AWS_Poison", "")
		var want []string
		var first, later []oktaEvent
		for i := range 6 {
			login, uid := faultUser("p", i)
			w.scim.AddUser(login, uid)
			want = append(want, login)
			e := memberEvent("add", fmt.Sprintf("p-%d", i), base.Add(time.Duration(i)*time.Second), uid, login, "00gPOISON", "AWS_Poison")
			if i < 3 {
				first = append(first, e)
			} else {
				later = append(later, e)
			}
		}
		ghost := memberEvent("add", "ghost", base.Add(1500*time.Millisecond), "00uGHOSTP", "ghost.p@example.com", "00gPOISON", "AWS_Poison")
		var laterApplied bool
		st := w.pumpFaults(pumpOptions{limit: 5 * time.Minute, feed: func() {
			w.deliver(append(first, ghost)...)
			w.waitDepth(1) // only the isolated ghost is left
			w.deliver(later...)
			w.waitDepth(1)
			got := w.scim.Snapshot()["AWS_Poison"]
			laterApplied = len(got) == 6
			if n := len(harness.MustReceiveAll(t, w.moto, w.queue.DLQURL)); n != 0 {
				t.Errorf("the ghost was dead-lettered before its wait ended (%d)", n)
			}
		}})
		if !laterApplied {
			t.Error("changes delivered after the poison change were not applied while it was retrying")
		}
		w.expect(map[string][]string{"AWS_Poison": want})
		msgs := harness.MustReceiveAll(t, w.moto, w.queue.DLQURL)
		if len(msgs) != 1 || !strings.Contains(msgs[0].MessageAttributes[queue.ReasonAttribute], "ghost.p@example.com") {
			t.Fatalf("DLQ %+v, want the ghost's add with its reason", msgs)
		}
		t.Logf("%s", st)
	})

}
