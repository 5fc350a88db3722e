package syncer

import (
	"context"
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
