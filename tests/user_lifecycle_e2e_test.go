package tests

// End-to-end tests of user lifecycle events (docs/SYNC.md, "User lifecycle"): Okta keeps a
// deactivated user's group memberships and sends no removes, so the deactivation event itself
// must take the user out of AWS. Each scenario runs the real hook and sync bootstraps on a queue
// with the template's settings (moto), against the SCIM emulator and, with an Okta API token, the
// Okta API emulator (idWorld). Whatever the token setting, a revoke removes the user from the
// managed AWS groups SCIM lists for it, and the user's status mark keeps later adds out.

import (
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

func lifecycleEvent(typ, uuid string, at time.Time, userID, login string) oktaEvent {
	return oktaEvent{UUID: uuid, Type: "user.lifecycle." + typ, Published: at, UserID: userID, Login: login}
}

// applyNow delivers events and drains the queue; the changes must be applied by the first sync
// invocation (within seconds, no retry after a backoff).
func (w *idWorld) applyNow(evs ...oktaEvent) {
	w.t.Helper()
	w.deliver(evs...)
	if n := w.pump(); n != 1 {
		w.t.Fatalf("%d sync invocations, want 1: the change was not applied at once\n%s", n, w.sync.Logs())
	}
}

func TestUserLifecycleEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	const ann, bob = "ann@example.com", "bob@example.com"

	t.Run("with_okta_token", func(t *testing.T) {
		w := newIDWorld(t, m, "life-okta", false, nil)
		annID, bobID := w.user(ann), w.user(bob)
		admins := w.oktaGroup("AWS_Admins", ann, bob)
		dev := w.oktaGroup("AWS_Dev", ann)
		sales := w.oktaGroup("Sales", ann)
		w.awsGroup("AWS_Admins", admins, ann, bob)
		w.awsGroup("AWS_Dev", dev, ann)
		w.awsGroup("Sales", sales, ann) // not selected: never touched

		// Deactivated: Okta keeps her memberships, the event alone removes her from every
		// selected AWS group.
		if err := w.okta.SetUserStatus(annID, "DEPROVISIONED"); err != nil {
			t.Fatal(err)
		}
		w.applyNow(lifecycleEvent("deactivate", "deact-1", t0, annID, ann))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "Sales": {ann}})
		if st := w.okta.Stats(); st.UserGroups != 0 {
			t.Fatalf("Okta stats %+v: a revoke reads the user's groups from SCIM, not from Okta", st)
		}

		// An add published before the deactivation, delivered after it, does not re-add her.
		w.step(w.member("add", "late-add", t0.Add(-time.Second), ann, admins, "AWS_Admins"))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "Sales": {ann}})

		// Suspended: Okta blocks the sign-in and keeps the memberships; so does AWS.
		if err := w.okta.SetUserStatus(bobID, "SUSPENDED"); err != nil {
			t.Fatal(err)
		}
		w.applyNow(lifecycleEvent("suspend", "susp-1", t0.Add(time.Minute), bobID, bob))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "Sales": {ann}})

		// The reconciler applies the same rule: nothing to repair (the deactivated member
		// listed by Okta is not wanted, the suspended one is).
		if s := w.reconcile(); s.Added != 0 || s.Removed != 0 || len(s.Errors) != 0 {
			t.Fatalf("reconcile disagrees with the lifecycle events: %+v", s)
		}

		if err := w.okta.SetUserStatus(bobID, "ACTIVE"); err != nil {
			t.Fatal(err)
		}
		w.applyNow(lifecycleEvent("unsuspend", "susp-2", t0.Add(2*time.Minute), bobID, bob))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "Sales": {ann}})

		// Reactivated: the memberships Okta still lists come back.
		if err := w.okta.SetUserStatus(annID, "ACTIVE"); err != nil {
			t.Fatal(err)
		}
		w.applyNow(lifecycleEvent("reactivate", "react-1", t0.Add(3*time.Minute), annID, ann))
		w.expect(map[string][]string{"AWS_Admins": {ann, bob}, "AWS_Dev": {ann}, "Sales": {ann}})
		if st := w.okta.Stats(); st.UserGroups != 1 {
			t.Fatalf("Okta stats %+v: the restore did not read the user's groups from Okta", st)
		}

		// The deactivation delivered once more (a redrive): older than the restore, a no-op.
		w.step(lifecycleEvent("deactivate", "deact-1", t0, annID, ann))
		w.expect(map[string][]string{"AWS_Admins": {ann, bob}, "AWS_Dev": {ann}, "Sales": {ann}})
		w.checkWire()
		if r := w.dlqReasons(); len(r) != 0 {
			t.Fatalf("DLQ %v", r)
		}
	})

	t.Run("without_okta_token", func(t *testing.T) {
		// No OKTA_ORG_URL: the worker has no Okta API (and the reconciler's schedule is off).
		w := newIDWorld(t, m, "life-scim", false, map[string]string{"OKTA_ORG_URL": ""})
		annID, bobID := w.user(ann), w.user(bob)
		admins, dev := "00gLIFEADMINS0000001", "00gLIFEDEV0000000002"
		w.awsGroup("AWS_Admins", admins, ann, bob)
		w.awsGroup("AWS_Dev", dev, ann)
		w.awsGroup("AWS_Legacy", "", ann) // an AWS group no Okta group id is linked to yet
		w.awsGroup("Sales", "", ann)      // not selected: never touched

		w.applyNow(lifecycleEvent("deactivate", "deact-1", t0, annID, ann))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "AWS_Legacy": {}, "Sales": {ann}})
		if logs := w.sync.Logs(); !strings.Contains(logs, "every managed AWS group SCIM lists") {
			t.Fatalf("the deactivation was not applied from SCIM's groups:\n%s", logs)
		}

		// Neither an older add delivered late nor a newer one re-adds her while she is
		// deactivated (her status mark).
		w.step(w.member("add", "late-add", t0.Add(-time.Second), ann, admins, "AWS_Admins"))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "AWS_Legacy": {}, "Sales": {ann}})
		w.step(w.member("add", "new-add", t0.Add(time.Second), ann, dev, "AWS_Dev"))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "AWS_Legacy": {}, "Sales": {ann}})

		// Suspend keeps.
		w.applyNow(lifecycleEvent("suspend", "susp-1", t0.Add(time.Minute), bobID, bob))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "AWS_Legacy": {}, "Sales": {ann}})

		// A reactivation cannot know what to restore without Okta: it says so and changes nothing.
		w.applyNow(lifecycleEvent("reactivate", "react-1", t0.Add(2*time.Minute), annID, ann))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {}, "AWS_Legacy": {}, "Sales": {ann}})
		if logs := w.sync.Logs(); !strings.Contains(logs, "restoring its AWS group memberships needs okta_api_token") {
			t.Fatalf("no warning for the reactivation:\n%s", logs)
		}
		// Active again: the next add applies.
		w.step(w.member("add", "next-add", t0.Add(3*time.Minute), ann, dev, "AWS_Dev"))
		w.expect(map[string][]string{"AWS_Admins": {bob}, "AWS_Dev": {ann}, "AWS_Legacy": {}, "Sales": {ann}})
		w.checkWire()
		if r := w.dlqReasons(); len(r) != 0 {
			t.Fatalf("DLQ %v", r)
		}
	})
}
