package reconciler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// The single-writer rule (docs/SYNC.md, docs/RECONCILE.md): the sync worker applies an Okta event
// published after this run's read while the run's own PATCH for the same membership is in
// flight. The run's PATCH lands last, but its claim was overtaken, so it converges to the event.
func TestSingleWriterEventDuringTheRunsPATCH(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 2)
	gid := f.oktaGroupOf("AWS_G", u[0], u[1])
	sg := f.scimGroupOf("AWS_G", gid, u[0]) // plan: add u1
	u1, _ := f.scim.UserID(u[1])
	led := ledger.NewMemory()
	f.cfg.Ledger = led
	now := time.Date(2025, 11, 25, 13, 0, 0, 0, time.UTC)
	f.cfg.Now = func() time.Time { return now }
	held := f.scim.Hold(func(q scimtest.Request) bool { return q.MemberPatch("add", u1) })
	type result struct {
		s   Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := f.invoke(testCtx(t), "{}")
		done <- result{s, err}
	}()
	<-held.Reached()

	// The sync worker, meanwhile: u1 removed in Okta after the run's read; claim, PATCH, finalize.
	ctx := context.Background()
	if err := f.okta.RemoveMember(gid, f.oktaUser[u[1]]); err != nil {
		t.Fatal(err)
	}
	k := membership.Key{GroupID: gid, UserID: f.oktaUser[u[1]]}
	rm := ledger.Record{Key: k, Mark: membership.Mark{Published: now.Add(10 * time.Second), Kind: membership.KindRemove, EventUUID: "e-rm"}}
	if w, err := led.Claim(ctx, []ledger.Record{rm}); err != nil || !w[0] {
		t.Fatalf("the event's claim: %v, %v", w, err)
	}
	if _, err := f.client.RemoveMembers(ctx, sg, []string{u1}); err != nil {
		t.Fatal(err)
	}
	if w, err := led.Finalize(ctx, []ledger.Record{rm}); err != nil || !w[0] {
		t.Fatalf("the event's finalize: %v, %v", w, err)
	}

	held.Release()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := f.scim.Snapshot()["AWS_G"]; !slices.Equal(got, []string{u[0]}) {
		t.Fatalf("members %v: the run's older answer undid the newer event", got)
	}
	marks, _ := led.Get(ctx, []ledger.Key{k})
	if m := marks[k]; m.EventUUID != "e-rm" || m.Pending {
		t.Fatalf("mark %+v, want the event's, final", m)
	}
	if res.s.Deferred != 1 || res.s.Added != 0 {
		t.Fatalf("summary %+v: want the add deferred to the event, none counted as added", res.s)
	}
	f.wantInSync("AWS_G")
}
