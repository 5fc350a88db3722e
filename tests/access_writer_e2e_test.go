package tests

// End-to-end test of the single-writer rule (docs/SYNC.md, "The single-writer rule"; issue 19
// path 6): with MaximumConcurrency 2 two sync containers run at once, and a membership add (FIFO
// message group: the Okta group id) and its user's deactivation (message group user:<id>) are
// applied concurrently. The add's PATCH is held in flight in the SCIM emulator while the other
// sync process applies the deactivation (its ListUserGroups does not list the group yet); the
// add lands afterwards. Real hook and sync bootstraps, the template's queue settings and
// StateTable layout in moto, the SCIM and Okta API emulators.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// invokeAck runs one sync invocation of sync with msgs and deletes what it acknowledged; it
// returns the number of batch item failures.
func (w *idWorld) invokeAck(sync *harness.Runtime, msgs []harness.Message) int {
	var resp events.SQSEventResponse
	if err := sync.InvokeJSON(w.ctx, harness.SQSEvent(w.queue.ARN, msgs), &resp); err != nil {
		w.t.Errorf("sync: %v", err)
		return len(msgs)
	}
	if err := w.moto.Acknowledge(w.ctx, w.queue.URL, msgs, resp.BatchItemFailures); err != nil {
		w.t.Error(err)
	}
	return len(resp.BatchItemFailures)
}

func TestAccessWriterEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	const ann, bob = "ann@example.com", "bob@example.com"

	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"token", nil},
		{"no_token", map[string]string{"OKTA_ORG_URL": ""}},
	} {
		t.Run("path6_add_in_flight_during_deactivation_"+tc.name, func(t *testing.T) {
			w := newIDWorld(t, m, "writer-"+strings.ReplaceAll(tc.name, "_", ""), false, tc.env)
			annID := w.user(ann)
			w.user(bob)
			admins := w.oktaGroup("AWS_Admins", ann, bob)
			w.awsGroup("AWS_Admins", admins, bob)
			annSCIM, _ := w.scim.UserID(ann)
			other := w.container() // the second sync container

			// Okta: Ann added to AWS_Admins, then deactivated a second later.
			if err := w.okta.SetUserStatus(annID, "DEPROVISIONED"); err != nil {
				t.Fatal(err)
			}
			w.deliver(w.member("add", "w-add", t0, ann, admins, "AWS_Admins"),
				lifecycleEvent("deactivate", "w-deact", t0.Add(time.Second), annID, ann))
			msgs, err := m.ReceiveAll(w.ctx, w.queue.URL)
			if err != nil {
				t.Fatal(err)
			}
			var addMsgs, deactMsgs []harness.Message
			for _, msg := range msgs {
				if msg.GroupID == admins {
					addMsgs = append(addMsgs, msg)
				} else {
					deactMsgs = append(deactMsgs, msg)
				}
			}
			if len(addMsgs) != 1 || len(deactMsgs) != 1 {
				t.Fatalf("messages by group: %d of the Okta group, %d others; want one each", len(addMsgs), len(deactMsgs))
			}

			held := w.scim.Hold(func(q scimtest.Request) bool { return q.MemberPatch("add", annSCIM) })
			addDone := make(chan int, 1)
			go func() { addDone <- w.invokeAck(w.sync, addMsgs) }()
			select {
			case <-held.Reached():
			case <-time.After(time.Minute):
				held.Release()
				t.Fatalf("the add's PATCH never reached SCIM\n%s", w.sync.Logs())
			}
			// The deactivation, in the other container, while the add is in flight.
			if n := w.invokeAck(other, deactMsgs); n != 0 {
				t.Fatalf("deactivation: %d failures\n%s", n, other.Logs())
			}
			w.expect(map[string][]string{"AWS_Admins": {bob}})
			held.Release()
			if n := <-addDone; n != 0 {
				t.Fatalf("add: %d failures\n%s", n, w.sync.Logs())
			}

			// Ann ends in no managed AWS group, and the ledger agrees.
			w.expect(map[string][]string{"AWS_Admins": {bob}})
			led := ledger.New(dynamodb.NewFromConfig(m.AWSConfig()), "identity-state-"+w.name)
			k := ledger.Key{GroupID: admins, UserID: annID}
			marks, err := led.Get(context.Background(), []ledger.Key{k, ledger.StatusKey(annID)})
			if err != nil {
				t.Fatal(err)
			}
			mk, mf := marks[k]
			st, sf := marks[ledger.StatusKey(annID)]
			if !sf || st.EventUUID != "w-deact" {
				t.Fatalf("status mark %+v, %v; want the deactivation", st, sf)
			}
			if !mf || mk.Pending || mk.EventUUID != "w-add" {
				t.Fatalf("membership mark %+v, %v; want the add's, final", mk, mf)
			}
			if ledger.Target(mk, mf, st, sf) {
				t.Fatal("the ledger says Ann is a member")
			}
			if !strings.Contains(w.sync.Logs(), "single-writer rule: the ledger's newest decision differs") {
				t.Fatalf("the add did not converge:\n%s", w.sync.Logs())
			}
			if depth, err := m.Depth(w.ctx, w.queue.URL); err != nil || depth != 0 {
				t.Fatalf("queue depth %d, %v", depth, err)
			}
			w.checkWire()
			if r := w.dlqReasons(); len(r) != 0 {
				t.Fatalf("DLQ %v", r)
			}
		})
	}
}
