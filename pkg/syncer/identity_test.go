package syncer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
)

// The AWS group named as the event's group belongs to another live Okta group: the add is
// dead-lettered with the reason, the remove acknowledged, nothing written, the conflict counted.
func TestIdentityConflictIsDeadLetteredNotWritten(t *testing.T) {
	w := newRetryWorld(t, nil)
	w.user("ann@example.com", "00uAnn")
	bob := w.user("bob@example.com", "00uBob")
	gid := w.srv.AddGroup("AWS_Admins", "00gOther")
	w.srv.AddMember(gid, bob)
	w.okta.groups["00gOther"] = okta.Group{ID: "00gOther", Name: "AWS_Admins"}
	failed := w.invoke(context.Background(), w.batch(pack(add("e1", t0, "00uAnn", "ann@example.com"), remove("e2", t0, "00uBob", "bob@example.com"))))
	if len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	dead := w.dlq.sent()
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "carries Okta group 00gOther") || !strings.Contains(dead[0].Body, "00uAnn") {
		t.Fatalf("dead letters %+v, want ann's add with the conflict", dead)
	}
	if got := w.members("AWS_Admins"); !equal(got, []string{"bob@example.com"}) {
		t.Fatalf("AWS_Admins = %v: the other group's AWS group was written", got)
	}
	if w.metric("GroupIdentityConflicts") != 1 {
		t.Fatalf("metrics %s", w.emf.String())
	}
}

// A rename that cannot be applied now fails its group's later changes of the batch (they were
// published against the renamed group), not other groups' changes.
func TestFailedRenameFailsTheGroupsLaterChanges(t *testing.T) {
	w := newRetryWorld(t, nil)
	w.user("ann@example.com", "00uAnn")
	w.srv.AddGroup("AWS_Admins", "00gA")
	w.srv.AddGroup("AWS_Dev", "00gB")
	w.okta.groups["00gA"] = okta.Group{ID: "00gA", Name: "AWS_Admins_EU"}
	// The name is held by an AWS group without externalId: a conflict only a person can solve.
	w.srv.AddGroup("AWS_Admins_EU", "")
	failed := w.invoke(context.Background(), w.batch(
		single(change(membership.KindRename, "e1", t0, "", "", "00gA", "AWS_Admins_EU")),
		single(change(membership.KindAdd, "e2", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gA", "AWS_Admins_EU")),
		single(change(membership.KindAdd, "e3", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gB", "AWS_Dev")),
	))
	if got := w.members("AWS_Dev"); !equal(got, []string{"ann@example.com"}) {
		t.Fatalf("AWS_Dev = %v: another group's change was held by the failed rename", got)
	}
	if len(w.members("AWS_Admins")) != 0 || len(w.members("AWS_Admins_EU")) != 0 {
		t.Fatalf("snapshot %v: the add after the failed rename was applied", w.srv.Snapshot())
	}
	dead := w.dlq.sent()
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "AWS_Admins_EU") {
		t.Fatalf("dead letters %+v, want the rename with its conflict", dead)
	}
	if len(failed) != 1 {
		t.Fatalf("failed %v, want the later add retried", failed)
	}
}

// Two AWS groups carry 00gA (AWS_Admins, and a copy an administrator tagged by hand): nothing is
// written to either for 00gA. Its adds and removes are dead-lettered with the reason naming both
// groups, its rename and its delete too, the conflict is counted; a deactivated user still leaves
// both. Cold (the copy listed first) and warm (AWS_Admins cached before the copy was tagged).
func TestDuplicateExternalIDWritesNothingForTheGroup(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(map[bool]string{false: "cold", true: "warm"}[warm], func(t *testing.T) {
			ctx := context.Background()
			w := newRetryWorld(t, func(c *Config) { c.DeleteGroups = true })
			ann := w.user("ann@example.com", "00uAnn")
			bob := w.user("bob@example.com", "00uBob")
			w.user("cat@example.com", "00uCat")
			w.user("dan@example.com", "00uDan")
			var admins, dup string
			tag := func() {
				dup = w.srv.AddGroup("AWS_Admins_copy", "00gA")
				w.srv.AddMember(dup, ann)
			}
			if !warm {
				tag()
			}
			admins = w.srv.AddGroup("AWS_Admins", "00gA")
			w.srv.AddMember(admins, ann)
			w.srv.AddMember(admins, bob)
			if warm {
				if failed := w.invoke(ctx, w.batch(pack(add("e0", t0, "00uCat", "cat@example.com")))); len(failed) != 0 {
					t.Fatalf("failed %v", failed)
				}
				tag()
			}
			before := w.srv.Snapshot()
			wantIDs := []string{admins, dup}
			slices.Sort(wantIDs)
			w.srv.ResetCounters()

			dead := func(n int, what string) []string {
				t.Helper()
				sent := w.dlq.sent()
				if len(sent) != n {
					t.Fatalf("%s: %d dead letters %+v, want %d", what, len(sent), sent, n)
				}
				var reasons []string
				for _, e := range sent {
					reasons = append(reasons, e.Reason)
					if !strings.Contains(e.Reason, "2 AWS groups carry Okta group 00gA") || !strings.Contains(e.Reason, wantIDs[0]) || !strings.Contains(e.Reason, wantIDs[1]) {
						t.Fatalf("%s: reason %q", what, e.Reason)
					}
				}
				return reasons
			}
			unchanged := func(what string) {
				t.Helper()
				if got := w.srv.Snapshot(); fmt.Sprint(got) != fmt.Sprint(before) || w.srv.Writes() != 0 {
					t.Fatalf("%s: %v → %v, %d SCIM writes", what, before, got, w.srv.Writes())
				}
			}

			failed := w.invoke(ctx, w.batch(pack(add("e1", t0.Add(time.Second), "00uDan", "dan@example.com"), remove("e2", t0.Add(time.Second), "00uBob", "bob@example.com"))))
			if len(failed) != 0 {
				t.Fatalf("failed %v: a conflict must not be retried forever", failed)
			}
			dead(2, "add and remove")
			unchanged("add and remove")
			if w.metric("GroupIdentityConflicts") != 1 {
				t.Fatalf("metrics %s", w.emf.String())
			}

			w.okta.groups["00gA"] = okta.Group{ID: "00gA", Name: "AWS_Admins_EU"}
			if failed := w.invoke(ctx, w.batch(single(change(membership.KindRename, "e3", t0.Add(2*time.Second), "", "", "00gA", "AWS_Admins_EU")))); len(failed) != 0 {
				t.Fatalf("rename failed %v", failed)
			}
			dead(3, "rename")
			if failed := w.invoke(ctx, w.batch(single(change(membership.KindGroupDelete, "e4", t0.Add(3*time.Second), "", "", "00gA", "AWS_Admins_EU")))); len(failed) != 0 {
				t.Fatalf("delete failed %v", failed)
			}
			dead(4, "delete")
			unchanged("rename and delete")
			if w.metric("GroupIdentityConflicts") != 3 {
				t.Fatalf("metrics %s", w.emf.String())
			}

			// Access removal is never blocked by the conflict.
			if failed := w.invoke(ctx, w.batch(single(lifecycle(membership.KindUserDeactivate, "e5", t0.Add(4*time.Second), "00uAnn", "ann@example.com")))); len(failed) != 0 {
				t.Fatalf("deactivation failed %v", failed)
			}
			snap := w.srv.Snapshot()
			wantAdmins := []string{"bob@example.com"}
			if warm {
				wantAdmins = []string{"bob@example.com", "cat@example.com"}
			}
			if !equal(snap["AWS_Admins"], wantAdmins) || len(snap["AWS_Admins_copy"]) != 0 {
				t.Fatalf("after the deactivation %v", snap)
			}
			dead(4, "deactivation")
		})
	}
}

// A reactivation restores the groups Okta lists: the restore's add to a group whose id two AWS
// groups carry is dead-lettered with the reason and written to neither; the other groups are
// restored, and the lifecycle message is acknowledged.
func TestRestoreToADuplicatedGroupIsDeadLettered(t *testing.T) {
	w := newLifecycleWorld(t, true)
	dlq := &fakeRequeue{}
	w.cfg.DeadLetter = dlq
	w.mustApply(lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Dev": nil})
	w.srv.AddGroup("AWS_Admins_copy", "00gA")
	w.mustApply(lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com"))
	w.expect(map[string][]string{"AWS_Admins": {"bob@example.com"}, "AWS_Admins_copy": nil, "AWS_Dev": {"ann@example.com"}})
	dead := dlq.sent()
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "2 AWS groups carry Okta group 00gA") || !strings.Contains(dead[0].Body, "00gA") {
		t.Fatalf("dead letters %+v, want the restore's add to 00gA with the duplicated externalId", dead)
	}
	if w.metric("GroupIdentityConflicts") != 1 {
		t.Fatalf("metrics %s", w.emf.String())
	}
}
