package tests

// Fault scenarios of issue 8, end to end through the real bootstraps: Okta-shaped deliveries →
// hook → SQS FIFO (moto_server) → sync (two environments, the template's MaximumConcurrency) →
// SCIM emulator, and the reconciler against the Okta fake. Every scenario asserts the exact final
// SCIM state, an empty DLQ, and that no forbidden request was sent (a PATCH over 100 values, a
// remove without values, a write to an unselected group, a route the worker never uses).
//
// Time is modelled, not waited for: fault windows are counted in SCIM requests or sync
// invocations rather than seconds, so a slow machine sees the same faults. The queue has the
// template's settings (720 s visibility): a reported failure comes back after the backoff the
// worker sets itself (5 s, doubling), a crashed invocation's messages after 1 s (crashDelay).

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// faultUser is the login and Okta id of test user i of a scenario.
func faultUser(prefix string, i int) (login, oktaID string) {
	return fmt.Sprintf("%s%03d@example.com", prefix, i), fmt.Sprintf("00u%s%03d", strings.ToUpper(prefix), i)
}

func TestFaultsEndToEnd(t *testing.T) {
	t.Parallel()
	aws := startFaultAWS(t)
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

	t.Run("429 storm during a 1,000-change burst", func(t *testing.T) {
		t.Parallel()
		w := newFaultWorld(t, aws, "storm", faultOptions{scim: scimtest.Options{Seed: 11}})
		const users, groups = 250, 4
		want := map[string][]string{}
		gids := make([]string, groups)
		for i := range users {
			login, id := faultUser("s", i)
			w.scim.AddUser(login, id)
		}
		for g := range groups {
			want[fmt.Sprintf("AWS_Storm%d", g)] = []string{}
			if g < 2 { // two groups exist, two are created by the worker
				gids[g] = w.scim.AddGroup(fmt.Sprintf("AWS_Storm%d", g), "")
			}
		}
		// Okta's burst touches the four groups in turn (a bulk assignment): 800 adds, 100 removes
		// of existing members, 100 adds to groups the worker creates.
		var evs []oktaEvent
		for i := range users {
			login, uid := faultUser("s", i)
			for g := range groups {
				name, at := fmt.Sprintf("AWS_Storm%d", g), base.Add(time.Duration(i*groups+g)*time.Millisecond)
				kind := "add"
				if gids[g] != "" && i%5 == 0 {
					scimID, _ := w.scim.UserID(login)
					w.scim.AddMember(gids[g], scimID)
					kind = "remove"
				} else {
					want[name] = append(want[name], login)
				}
				evs = append(evs, memberEvent(kind, fmt.Sprintf("storm-%d-%03d", g, i), at, uid, login, fmt.Sprintf("00gSTORM%d", g), name))
			}
		}
		w.addUnselected("Sales", "s000@example.com", "s001@example.com")
		want["Sales"] = []string{"s000@example.com", "s001@example.com"}
		evs = append(evs, memberEvent("remove", "storm-sales-0", base, "00uS000", "s000@example.com", "00gSALES", "Sales"),
			memberEvent("add", "storm-sales-1", base, "00uS002", "s002@example.com", "00gSALES", "Sales"))

		// The storm: 50% of SCIM requests throttled for 30 simulated seconds, on a clock that
		// advances 100 ms per SCIM request (10 requests/s; AWS does not document its rate), i.e.
		// the first 300 requests, retries included: longer than the whole burst needs. The draw
		// is seeded; every tenth 429 carries Retry-After: 1, the others none (AWS does not
		// document one on its 429s).
		const stormRequests = 300
		var mu sync.Mutex
		rnd := rand.New(rand.NewPCG(11, 429))
		var n, throttled int
		w.setFault(func(string, *http.Request) *scimtest.Fault {
			mu.Lock()
			defer mu.Unlock()
			if n++; n > stormRequests || rnd.Float64() >= 0.5 {
				return nil
			}
			throttled++
			f := &scimtest.Fault{Status: http.StatusTooManyRequests}
			if throttled%10 == 0 {
				f.RetryAfter = "1"
			}
			return f
		})
		st := w.pumpFaults(pumpOptions{feed: func() {
			// Twenty deliveries of 50 events (the hook packs each delivery's changes of a group
			// into one message: 80 messages); the next delivery arrives when the queue is nearly
			// drained.
			for i := 0; i < len(evs); i += 50 {
				w.waitDepth(20)
				w.deliver(evs[i:min(i+50, len(evs))]...)
			}
		}})
		t.Logf("sync: %s; %d SCIM requests, %d throttled (%d in the window)", st, w.scim.TotalRequests(), w.scim.Throttled(), throttled)
		w.expect(want)
		w.checkFaultWire()
		if inWindow := min(n, stormRequests); throttled*3 < inWindow {
			t.Errorf("only %d of %d requests throttled: the storm did not happen", throttled, inWindow)
		}
		if dead := w.dlq(); len(dead) != 0 {
			t.Fatalf("%d changes in the DLQ after a storm that passed: %+v", len(dead), dead[0])
		}
		if got := emfCount("ScimThrottles", w.syncs...); got != float64(w.scim.Throttled()) {
			t.Errorf("ScimThrottles metrics sum to %v, the emulator answered %d 429s", got, w.scim.Throttled())
		}
	})

	t.Run("5xx bursts", func(t *testing.T) {
		t.Parallel()
		w := newFaultWorld(t, aws, "bursts", faultOptions{scim: scimtest.Options{Seed: 12}})
		const users, groups = 100, 3
		want := map[string][]string{}
		gids := map[string]string{}
		for i := range users {
			login, id := faultUser("b", i)
			w.scim.AddUser(login, id)
		}
		for g := range groups {
			name := fmt.Sprintf("AWS_Burst%d", g)
			want[name] = []string{}
			if g < 2 {
				gids[name] = w.scim.AddGroup(name, "")
			}
		}
		var evs []oktaEvent
		for i := range users {
			login, uid := faultUser("b", i)
			for g := range groups {
				name, at := fmt.Sprintf("AWS_Burst%d", g), base.Add(time.Duration(i*groups+g)*time.Millisecond)
				kind := "add"
				if gids[name] != "" && i%4 == 0 {
					scimID, _ := w.scim.UserID(login)
					w.scim.AddMember(gids[name], scimID)
					kind = "remove"
				} else {
					want[name] = append(want[name], login)
				}
				evs = append(evs, memberEvent(kind, fmt.Sprintf("burst-%d-%03d", g, i), at, uid, login, fmt.Sprintf("00gBURST%d", g), name))
			}
		}
		w.addUnselected("Sales", "b001@example.com")
		want["Sales"] = []string{"b001@example.com"}

		// Three kinds of burst:
		//   - short ones, 3 to 6 consecutive requests failing with 500/502/503/504 at request
		//     counts 30, 80, 130 and 180: the client's retries absorb them;
		//   - one long enough to exhaust a request's retries (1 + 5 attempts): the first six
		//     PATCHes to AWS_Burst1 answer 503, so that batch's changes are reported failed and
		//     must come back and be applied;
		//   - a 500 after the write: the first POST /Groups creates the group, then answers 500;
		//     the retried POST meets a 409 and the worker must adopt the existing group.
		statuses := []int{500, 502, 503, 504}
		windows := [][2]int{{30, 33}, {80, 84}, {130, 135}, {180, 186}}
		var mu sync.Mutex
		var n, patches1, posts, injected int
		w.setFault(func(route string, r *http.Request) *scimtest.Fault {
			mu.Lock()
			defer mu.Unlock()
			n++
			for _, win := range windows {
				if n >= win[0] && n < win[1] {
					injected++
					return &scimtest.Fault{Status: statuses[n%len(statuses)]}
				}
			}
			switch {
			case route == "PATCH /Groups/{id}" && strings.HasSuffix(r.URL.Path, "/"+gids["AWS_Burst1"]):
				if patches1++; patches1 <= 6 {
					injected++
					return &scimtest.Fault{Status: http.StatusServiceUnavailable}
				}
			case route == "POST /Groups":
				if posts++; posts == 1 {
					var g struct{ DisplayName, ExternalID string }
					b, _ := io.ReadAll(r.Body)
					if err := json.Unmarshal(b, &g); err != nil || g.DisplayName == "" {
						t.Errorf("POST /Groups body %q: %v", b, err)
						return nil
					}
					w.scim.AddGroup(g.DisplayName, g.ExternalID)
					injected++
					return &scimtest.Fault{Status: http.StatusInternalServerError}
				}
			}
			return nil
		})
		st := w.pumpFaults(pumpOptions{feed: func() {
			// Deliveries of 9 events: 3 changes per packed message, many SCIM requests.
			for i := 0; i < len(evs); i += 9 {
				w.waitDepth(20)
				w.deliver(evs[i:min(i+9, len(evs))]...)
			}
		}})
		failed, requeued := batchTotals(w.syncs...)
		t.Logf("sync: %s; %d messages reported failed, %d changes isolated; %d SCIM requests, %d 5xx (%d injected), routes %v", st, failed, requeued, w.scim.TotalRequests(), w.scim.ServerErrors(), injected, w.scim.Requests())
		w.expect(want)
		w.checkFaultWire()
		if w.scim.ServerErrors() != injected || patches1 <= 6 || posts < 2 {
			t.Errorf("faults not injected as planned: %d 5xx of %d, %d PATCHes to AWS_Burst1, %d POST /Groups", w.scim.ServerErrors(), injected, patches1, posts)
		}
		if failed+requeued == 0 {
			t.Errorf("the exhausted PATCH was not reported or isolated: %s", st)
		}
		if dead := w.dlq(); len(dead) != 0 {
			t.Fatalf("%d changes in the DLQ after transient 5xx: %+v", len(dead), dead[0])
		}
	})

	t.Run("latency spike past the sync deadline", func(t *testing.T) {
		t.Parallel()
		// A 4 s function timeout leaves the worker 2 s of SCIM work (DefaultSafetyMargin is 2 s).
		w := newFaultWorld(t, aws, "deadline", faultOptions{scim: scimtest.Options{Seed: 13}, timeout: 4 * time.Second})
		const users = 60
		want := map[string][]string{"AWS_Slow0": {}, "AWS_Slow1": {}}
		gids := []string{w.scim.AddGroup("AWS_Slow0", ""), w.scim.AddGroup("AWS_Slow1", "")}
		var evs []oktaEvent
		for i := range users {
			login, uid := faultUser("d", i)
			w.scim.AddUser(login, uid)
			for g := range 2 {
				name := fmt.Sprintf("AWS_Slow%d", g)
				kind := "add"
				if i%6 == 0 {
					scimID, _ := w.scim.UserID(login)
					w.scim.AddMember(gids[g], scimID)
					kind = "remove"
				} else {
					want[name] = append(want[name], login)
				}
				evs = append(evs, memberEvent(kind, fmt.Sprintf("slow-%d-%03d", g, i), base.Add(time.Duration(i*2+g)*time.Millisecond), uid, login, fmt.Sprintf("00gSLOW%d", g), name))
			}
		}
		// The spike: while the 2nd and 3rd invocations run, every SCIM request takes 1.5 s, so an
		// invocation gets through one request, maybe two, before its 2 s of work run out. A
		// request whose client gave up is still carried out (as AWS may have done), so some
		// changes are in SCIM while the worker reports them failed: the retry must be harmless.
		var spike sync.Mutex
		slow := false
		w.setFault(func(_ string, r *http.Request) *scimtest.Fault {
			spike.Lock()
			on := slow
			spike.Unlock()
			if on {
				select {
				case <-time.After(1500 * time.Millisecond):
				case <-r.Context().Done():
				}
			}
			return nil
		})
		// Deliveries of 4 events (2 per group): 60 small packed messages, several invocations.
		for i := 0; i < len(evs); i += 4 {
			w.deliver(evs[i:min(i+4, len(evs))]...)
		}
		st := w.pumpFaults(pumpOptions{after: func(n int) {
			spike.Lock()
			defer spike.Unlock()
			// Short: a crashed invocation's messages come back after 1 s here (12 minutes in
			// production), so a long spike would spend receives that production spreads over hours.
			slow = n >= 1 && n < 3
		}})
		failed, requeued := batchTotals(w.syncs...)
		t.Logf("sync: %s; %d messages reported failed, %d changes isolated; %d SCIM requests", st, failed, requeued, w.scim.TotalRequests())
		w.expect(want)
		w.checkFaultWire()
		if failed+requeued+st.errors == 0 {
			t.Errorf("no change was reported unapplied during the spike: %s", st)
		}
		if failed := emfCount("ChangesFailed", w.syncs...); failed == 0 {
			t.Error("no ChangesFailed metric during the spike")
		}
		if dead := w.dlq(); len(dead) != 0 {
			t.Fatalf("%d changes in the DLQ after a latency spike: %+v", len(dead), dead[0])
		}
	})

	t.Run("SCIM token expired mid-run, then rotated in Secrets Manager", func(t *testing.T) {
		t.Parallel()
		const rotated = "scim-bearer-rotated-Qm7Vx2"
		w := newFaultWorld(t, aws, "token", faultOptions{scim: scimtest.Options{Seed: 14}, syncEnv: map[string]string{"SECRET_TTL": "1s"}})
		w.tokens = append(w.tokens, rotated)
		want := map[string][]string{}
		var evs []oktaEvent
		for g := range 3 {
			want[fmt.Sprintf("AWS_Token%d", g)] = []string{}
		}
		for i := range 40 {
			login, uid := faultUser("k", i)
			w.scim.AddUser(login, uid)
			for g := range 3 {
				name := fmt.Sprintf("AWS_Token%d", g)
				want[name] = append(want[name], login)
				evs = append(evs, memberEvent("add", fmt.Sprintf("token-%d-%03d", g, i), base.Add(time.Duration(i*3+g)*time.Millisecond), uid, login, fmt.Sprintf("00gTOKEN%d", g), name))
			}
		}
		deliver := func(evs []oktaEvent) {
			for i := 0; i < len(evs); i += 6 { // 2 changes per group and delivery
				w.deliver(evs[i:min(i+6, len(evs))]...)
			}
		}
		// The first third goes through with the original token.
		deliver(evs[:30])
		before := w.pumpFaults(pumpOptions{})
		// Then the token expires (every request 401, whatever it carries) while the rest arrives;
		// the worker runs two invocations against it (each failed message comes back after 1 s
		// and counts towards the redrive limit of 5).
		w.scim.ExpireToken(true)
		deliver(evs[30:])
		broken := w.pumpFaults(pumpOptions{stop: func(n int) bool { return n >= 2 }})
		brokenFailed, _ := batchTotals(w.syncs...)
		// The administrator issues a new token and stores it in the secret. Nobody restarts or
		// redeploys the functions.
		w.scim.SetToken(rotated)
		w.scim.ExpireToken(false)
		if err := w.moto.PutSecretValue(w.ctx, w.secret, harness.SecretJSON(e2eHookToken, rotated, "")); err != nil {
			t.Fatal(err)
		}
		after := w.pumpFaults(pumpOptions{})
		t.Logf("sync: before %s; broken %s (%d messages failed); after rotation %s; %d SCIM requests, %d answered 401",
			before, broken, brokenFailed, after, w.scim.TotalRequests(), w.scim.Unauthorized())
		w.expect(want)
		w.checkFaultWire()
		if w.scim.Unauthorized() == 0 || brokenFailed == 0 || broken.acknowledged != 0 {
			t.Errorf("the broken token did not fail the batches: %d 401s, %d messages failed, %d acknowledged", w.scim.Unauthorized(), brokenFailed, broken.acknowledged)
		}
		for _, rt := range w.syncs {
			if rt.Starts() != 1 {
				t.Errorf("a sync environment was restarted (%d starts): rotation must reach warm functions", rt.Starts())
			}
		}
		logs := w.syncs[0].Logs() + w.syncs[1].Logs()
		if !strings.Contains(logs, "SCIM rejected the bearer token") {
			t.Error("no log line says the SCIM token was rejected")
		}
		if n := emfCount("ScimUnauthorized", w.syncs...); n == 0 {
			t.Error("no ScimUnauthorized metric while the token was broken")
		}
		if dead := w.dlq(); len(dead) != 0 {
			t.Fatalf("%d messages in the DLQ after the rotation: %+v", len(dead), dead[0])
		}
	})

	t.Run("every delivery twice, shuffled: newest published wins", func(t *testing.T) {
		t.Parallel()
		w := newFaultWorld(t, aws, "churn", faultOptions{scim: scimtest.Options{Seed: 15}})
		rnd := rand.New(rand.NewPCG(15, 20))
		const users, deliveries, perDelivery = 50, 20, 15
		groups := []string{"AWS_Churn0", "AWS_Churn1", "Sales"} // Sales is not selected: the hook drops its events
		// Start: each user in each group with probability ½.
		member := map[[2]string]bool{}
		for _, g := range groups {
			var sel []string
			for i := range users {
				login, uid := faultUser("c", i)
				if g == groups[0] {
					w.scim.AddUser(login, uid)
				}
				if rnd.IntN(2) == 0 {
					sel = append(sel, login)
					member[[2]string{g, login}] = true
				}
			}
			if g == "Sales" {
				w.addUnselected(g, sel...)
				continue
			}
			gid := w.scim.AddGroup(g, "")
			for _, login := range sel {
				scimID, _ := w.scim.UserID(login)
				w.scim.AddMember(gid, scimID)
			}
		}
		// 300 events of add/remove churn, published at distinct random times within an hour;
		// about a third target Sales and must change nothing.
		times := rnd.Perm(3600_000)[:deliveries*perDelivery]
		newest := map[[2]string]oktaEvent{}
		var reqs []events.APIGatewayProxyRequest
		for d := range deliveries {
			var evs []oktaEvent
			for k := range perDelivery {
				g, i := rnd.IntN(len(groups)), rnd.IntN(users)
				login, uid := faultUser("c", i)
				kind := []string{"add", "remove"}[rnd.IntN(2)]
				e := memberEvent(kind, fmt.Sprintf("churn-%02d-%02d", d, k), base.Add(time.Duration(times[d*perDelivery+k])*time.Millisecond),
					uid, login, fmt.Sprintf("00gCHURN%d", g), groups[g])
				evs = append(evs, e)
				key := [2]string{groups[g], login}
				if cur, ok := newest[key]; groups[g] != "Sales" && (!ok || e.Published.After(cur.Published)) {
					newest[key] = e
				}
			}
			req := oktaDeliveryRequest(t, fmt.Sprintf("churn-delivery-%02d", d), evs)
			reqs = append(reqs, req, req) // Okta's retry: the same request again
		}
		rnd.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
		// The expected state, from the events alone: the newest published event of a (group,
		// user) decides; pairs without events keep their start.
		for key, e := range newest {
			member[key] = strings.HasSuffix(e.Type, ".add")
		}
		want := map[string][]string{}
		for _, g := range groups {
			want[g] = []string{}
			for i := range users {
				if login, _ := faultUser("c", i); member[[2]string{g, login}] {
					want[g] = append(want[g], login)
				}
			}
		}
		st := w.pumpFaults(pumpOptions{feed: func() {
			for _, req := range reqs {
				w.post(req)
			}
		}})
		t.Logf("sync: %s; %d SCIM requests (%d PATCH)", st, w.scim.TotalRequests(), w.scim.Count("PATCH /Groups/{id}"))
		w.expect(want)
		w.checkFaultWire()
		if dead := w.dlq(); len(dead) != 0 {
			t.Fatalf("%d changes in the DLQ: %+v", len(dead), dead[0])
		}
	})

	t.Run("one batch delivered to two concurrent sync invocations", func(t *testing.T) {
		t.Parallel()
		w := newFaultWorld(t, aws, "twin", faultOptions{scim: scimtest.Options{Seed: 16}})
		gid := w.scim.AddGroup("AWS_Twin", "")
		for i := range 12 {
			login, uid := faultUser("t", i)
			scimID := w.scim.AddUser(login, uid)
			if i < 5 {
				w.scim.AddMember(gid, scimID)
			}
		}
		ev := func(kind string, i int, at time.Duration, group string) oktaEvent {
			login, uid := faultUser("t", i)
			return memberEvent(kind, fmt.Sprintf("twin-%s-%s-%02d-%d", group, kind, i, at/time.Second), base.Add(at), uid, login, "00g"+strings.ToUpper(group), group)
		}
		rounds := []struct {
			evs  []oktaEvent
			want map[string][]string
		}{{
			// Adds t05–t08, removes t00–t02, t03 removed after an older add, and a group the
			// two invocations both find missing and both try to create.
			evs: []oktaEvent{ev("add", 5, 1*time.Second, "AWS_Twin"), ev("add", 6, 1*time.Second, "AWS_Twin"), ev("add", 7, 1*time.Second, "AWS_Twin"),
				ev("add", 8, 1*time.Second, "AWS_Twin"), ev("remove", 0, 1*time.Second, "AWS_Twin"), ev("remove", 1, 1*time.Second, "AWS_Twin"),
				ev("remove", 2, 1*time.Second, "AWS_Twin"), ev("add", 3, 1*time.Second, "AWS_Twin"), ev("remove", 3, 2*time.Second, "AWS_Twin"),
				ev("add", 9, 1*time.Second, "AWS_Twin2")},
			want: map[string][]string{"AWS_Twin": {"t004@example.com", "t005@example.com", "t006@example.com", "t007@example.com", "t008@example.com"},
				"AWS_Twin2": {"t009@example.com"}},
		}, {
			// Later: t00 back, t05 out, and in AWS_Twin2 an add and an older remove of t10.
			evs: []oktaEvent{ev("add", 0, 3*time.Second, "AWS_Twin"), ev("remove", 5, 3*time.Second, "AWS_Twin"),
				ev("add", 10, 4*time.Second, "AWS_Twin2"), ev("remove", 10, 3*time.Second, "AWS_Twin2"), ev("remove", 9, 3*time.Second, "AWS_Twin2")},
			want: map[string][]string{"AWS_Twin": {"t000@example.com", "t004@example.com", "t006@example.com", "t007@example.com", "t008@example.com"},
				"AWS_Twin2": {"t010@example.com"}},
		}}
		for r, round := range rounds {
			w.deliver(round.evs...)
			// Whatever the hook made of the delivery (one message per change or packed ones),
			// all of it in one batch.
			msgs, err := w.moto.Receive(w.ctx, w.queue.URL, 10)
			if err != nil {
				t.Fatal(err)
			}
			if depth, err := w.moto.Depth(w.ctx, w.queue.URL); err != nil || depth != len(msgs) {
				t.Fatalf("round %d: received %d messages, %d in the queue (%v)", r, len(msgs), depth, err)
			}
			sqsEv := harness.SQSEvent(w.queue.ARN, msgs)
			payload, err := json.Marshal(sqsEv)
			if err != nil {
				t.Fatal(err)
			}
			// The same bytes to both environments at once.
			var wg sync.WaitGroup
			resps := make([]events.SQSEventResponse, len(w.syncs))
			errs := make([]error, len(w.syncs))
			for i, rt := range w.syncs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := rt.Invoke(w.ctx, payload)
					if err == nil {
						err = json.Unmarshal(out, &resps[i])
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			var failures []events.SQSBatchItemFailure
			for i := range w.syncs {
				if errs[i] != nil {
					t.Fatalf("round %d: invocation %d: %v", r, i, errs[i])
				}
				failures = append(failures, resps[i].BatchItemFailures...)
			}
			// What both acknowledged is deleted; what either reported failed is retried by the
			// ordinary event source mapping.
			if err := w.moto.Acknowledge(w.ctx, w.queue.URL, msgs, failures); err != nil {
				t.Fatal(err)
			}
			if len(failures) > 0 {
				t.Logf("round %d: %d failures reported by the invocations; those messages are retried", r, len(failures))
				w.pumpFaults(pumpOptions{})
			}
			w.expect(round.want)
		}
		w.checkFaultWire()
		if c := w.scim.Count("POST /Groups"); c > 2 {
			t.Errorf("%d group creations for one missing group", c)
		}
		if dead := w.dlq(); len(dead) != 0 {
			t.Fatalf("%d changes in the DLQ: %+v", len(dead), dead[0])
		}
	})
}

// Reconcile while Okta fails for the large group (AWS_Engineering, 1,200 members over six pages
// of 200): whatever the removal cap, the run must not remove anyone from it. The removal cap is
// set far above the drift so that it is not what protects the group.
func TestFaultsReconcile(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	const noCap = "100000"

	run := func(t *testing.T, name string, inject func(w *recWorld), env map[string]string) (*recWorld, map[string][]string, recSummary, error) {
		t.Helper()
		w := newRecWorld(t, m, name)
		inject(w)
		before := w.scim.Snapshot()
		s, err := w.invoke(w.start(env), "{}")
		w.checkWire(before)
		t.Logf("summary: checked %d, skipped %+v, suspicious %v, added %d, removed %d, blocked %v; err %v",
			s.GroupsChecked, s.Skipped, s.SuspiciousGroups, s.Added, s.Removed, s.Blocked, err)
		return w, before, s, err
	}

	t.Run("Okta 500 on the third member page of the large group", func(t *testing.T) {
		w, before, s, err := run(t, "okta500-page3", func(w *recWorld) {
			// Two good pages (400 members) first: a reader that kept them would remove 800.
			w.okta.Inject(oktaFaultPage(w.groups["AWS_Engineering"], 2, http.StatusInternalServerError))
		}, map[string]string{"MAX_REMOVALS": noCap})
		if err != nil {
			t.Fatal(err)
		}
		w.wantUnchanged(before, "AWS_Engineering")
		w.wantInSync("AWS_Admins", "AWS_ReadOnly")
		if len(s.Skipped) != 1 || s.Skipped[0].Group != "AWS_Engineering" {
			t.Errorf("skipped %+v, want AWS_Engineering", s.Skipped)
		}
	})

	t.Run("Okta answers an empty list for the large group", func(t *testing.T) {
		w, before, s, _ := run(t, "okta-empty-nocap", func(w *recWorld) {
			w.okta.EmptyGroupMembers(w.groups["AWS_Engineering"], -1)
		}, map[string]string{"MAX_REMOVALS": noCap})
		w.wantUnchanged(before, "AWS_Engineering")
		w.wantInSync("AWS_Admins", "AWS_ReadOnly")
		if !slices.Contains(s.SuspiciousGroups, "AWS_Engineering") {
			t.Errorf("suspicious groups %v, want AWS_Engineering", s.SuspiciousGroups)
		}
	})

	t.Run("Okta answers an empty page in the middle of the large group", func(t *testing.T) {
		// Page 3 comes back empty without a next link: a truncated answer that looks complete,
		// 400 members instead of 1,200. The member listing alone cannot tell it apart from a real
		// group of 400; Okta's usersCount of the group (1,200) does. With the default removal cap
		// (100) the withheld removals still count, so the run is also blocked by the cap and fails.
		w, before, s, err := run(t, "okta-empty-page", func(w *recWorld) {
			w.okta.Inject(oktaEmptyPage(w.groups["AWS_Engineering"], 2))
		}, nil)
		if err == nil || !strings.Contains(err.Error(), "MAX_REMOVALS") {
			t.Errorf("err = %v, want the run blocked by MAX_REMOVALS", err)
		}
		after := w.scim.Snapshot()
		for _, g := range recSelected {
			if lost := lostMembers(before[g], after[g]); len(lost) > 0 {
				t.Errorf("%s lost %d members", g, len(lost))
			}
		}
		if s.Removed != 0 || !s.Blocked {
			t.Errorf("summary %+v", s)
		}
		wantPartialEngineering(t, s)
	})

	t.Run("Okta answers an empty page in the middle of the large group, no removal cap", func(t *testing.T) {
		// The incident: with MAX_REMOVALS far above the drift, a reader that believed the
		// truncated listing removed 788 of 1,200 members. Okta's count (1,200 members, 400
		// listed) withholds that group's removals; its adds and the other groups are repaired,
		// and the run does not fail for it.
		w, before, s, err := run(t, "okta-empty-page-nocap", func(w *recWorld) {
			w.okta.Inject(oktaEmptyPage(w.groups["AWS_Engineering"], 2))
		}, map[string]string{"MAX_REMOVALS": noCap})
		if err != nil {
			t.Fatal(err)
		}
		after := w.scim.Snapshot()
		if lost := lostMembers(before["AWS_Engineering"], after["AWS_Engineering"]); len(lost) > 0 {
			t.Errorf("AWS_Engineering lost %d members on a truncated Okta listing", len(lost))
		}
		if len(after["AWS_Engineering"]) <= len(before["AWS_Engineering"]) {
			t.Errorf("AWS_Engineering: %d → %d members: the adds from the listed pages should run",
				len(before["AWS_Engineering"]), len(after["AWS_Engineering"]))
		}
		w.wantInSync("AWS_Admins", "AWS_ReadOnly")
		if s.Removed != 10 || !s.Blocked || len(s.SuspiciousGroups) != 0 {
			t.Errorf("summary %+v: want AWS_Admins' 10 removals made, AWS_Engineering's withheld", s)
		}
		wantPartialEngineering(t, s)
	})

	t.Run("Okta 500 on the group listing", func(t *testing.T) {
		w, before, s, err := run(t, "okta500-list", func(w *recWorld) {
			w.okta.FailListGroups(http.StatusInternalServerError, -1)
		}, map[string]string{"MAX_REMOVALS": noCap})
		if err == nil {
			t.Error("a run that could not list the Okta groups succeeded")
		}
		if fmt.Sprint(before) != fmt.Sprint(w.scim.Snapshot()) {
			t.Error("SCIM changed although Okta could not be read")
		}
		if s.Removed != 0 || s.Added != 0 {
			t.Errorf("summary %+v", s)
		}
	})
}

// wantPartialEngineering checks that the summary names AWS_Engineering as listed partially (400 of
// 1,200 members: pages 1 and 2 of 200) with its 788 removals (the incident's) withheld.
func wantPartialEngineering(t *testing.T, s recSummary) {
	t.Helper()
	p := s.PartialGroups
	if len(p) != 1 || p[0].Group != "AWS_Engineering" || p[0].Listed != 400 || p[0].Counted != 1200 || p[0].RemovalsWithheld != 788 ||
		s.RemovalsBlocked < p[0].RemovalsWithheld {
		t.Errorf("partial groups %+v (removals blocked %d), want AWS_Engineering listed 400 of 1200 with its removals withheld", p, s.RemovalsBlocked)
	}
}

// lostMembers is who is in before but not in after.
func lostMembers(before, after []string) []string {
	var out []string
	for _, u := range before {
		if !slices.Contains(after, u) {
			out = append(out, u)
		}
	}
	return out
}
