package tests

// End-to-end test of issue 19 path 5 (docs/SYNC.md and docs/RECONCILE.md, "The identity rule"):
// two AWS groups carry one Okta group's id as externalId (the second one tagged by hand in IAM
// Identity Center). Neither is written for that Okta group, by sync or reconcile, warm or cold,
// whichever of them SCIM lists first; the conflict is dead-lettered with its reason, counted and
// reported; a deactivated user still leaves both. Through the real hook, sync and reconcile
// bootstraps, the template's queue and StateTable in moto, and the SCIM and Okta emulators.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// conflictSummary is the part of the reconcile summary this test reads.
type conflictSummary struct {
	Added, Removed    int
	Orphans           []struct{ SCIMGroupID string }
	Skipped           []struct{ Group, GroupID, Reason string }
	IdentityConflicts []struct {
		Group, GroupID, Reason string
		SCIMGroupIDs           []string `json:"scimGroupIds"`
	} `json:"identityConflicts"`
	Errors []string
}

// reconcileOutput runs the reconcile bootstrap once and returns its summary and its output.
func (w *idWorld) reconcileOutput() (conflictSummary, *harness.Runtime) {
	w.t.Helper()
	var s conflictSummary
	rt := reconcileInvoke(w.t, w.ctx, w.recEnv, "reconcile-identity-"+w.name, "{}", &s)
	return s, rt
}

func TestAccessIdentityEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	const ann, bob, cat, dan = "ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"

	// Cold: the hand-tagged copy was made first, so SCIM lists it first. Warm: the container
	// cached AWS_Admins (an add applied to it) before the copy was tagged.
	eachContainer(t, m, "dupext", nil, func(t *testing.T, w *idWorld) {
		annID := w.user(ann)
		w.user(bob)
		w.user(cat)
		w.user(dan)
		admins := w.oktaGroup("AWS_Admins", ann, bob)
		var mine, copied string
		tag := func() { copied = w.awsGroup("AWS_Admins_Team", admins, ann) }
		if w.cold {
			tag()
		}
		mine = w.awsGroup("AWS_Admins", admins, ann, bob)
		if !w.cold {
			if err := w.okta.AddMember(admins, w.users[cat]); err != nil {
				t.Fatal(err)
			}
			w.step(w.member("add", "dup-warmup", t0.Add(-time.Minute), cat, admins, "AWS_Admins"))
			if got := w.scim.Snapshot()["AWS_Admins"]; !slices.Contains(got, cat) {
				t.Fatalf("warm-up add not applied: %v\n%s", got, w.sync.Logs())
			}
			tag()
		}
		ids := []string{mine, copied}
		slices.Sort(ids)
		reasonOK := func(r string) bool {
			return strings.Contains(r, "2 AWS groups carry Okta group "+admins) && strings.Contains(r, ids[0]) && strings.Contains(r, ids[1])
		}
		before := w.scim.Snapshot()
		noWrites := func(what string) {
			t.Helper()
			if n := w.scim.Writes(); n != 0 {
				t.Fatalf("%s: %d SCIM writes (%v), want 0", what, n, w.scim.Requests())
			}
			if got := w.scim.Snapshot(); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("%s: AWS %v → %v", what, before, got)
			}
		}

		// A delivery for the group: an add and a remove. Both end in the DLQ with the reason,
		// nothing is written to either group, the conflict is counted.
		if err := w.okta.AddMember(admins, w.users[dan]); err != nil {
			t.Fatal(err)
		}
		if err := w.okta.RemoveMember(admins, w.users[bob]); err != nil {
			t.Fatal(err)
		}
		w.scim.ResetCounters()
		w.step(
			w.member("add", "dup-add", t0, dan, admins, "AWS_Admins"),
			w.member("remove", "dup-remove", t0.Add(time.Millisecond), bob, admins, "AWS_Admins"),
		)
		noWrites("add and remove")
		if r := w.dlqReasons(); len(r) != 2 || !reasonOK(r[0]) || !reasonOK(r[1]) {
			t.Fatalf("DLQ reasons %q, want the add and the remove with the duplicated externalId naming %v\n%s", r, ids, w.sync.Logs())
		}
		if n := emfCount("GroupIdentityConflicts", w.sync); n < 1 {
			t.Fatalf("GroupIdentityConflicts %v", n)
		}

		// A rename of the group: refused the same way.
		if err := w.okta.SetGroupName(admins, "AWS_Admins_EU"); err != nil {
			t.Fatal(err)
		}
		w.step(groupEvent("group.profile.update", "dup-rename", t0.Add(time.Second), admins, "AWS_Admins_EU"))
		noWrites("rename")
		if r := w.dlqReasons(); len(r) != 1 || !reasonOK(r[0]) {
			t.Fatalf("DLQ reasons %q, want the rename with the duplicated externalId", r)
		}

		// The reconciler skips the group: no adds (dan), no removes (bob), no rename; the
		// conflict is in the summary and counted.
		s, rec := w.reconcileOutput()
		noWrites("reconcile")
		if len(s.IdentityConflicts) != 1 || s.IdentityConflicts[0].GroupID != admins || !slices.Equal(s.IdentityConflicts[0].SCIMGroupIDs, ids) {
			t.Fatalf("identity conflicts %+v, want %s with %v", s.IdentityConflicts, admins, ids)
		}
		if len(s.Skipped) != 1 || s.Skipped[0].GroupID != admins || !reasonOK(s.Skipped[0].Reason) || len(s.Orphans) != 0 || s.Added+s.Removed != 0 {
			t.Fatalf("summary %+v", s)
		}
		if !slices.ContainsFunc(s.Errors, func(e string) bool { return strings.Contains(e, "identity conflict") }) {
			t.Fatalf("summary errors %v: the run's result does not say so", s.Errors)
		}
		if n := emfCount("GroupIdentityConflicts", rec); n != 1 {
			t.Fatalf("reconcile GroupIdentityConflicts %v, want 1", n)
		}

		// A deactivation still removes the user from both groups.
		if err := w.okta.SetUserStatus(annID, "DEPROVISIONED"); err != nil {
			t.Fatal(err)
		}
		w.applyNow(lifecycleEvent("deactivate", "dup-deact", t0.Add(2*time.Second), annID, ann))
		snap := w.scim.Snapshot()
		if slices.Contains(snap["AWS_Admins"], ann) || slices.Contains(snap["AWS_Admins_Team"], ann) {
			t.Fatalf("after the deactivation %v: ann is still in a managed group", snap)
		}
		want := slices.DeleteFunc(slices.Clone(before["AWS_Admins"]), func(l string) bool { return l == ann })
		if !slices.Equal(snap["AWS_Admins"], want) || len(snap["AWS_Admins_Team"]) != 0 {
			t.Fatalf("after the deactivation %v", snap)
		}
		if r := w.dlqReasons(); len(r) != 0 {
			t.Fatalf("DLQ %v after the deactivation", r)
		}
		w.checkWire()
	})
}
