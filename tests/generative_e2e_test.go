package tests

// The generative end-to-end test of the user-status rule and of reconcile convergence (issue 19,
// docs/SYNC.md "The user-status rule"): a seeded random sequence of Okta operations (adds,
// removes, renames into and out of the selection, group deletes, deactivations, reactivations,
// suspensions) is applied to the Okta fake, and the System Log events Okta would send for them
// are delivered through the real hook bootstrap: amalgamated, retried, shuffled, some late. Two
// real sync bootstraps (the template's MaximumConcurrency) drain the FIFO queue (template's
// settings, moto) with the template's StateTable (moto's DynamoDB), against the SCIM emulator
// answering some requests with 429 (Retry-After) or 5xx. With and without an Okta API token.
//
// Invariants:
//   (a) once the queue is drained, no DEPROVISIONED Okta user is in any managed AWS group, no
//       unselected AWS group was written, and the DLQ is empty (this workload has nothing that
//       may end there; whatever does is printed with its reason);
//   (b) after one run of the real reconcile bootstrap, every selected Okta group's AWS group
//       (by externalId, under the Okta name) has exactly Okta's granted members. Explained, not
//       failures: the orphan reported for a group deleted in Okta, and the documented
//       empty-answer guard (a group Okta lists nobody in while AWS has members keeps them and is
//       reported in suspiciousGroups; docs/RECONCILE.md, step 7).
//
// GEN_SEED, GEN_OPS and GEN_RUNS choose the runs (make gen runs many); every failure prints the
// command that replays exactly that run.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

func TestGenerative(t *testing.T) {
	t.Parallel()
	b := genBudgetFromEnv(t)
	t.Logf("GEN_SEED=%d GEN_OPS=%d GEN_RUNS=%d", b.seed, b.ops, b.runs)
	aws := startFaultAWS(t)
	for _, mode := range []string{"with_okta_token", "without_okta_token"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for i := range b.runs {
				seed := b.seed + uint64(i)
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					t.Cleanup(func() {
						if t.Failed() {
							t.Logf("replay: %s", genReplay(mode, seed, b.ops))
						}
					})
					runGenerative(t, aws, mode == "with_okta_token", seed, b.ops)
				})
			}
		})
	}
}

func runGenerative(t *testing.T, aws faultAWS, token bool, seed uint64, ops int) {
	okta := oktatest.New(oktatest.Options{Token: idOktaToken})
	oktaURL, err := okta.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = okta.Close() })

	name := fmt.Sprintf("gen-n-%d", seed)
	o := faultOptions{scim: scimtest.Options{Seed: seed}}
	if token {
		name = fmt.Sprintf("gen-t-%d", seed)
		o.oktaToken, o.syncEnv = idOktaToken, map[string]string{"OKTA_ORG_URL": oktaURL}
	}
	w := newFaultWorld(t, aws, name, o)
	org := newGenOrg(seed, okta, w.scim, ops)
	// A hand-made AWS group outside the selection: never written (checkFaultWire), whoever in
	// it is deactivated.
	users := org.Users()
	w.addUnselected("Sales", users[0].Login, users[1].Login)
	for range ops {
		org.Step()
	}
	d := org.deliveries(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operations:\n  %s\ndeliveries (%d on time, %d late):\n  %s", strings.Join(org.Log(), "\n  "),
				len(d.onTime), len(d.late), strings.Join(d.log, "\n  "))
		}
	})

	// SCIM answers about 3 % of requests with 429 and Retry-After: 1 (AWS sends whole seconds)
	// and 2 % with a 5xx, seeded. In every third run, an outage of 10 consecutive requests (503)
	// somewhere in the first 40 can outlast a request's retries (1 + 5 attempts), so that its
	// changes fail and come back after the worker's backoff (5 s, then 10 s), behind later ones.
	var mu sync.Mutex
	faults := rand.New(rand.NewPCG(seed, 0x5c1a))
	outage := -1
	if faults.IntN(3) == 0 {
		outage = faults.IntN(40)
	}
	var n, throttled, failed int
	w.setFault(func(string, *http.Request) *scimtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if n++; outage >= 0 && n > outage && n <= outage+10 {
			failed++
			return &scimtest.Fault{Status: http.StatusServiceUnavailable}
		}
		switch p := faults.Float64(); {
		case p < 0.03:
			throttled++
			return &scimtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}
		case p < 0.05:
			failed++
			return &scimtest.Fault{Status: []int{500, 502, 503}[faults.IntN(3)]}
		}
		return nil
	})

	st := w.pumpFaults(pumpOptions{feed: func() {
		for _, req := range d.onTime {
			w.post(req)
		}
		// The late deliveries arrive once everything before them was applied.
		w.waitDepth(0)
		for _, req := range d.late {
			w.post(req)
		}
	}})
	mu.Lock()
	t.Logf("%d operations, %d events in %d+%d deliveries; sync: %s; SCIM %d requests, %d answered 429, %d 5xx",
		ops, len(org.Events()), len(d.onTime), len(d.late), st, w.scim.TotalRequests(), throttled, failed)
	mu.Unlock()
	w.checkFaultWire()
	sales := w.scim.Snapshot()["Sales"]
	if want := []string{users[0].Login, users[1].Login}; !slices.Equal(sales, want) {
		t.Errorf("Sales (not selected) = %v, want %v untouched", sales, want)
	}

	// DLQ: nothing in this workload is meant to end there (every user is provisioned, names are
	// never shared between groups); whatever is there must at least say why.
	for _, m := range harness.MustReceiveAll(t, w.moto, w.queue.DLQURL) {
		t.Errorf("dead-lettered (reason %q): %s", m.MessageAttributes[queue.ReasonAttribute], m.Body)
	}

	// (a) No deactivated user in a managed AWS group.
	if bad := genDeprovisionedMembers(org, w.scim.Snapshot()); len(bad) > 0 {
		t.Errorf("(a) after the queue drained, DEPROVISIONED Okta users are in managed AWS groups: %v", bad)
		genAuditTrail(t, org, bad, w.syncs...)
		t.FailNow()
	}

	// (b) One reconcile run makes AWS equal Okta's granted membership.
	recSecret := w.secret
	if !token {
		recSecret = harness.MustCreateSecret(t, w.moto, "okta-aws-sso-sync-reconcile-"+name, harness.SecretJSON(e2eHookToken, e2eSCIMToken, idOktaToken))
	}
	var s recSummary
	reconcileOnce(t, w.ctx, harness.MergeEnv(aws.env(), map[string]string{
		"SECRET_ID": recSecret, "SCIM_URL": w.scimURL, "OKTA_ORG_URL": oktaURL, "STATE_TABLE": w.table, "LOG_LEVEL": "info",
	}), "reconcile-"+name, &s)
	t.Logf("reconcile: adds %d, removes %d, added %d, removed %d, created %d, suspicious %v, skipped %+v, orphans %d, errors %v",
		s.Adds, s.Removes, s.Added, s.Removed, s.GroupsCreated, s.SuspiciousGroups, s.Skipped, len(s.Orphans), s.Errors)
	// A deleted Okta group's AWS group stays (DELETE_GROUPS is off by default) and is reported as
	// an orphan, in the summary's errors too (docs/RECONCILE.md, step 3): explained. Anything
	// else is not.
	var unexplained []string
	for _, e := range s.Errors {
		if !slices.ContainsFunc(s.Orphans, func(o orphan) bool { return org.deleted(o.ExternalID) && strings.Contains(e, o.ExternalID) }) {
			unexplained = append(unexplained, e)
		}
	}
	for _, o := range s.Orphans {
		if !org.deleted(o.ExternalID) {
			unexplained = append(unexplained, fmt.Sprintf("orphan %+v of a group Okta still has", o))
		}
	}
	if len(unexplained) > 0 || len(s.Skipped) > 0 || len(s.PartialGroups) > 0 || s.Failed > 0 {
		t.Errorf("(b) reconcile did not complete: errors %v, skipped %+v, partial %+v, failed %d", unexplained, s.Skipped, s.PartialGroups, s.Failed)
	}
	snap := w.scim.Snapshot()
	byExternal := map[string][]scimtest.GroupInfo{}
	for _, g := range w.scim.Groups() {
		byExternal[g.ExternalID] = append(byExternal[g.ExternalID], g)
	}
	for id, want := range org.granted() {
		oktaName, err := okta.GroupName(id)
		if err != nil {
			t.Fatal(err)
		}
		carriers := byExternal[id]
		switch {
		case len(carriers) == 0 && len(want) == 0:
			continue
		case len(carriers) != 1:
			t.Errorf("(b) Okta group %s (%s): %d AWS groups carry its id %+v", oktaName, id, len(carriers), carriers)
			continue
		case carriers[0].DisplayName != oktaName:
			t.Errorf("(b) Okta group %s (%s): its AWS group is named %q", oktaName, id, carriers[0].DisplayName)
		}
		got := snap[carriers[0].DisplayName]
		if listed, _ := okta.Members(id); len(listed) == 0 && len(got) > 0 && slices.Contains(s.SuspiciousGroups, oktaName) {
			// The empty-answer guard: Okta listed nobody, AWS keeps its members, reported.
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("(b) after one reconcile, %s (%s) has %v in AWS, Okta grants %v", oktaName, id, got, want)
		}
	}
	if bad := genDeprovisionedMembers(org, snap); len(bad) > 0 {
		t.Errorf("(a) after the reconcile, DEPROVISIONED Okta users are in managed AWS groups: %v", bad)
	}
}

// genDeprovisionedMembers lists "group: login" for every DEPROVISIONED Okta user in a managed AWS
// group (one whose current AWS name is selected, docs/SYNC.md).
func genDeprovisionedMembers(org *genOrg, snap map[string][]string) []string {
	var bad []string
	for _, u := range org.Users() {
		for name, members := range snap {
			if org.deprovisioned(u) && genSelected(name) && slices.Contains(members, u.Login) {
				bad = append(bad, name+": "+u.Login)
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// genAuditTrail logs what the sync environments said about the users of the violations: their
// audit records and lifecycle lines, in each environment's order.
func genAuditTrail(t *testing.T, org *genOrg, bad []string, rts ...*harness.Runtime) {
	t.Helper()
	for _, b := range bad {
		login := b[strings.Index(b, ": ")+2:]
		var id string
		for _, u := range org.Users() {
			if u.Login == login {
				id = u.ID
			}
		}
		for i, rt := range rts {
			var lines []string
			for _, line := range rt.Output().Lines() {
				if strings.Contains(line, `"`+login+`"`) || strings.Contains(line, id) {
					lines = append(lines, line)
				}
			}
			t.Logf("sync %d on %s (%s):\n  %s", i, login, id, strings.Join(lines, "\n  "))
		}
	}
}
