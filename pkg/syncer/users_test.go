package syncer

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// lifecycleOkta is fakeOkta that also lists users' groups, as functions/sync's Okta access does
// with okta_api_token.
type lifecycleOkta struct {
	*fakeOkta
	mu         sync.Mutex
	userGroups map[string][]okta.Group
	err        error // answered instead, while set
	calls      int
}

func (o *lifecycleOkta) UserGroups(_ context.Context, id string) ([]okta.Group, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.err != nil {
		return nil, o.err
	}
	gs, ok := o.userGroups[id]
	if !ok {
		return nil, &okta.ReadError{Op: "list user groups", UserID: id, Status: http.StatusNotFound}
	}
	return gs, nil
}

func (o *lifecycleOkta) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
}

func lifecycle(kind membership.Kind, uuid string, at time.Time, userID, login string) membership.Change {
	return membership.Change{EventUUID: uuid, Published: at, Kind: kind, UserID: userID, Login: login}
}

// lifecycleWorld: Ann is in AWS_Admins (00gA), AWS_Dev (00gB) and Sales (00gS, not selected), in
// Okta and in AWS; AWS_Legacy is an AWS group with no Okta group id, with Ann in it.
type lifecycleWorld struct {
	*fixture
	okta               *lifecycleOkta
	ann, bob           string // SCIM user ids
	admins, dev, sales string // SCIM group ids
	legacy             string
}

// newLifecycleWorld builds the world; withToken says whether the worker can read Okta.
func newLifecycleWorld(t *testing.T, withToken bool) *lifecycleWorld {
	t.Helper()
	o := &lifecycleOkta{userGroups: map[string][]okta.Group{
		"00uAnn": {{ID: "00gA", Name: "AWS_Admins"}, {ID: "00gB", Name: "AWS_Dev"}, {ID: "00gS", Name: "Sales"}},
		"00uBob": {{ID: "00gA", Name: "AWS_Admins"}},
	}}
	f := newFixture(t, func(c *Config) {
		o.fakeOkta = c.Okta.(*fakeOkta)
		o.fakeOkta.groups["00gS"] = okta.Group{ID: "00gS", Name: "Sales"}
		if withToken {
			c.Okta = o
		} else {
			c.Okta = nil
		}
	})
	w := &lifecycleWorld{fixture: f, okta: o}
	w.ann, w.bob = f.user("ann@example.com", "00uAnn"), f.user("bob@example.com", "00uBob")
	w.admins = f.srv.AddGroup("AWS_Admins", "00gA")
	w.dev = f.srv.AddGroup("AWS_Dev", "00gB")
	w.sales = f.srv.AddGroup("Sales", "00gS")
	w.legacy = f.srv.AddGroup("AWS_Legacy", "")
	for _, g := range []string{w.admins, w.dev, w.sales} {
		f.srv.AddMember(g, w.ann)
	}
	if !withToken {
		f.srv.AddMember(w.legacy, w.ann)
	}
	f.srv.AddMember(w.admins, w.bob)
	return w
}

func (w *lifecycleWorld) mustApply(changes ...membership.Change) {
	w.t.Helper()
	if failed := w.invoke(context.Background(), w.event(changes...)); len(failed) != 0 {
		w.t.Fatalf("failed %v\n%s", failed, w.logs.String())
	}
}

func (w *lifecycleWorld) expect(want map[string][]string) {
	w.t.Helper()
	snap := w.srv.Snapshot()
	for g, members := range want {
		if !equal(snap[g], members) {
			w.t.Fatalf("%s: members %v, want %v (all: %v)", g, snap[g], members, snap)
		}
	}
}

// A revoke removes the user from every managed AWS group SCIM lists for it, whatever the token
// setting; Okta's list of the user's groups is not read for it.
func TestDeactivateWithTokenRemovesFromEveryManagedGroup(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{
		"AWS_Admins": {"bob@example.com"},
		"AWS_Dev":    nil,
		"Sales":      {"ann@example.com"}, // not selected: never touched
	})
	if w.okta.calls != 0 {
		t.Fatalf("%d Okta reads for a revoke, want 0", w.okta.calls)
	}
	// The status mark records the deactivation; the removes write no membership mark.
	if m, ok := w.statusMark("00uAnn"); !ok || m.Kind != membership.KindUserDeactivate || !m.Published.Equal(t0) || m.EventUUID != "d1" {
		t.Fatalf("status mark %+v, %v", m, ok)
	}
	marks, _ := w.ledger.Get(context.Background(), []membership.Key{{GroupID: "00gA", UserID: "00uAnn"}, {GroupID: "00gB", UserID: "00uAnn"}, {GroupID: "00gS", UserID: "00uAnn"}})
	if len(marks) != 0 {
		t.Fatalf("membership marks %v written by a revoke", marks)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, `"op":"remove"`) || !strings.Contains(logs, `"event_uuid":"d1"`) || !strings.Contains(logs, "every managed AWS group SCIM lists") {
		t.Fatalf("no audit record or log line for the removals:\n%s", logs)
	}

	// Okta's redelivery costs no PATCH.
	w.srv.ResetCounters()
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	if n := w.srv.Count("PATCH /Groups/{id}"); n != 0 {
		t.Fatalf("%d PATCHes for a redelivered deactivation", n)
	}
}

func TestDeactivateWithoutOktaUsesWhatSCIMLists(t *testing.T) {
	w := newLifecycleWorld(t, false)
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{
		"AWS_Admins": {"bob@example.com"},
		"AWS_Dev":    nil,
		"AWS_Legacy": nil,                 // no Okta group id: removed all the same
		"Sales":      {"ann@example.com"}, // not selected
	})
	// One SCIM listing of Ann's groups, with the documented filter.
	if n := w.srv.Count("GET /Groups"); n == 0 {
		t.Fatal("the user's groups were not listed")
	}
	if m, ok := w.statusMark("00uAnn"); !ok || m.Kind != membership.KindUserDeactivate {
		t.Fatalf("status mark %+v, %v: the removals' ordering memory", m, ok)
	}
	if logs := w.logs.String(); !strings.Contains(logs, "every managed AWS group SCIM lists") || !strings.Contains(logs, `"managed":3`) {
		t.Fatalf("logs:\n%s", logs)
	}

	// A user SCIM does not know has nothing to leave: acknowledged, only its status recorded.
	w.srv.ResetCounters()
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d2", t0, "00uGhost", "ghost@example.com"))
	if n := w.srv.Count("PATCH /Groups/{id}"); n != 0 {
		t.Fatalf("%d PATCHes for a user not in SCIM", n)
	}
	if _, ok := w.statusMark("00uGhost"); !ok {
		t.Fatal("no status mark for a deactivated user not in SCIM")
	}
}

func TestDeactivateOrdering(t *testing.T) {
	for _, withToken := range []bool{true, false} {
		name := map[bool]string{true: "with Okta", false: "from SCIM"}[withToken]
		t.Run(name, func(t *testing.T) {
			w := newLifecycleWorld(t, withToken)
			deact := lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com")
			older := change(membership.KindAdd, "a0", t0.Add(-time.Second), "00uAnn", "ann@example.com", "00gA", "AWS_Admins")
			w.mustApply(deact)
			// An add published before the deactivation, delivered after it: not applied.
			w.mustApply(older)
			w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}})
			// Nor one published after it: a deactivated user is granted no membership until a
			// reactivation (TestStatusAddPublishedAfterDeactivationWaitsForReactivation).
			w.mustApply(change(membership.KindAdd, "a2", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gA", "AWS_Admins"))
			w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
			w.notApplied("a0")
			w.notApplied("a2")
		})
	}
	t.Run("one batch", func(t *testing.T) {
		w := newLifecycleWorld(t, true)
		w.mustApply(
			change(membership.KindAdd, "a2", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gB", "AWS_Dev"),
			lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"),
			change(membership.KindAdd, "a0", t0.Add(-time.Second), "00uAnn", "ann@example.com", "00gA", "AWS_Admins"),
		)
		w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
	})
}

func TestReactivateRestoresWhatOktaLists(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
	// While deactivated Ann was taken out of AWS_Dev in Okta (Okta allows removing a deactivated
	// user from a group): the reactivation restores only what Okta lists now.
	w.okta.userGroups["00uAnn"] = w.okta.userGroups["00uAnn"][:1]
	w.mustApply(lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": nil, "Sales": {"ann@example.com"}})

	// Delivered in reverse (the deactivation again, late): it is older than the restore.
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}})
}

func TestReactivateWithoutOktaIsLoggedAndAcknowledged(t *testing.T) {
	w := newLifecycleWorld(t, false)
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.mustApply(lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
	if logs := w.logs.String(); !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "restoring its AWS group memberships needs okta_api_token") {
		t.Fatalf("no warning:\n%s", logs)
	}
}

func TestSuspendAndUnsuspendKeepMemberships(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.mustApply(
		lifecycle(membership.KindUserSuspend, "s1", t0, "00uAnn", "ann@example.com"),
		lifecycle(membership.KindUserUnsuspend, "s2", t0.Add(time.Minute), "00uAnn", "ann@example.com"),
	)
	w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
	if w.okta.calls != 0 || w.srv.Count("PATCH /Groups/{id}") != 0 {
		t.Fatalf("%d Okta reads, %d PATCHes for suspend/unsuspend", w.okta.calls, w.srv.Count("PATCH /Groups/{id}"))
	}
}

// A reactivation whose groups Okta could not list is not acknowledged: retried, it restores them.
func TestReactivateOktaReadErrorIsRetried(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.okta.fail(&okta.ReadError{Op: "list user groups", UserID: "00uAnn", Status: http.StatusServiceUnavailable})
	ev := w.event(lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com"))
	if failed := w.invoke(context.Background(), ev); !equal(failed, []string{"msg-002"}) {
		t.Fatalf("failed %v: a reactivation whose groups could not be read must not be acknowledged", failed)
	}
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
	// SQS redelivers it after the backoff; Okta answers now.
	w.okta.fail(nil)
	if failed := w.invoke(context.Background(), ev); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
}

// A token Okta rejects cannot keep a deactivated user in AWS: a revoke does not read Okta.
func TestDeactivateWithRejectedTokenStillRemoves(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.okta.fail(&okta.ReadError{Op: "list user groups", UserID: "00uAnn", Status: http.StatusUnauthorized})
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil, "Sales": {"ann@example.com"}})
}

// A removal SCIM does not confirm fails the deactivation's message: it is retried, not
// acknowledged.
func TestDeactivateNotAcknowledgedWhenARemovalFails(t *testing.T) {
	w := newLifecycleWorld(t, true)
	w.srv.SetFaultFunc(func(route string, _ *http.Request) *scimtest.Fault {
		if route == "PATCH /Groups/{id}" {
			return &scimtest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	ev := w.event(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	if failed := w.invoke(context.Background(), ev); !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v", failed)
	}
	w.srv.SetFaultFunc(nil)
	if failed := w.invoke(context.Background(), ev); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
}

func TestDeactivateDryRunChangesNothing(t *testing.T) {
	for _, withToken := range []bool{true, false} {
		w := newLifecycleWorld(t, withToken)
		w.cfg.DryRun = true
		w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
		w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
		if w.srv.Writes() != 0 || w.ledger.Len() != 0 || !strings.Contains(w.logs.String(), `"result":"dry_run"`) {
			t.Fatalf("dry run (token %v): %d marks\n%s", withToken, w.ledger.Len(), w.logs.String())
		}
		if n := w.srv.Count("PATCH /Groups/{id}") + w.srv.Count("POST /Groups") + w.srv.Count("DELETE /Groups/{id}") + w.srv.Count("POST /Users"); n != 0 {
			t.Fatalf("dry run (token %v): %d SCIM writes", withToken, n)
		}
	}
}

// A reactivated user AWS does not have (yet): each restore is a membership add that fails on its
// own, so it is isolated as its own change (retried, then dead-lettered) and the lifecycle
// message is acknowledged.
func TestReactivateOfUnprovisionedUserIsolatesTheAdds(t *testing.T) {
	w := newLifecycleWorld(t, true)
	rq := &fakeRequeue{}
	w.cfg.Requeue = rq
	w.okta.userGroups["00uNew"] = []okta.Group{{ID: "00gA", Name: "AWS_Admins"}, {ID: "00gS", Name: "Sales"}}
	react := lifecycle(membership.KindUserReactivate, "r1", t0, "00uNew", "new@example.com")
	w.mustApply(react)
	got := rq.sent()
	want, err := queue.RetryEntry(change(membership.KindAdd, "r1", t0, "00uNew", "new@example.com", "00gA", "AWS_Admins"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("isolated %+v, want the add to AWS_Admins alone: %+v", got, want)
	}
}
