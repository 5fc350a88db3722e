package syncer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
)

// The user-status rule (users.go): a user's newest lifecycle status, recorded as its status mark,
// decides whether any later-processed membership add of the user is applied.

func (w *lifecycleWorld) statusMark(userID string) (membership.Mark, bool) {
	w.t.Helper()
	marks, err := w.ledger.Get(context.Background(), []ledger.Key{ledger.StatusKey(userID)})
	if err != nil {
		w.t.Fatal(err)
	}
	m, ok := marks[ledger.StatusKey(userID)]
	return m, ok
}

// notApplied asserts an audit record saying the add of (group, user) event uuid was not applied.
func (w *lifecycleWorld) notApplied(uuid string) {
	w.t.Helper()
	for _, line := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"audit"`) && strings.Contains(line, `"event_uuid":"`+uuid+`"`) &&
			strings.Contains(line, `"result":"not_applied"`) && strings.Contains(line, "user deprovisioned in Okta at") {
			return
		}
	}
	w.t.Fatalf("no not_applied audit record for %s:\n%s", uuid, w.logs.String())
}

// Issue 19 path 2: without a token, a deactivation of a user SCIM does not have yet leaves its
// status mark; an older add (an isolated new-hire add) delivered after it, once the user is
// provisioned, is not applied.
func TestStatusOlderAddAfterDeactivationOfUserNotInSCIM(t *testing.T) {
	w := newLifecycleWorld(t, false)
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uNew", "new@example.com"))
	if m, ok := w.statusMark("00uNew"); !ok || m.Kind != membership.KindUserDeactivate || !m.Published.Equal(t0) || m.EventUUID != "d1" {
		t.Fatalf("status mark %+v, %v", m, ok)
	}
	w.user("new@example.com", "00uNew") // Okta's AWS app provisions the user meanwhile
	w.srv.ResetCounters()
	w.mustApply(change(membership.KindAdd, "a0", t0.Add(-time.Minute), "00uNew", "new@example.com", "00gA", "AWS_Admins"))
	w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}})
	if n := w.srv.TotalRequests(); n != 0 {
		t.Fatalf("%d SCIM requests for an add the status mark refuses", n)
	}
	w.notApplied("a0")
	if marks, _ := w.ledger.Get(context.Background(), []membership.Key{{GroupID: "00gA", UserID: "00uNew"}}); len(marks) != 0 {
		t.Fatalf("membership mark %v written for an add not applied", marks)
	}
	if w.metric("ChangesSkipped") == 0 {
		t.Fatal("the refused add is not counted as skipped")
	}
}

// Issue 19 path 4: an add published after the deactivation (Okta lets an admin add a deactivated
// user) is not applied, with or without a token; a reactivation later restores with a token.
func TestStatusAddPublishedAfterDeactivationWaitsForReactivation(t *testing.T) {
	for _, withToken := range []bool{true, false} {
		t.Run(map[bool]string{true: "token", false: "no token"}[withToken], func(t *testing.T) {
			w := newLifecycleWorld(t, withToken)
			w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
			w.mustApply(change(membership.KindAdd, "a1", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gB", "AWS_Dev"))
			w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
			w.notApplied("a1")
			w.mustApply(lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com"))
			if withToken {
				w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
				return
			}
			w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
			// Reactivated: the next add applies.
			w.mustApply(change(membership.KindAdd, "a2", t0.Add(2*time.Minute), "00uAnn", "ann@example.com", "00gB", "AWS_Dev"))
			w.expect(map[string][]string{"AWS_Dev": {"ann@example.com"}})
		})
	}
}

// A deactivation delivered after a newer reactivation was applied is stale: nothing is removed.
func TestStatusLateDeactivationAfterReactivationIsStale(t *testing.T) {
	for _, withToken := range []bool{true, false} {
		t.Run(map[bool]string{true: "token", false: "no token"}[withToken], func(t *testing.T) {
			w := newLifecycleWorld(t, withToken)
			w.mustApply(lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com"))
			w.srv.ResetCounters()
			w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
			w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
			if n := w.srv.TotalRequests(); n != 0 {
				t.Fatalf("%d SCIM requests for a stale deactivation", n)
			}
			if m, _ := w.statusMark("00uAnn"); m.EventUUID != "r1" {
				t.Fatalf("status mark %+v, want the reactivation kept", m)
			}
			if !strings.Contains(w.logs.String(), "user lifecycle change is stale") {
				t.Fatalf("no log line for the stale deactivation:\n%s", w.logs.String())
			}
		})
	}
}

// Issue 19 path 3: with a token, an AWS group whose Okta group was renamed out of the selection
// while the AWS group keeps its selected name is still managed: the deactivation removes the
// user. Redelivered, it lists SCIM again and sends no PATCH.
func TestStatusRevokeCoversAWSGroupWhoseOktaGroupLeftTheSelection(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.okta.userGroups["00uAnn"] = []okta.Group{{ID: "00gA", Name: "AWS_Admins"}, {ID: "00gB", Name: "Dev_Renamed"}, {ID: "00gS", Name: "Sales"}}
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil, "Sales": {"ann@example.com"}})
	// No membership marks: the status mark is the removes' ordering memory.
	if marks, _ := w.ledger.Get(context.Background(), []membership.Key{{GroupID: "00gA", UserID: "00uAnn"}, {GroupID: "00gB", UserID: "00uAnn"}}); len(marks) != 0 {
		t.Fatalf("membership marks %v written by a revoke", marks)
	}
	w.srv.ResetCounters()
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	if p, g := w.srv.Count("PATCH /Groups/{id}"), w.srv.Count("GET /Groups"); p != 0 || g != 1 {
		t.Fatalf("redelivery: %d PATCHes, %d group listings; want 0 and 1", p, g)
	}
}

// A newer add mark does not keep a deprovisioned user in AWS: status-driven removes bypass
// membership-mark ordering.
func TestStatusRevokeIgnoresNewerAddMarks(t *testing.T) {
	w := newLifecycleWorld(t, false)
	if err := w.ledger.Put(context.Background(), []ledger.Record{ledger.RecordOf(change(membership.KindAdd, "a9", t0.Add(time.Hour), "00uAnn", "ann@example.com", "00gA", "AWS_Admins"))}); err != nil {
		t.Fatal(err)
	}
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}})
}

// statusFailLedger fails writes of status marks while fail is set.
type statusFailLedger struct {
	ledger.Ledger
	fail bool
}

func (l *statusFailLedger) PutReport(ctx context.Context, recs []ledger.Record) ([]bool, error) {
	for _, r := range recs {
		if l.fail && ledger.IsStatusKey(r.Key) {
			return make([]bool, len(recs)), errors.New("ProvisionedThroughputExceededException")
		}
	}
	return l.Ledger.PutReport(ctx, recs)
}

// A status mark that cannot be written fails the lifecycle message before any PATCH: retried.
func TestStatusWriteFailureRetriesTheLifecycleChange(t *testing.T) {
	var sl *statusFailLedger
	w := newLifecycleWorld(t, true)
	sl = &statusFailLedger{Ledger: w.cfg.Ledger, fail: true}
	w.cfg.Ledger = sl
	ev := w.event(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	if failed := w.invoke(context.Background(), ev); !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v: a deactivation whose status could not be recorded must be retried", failed)
	}
	if n := w.srv.Count("PATCH /Groups/{id}"); n != 0 {
		t.Fatalf("%d PATCHes before the status mark was written", n)
	}
	sl.fail = false
	if failed := w.invoke(context.Background(), ev); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
}

// A dry run writes nothing, and an add after the deactivation in the same batch is reported as
// not applied, not as a dry-run add.
func TestStatusDryRunWritesNothing(t *testing.T) {
	for _, withToken := range []bool{true, false} {
		w := newLifecycleWorld(t, withToken)
		w.cfg.DryRun = true
		w.srv.ResetCounters()
		w.mustApply(
			lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"),
			change(membership.KindAdd, "a1", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gB", "AWS_Dev"),
		)
		w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
		writes := w.srv.Count("PATCH /Groups/{id}") + w.srv.Count("POST /Groups") + w.srv.Count("DELETE /Groups/{id}") + w.srv.Count("POST /Users")
		if writes != 0 || w.ledger.Len() != 0 {
			t.Fatalf("dry run (token %v): %d SCIM writes, %d marks", withToken, writes, w.ledger.Len())
		}
		w.notApplied("a1")
	}
}
