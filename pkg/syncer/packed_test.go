package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
)

// fakeRequeue records the entries the worker sends back to its queue.
type fakeRequeue struct {
	mu      sync.Mutex
	entries []queue.Entry
	calls   int
	err     error
}

func (f *fakeRequeue) SendEntries(_ context.Context, es []queue.Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return f.err
	}
	f.entries = append(f.entries, es...)
	return nil
}

func (f *fakeRequeue) sent() []queue.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

// packed returns the fixture with a recording requeuer.
func packedFixture(t *testing.T, mut func(*Config)) (*fixture, *fakeRequeue) {
	rq := &fakeRequeue{}
	f := newFixture(t, func(c *Config) {
		c.Requeue = rq
		if mut != nil {
			mut(c)
		}
	})
	return f, rq
}

// msg is one SQS message of a test batch: a pack (the hook's v2 form) or a single (v1).
type msg struct {
	changes []membership.Change
	single  bool
}

func pack(cs ...membership.Change) msg                 { return msg{changes: cs} }
func single(c membership.Change) msg                   { return msg{changes: []membership.Change{c}, single: true} }
func fromEntry(e queue.Entry) (string, string, string) { return e.Body, e.GroupID, e.DedupID }

// batch builds an SQS event of the given messages; each pack must hold one group's changes.
func (f *fixture) batch(ms ...msg) []byte {
	f.t.Helper()
	var ev events.SQSEvent
	for _, m := range ms {
		var e queue.Entry
		if m.single {
			var err error
			if e, err = queue.Encode(m.changes[0]); err != nil {
				f.t.Fatal(err)
			}
		} else {
			es, err := queue.EncodeBatch(m.changes)
			if err != nil || len(es) != 1 {
				f.t.Fatalf("pack of %d changes: %d entries, %v", len(m.changes), len(es), err)
			}
			e = es[0]
		}
		f.seq++
		ev.Records = append(ev.Records, sqsMessage(fmt.Sprintf("msg-%03d", f.seq), e.Body, e.GroupID, e.DedupID, f.seq))
	}
	return f.entriesEvent(ev)
}

// requeued builds the batch in which SQS would hand the re-enqueued entries back.
func (f *fixture) requeued(es []queue.Entry) []byte {
	var ev events.SQSEvent
	for _, e := range es {
		f.seq++
		body, group, dedup := fromEntry(e)
		ev.Records = append(ev.Records, sqsMessage(fmt.Sprintf("msg-%03d", f.seq), body, group, dedup, f.seq))
	}
	return f.entriesEvent(ev)
}

func (f *fixture) entriesEvent(ev events.SQSEvent) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func TestPackedFixtureDecodesThroughTheLambdaLibrary(t *testing.T) {
	f, rq := packedFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	payload, err := os.ReadFile("testdata/sqs-batch-packed.json")
	if err != nil {
		t.Fatal(err)
	}
	if failed := f.invoke(context.Background(), payload); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com", "bob@example.com"}) {
		t.Fatalf("members %v", got)
	}
	// One PATCH for the two changes of the pack.
	if n := f.srv.Count("PATCH /Groups/{id}"); n != 1 || rq.calls != 0 {
		t.Fatalf("%d PATCHes, %d re-enqueues", n, rq.calls)
	}
}

// One poison change in a pack: the pack is acknowledged, the others are applied, and exactly the
// poison change (with the same-key messages the rule fails with it) goes back to the queue as a
// single-change message, which then fails and dead-letters on its own.
func TestPackWithUnknownUserRequeuesOnlyIt(t *testing.T) {
	ctx := context.Background()
	f, rq := packedFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	ghostOld := remove("e0", t0, "00uGhost", "ghost@example.com")
	ghost := add("e2", t0.Add(time.Second), "00uGhost", "ghost@example.com")
	failed := f.invoke(ctx, f.batch(
		pack(add("e1", t0, "00uAnn", "ann@example.com"), ghostOld, ghost, add("e3", t0, "00uBob", "bob@example.com")), // msg-001
		pack(ghost, add("e4", t0.Add(time.Second), "00uBob", "bob@example.com")),                                      // msg-002: Okta amalgamated differently
		pack(change(membership.KindAdd, "e5", t0, "00uBob", "bob@example.com", "00gB", "AWS_Dev")),                    // msg-003
	))
	if len(failed) != 0 {
		t.Fatalf("failed %v; packs with applied changes are acknowledged", failed)
	}
	snap := f.srv.Snapshot()
	if !equal(snap["AWS_Admins"], []string{"ann@example.com", "bob@example.com"}) || !equal(snap["AWS_Dev"], []string{"bob@example.com"}) {
		t.Fatalf("snapshot %v", snap)
	}
	want, _ := queue.RetryEntry(ghost)
	if got := rq.sent(); len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("re-enqueued %+v, want the ghost's add from each pack (SQS deduplicates them)", got)
	}
	if rq.calls != 1 {
		t.Fatalf("%d SendEntries calls, want 1", rq.calls)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "moved out of their group's way") || !strings.Contains(logs, `"user":"ghost@example.com"`) {
		t.Fatalf("logs:\n%s", logs)
	}

	// SQS hands the single back: it fails as a message of its own (visibility retry, then the
	// DLQ) and is never re-enqueued again.
	f.srv.ResetCounters()
	retry := f.requeued(rq.sent()[:1])
	failed = f.invoke(ctx, retry)
	if len(failed) != 1 || rq.calls != 1 {
		t.Fatalf("single retry: failed %v, %d re-enqueue calls; want it reported, not re-enqueued", failed, rq.calls)
	}
	if n := f.srv.Count("PATCH /Groups/{id}"); n != 0 {
		t.Fatalf("%d PATCHes", n)
	}

	// Provisioned meanwhile: the single succeeds.
	f.user("ghost@example.com", "00uGhost")
	if failed := f.invoke(ctx, retry); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); len(got) != 3 {
		t.Fatalf("members %v", got)
	}
}

// If the re-enqueue fails, the pack itself is retried; its applied changes then cost nothing.
func TestPackRequeueFailureRetriesThePack(t *testing.T) {
	ctx := context.Background()
	f, rq := packedFixture(t, nil)
	rq.err = errors.New("AccessDenied: sqs:SendMessage")
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	p := pack(add("e1", t0, "00uAnn", "ann@example.com"), add("e2", t0, "00uGhost", "ghost@example.com"), add("e3", t0, "00uBob", "bob@example.com"))
	if failed := f.invoke(ctx, f.batch(p, single(change(membership.KindAdd, "e4", t0, "00uAnn", "ann@example.com", "00gB", "AWS_Dev")))); !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v, want the pack", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com", "bob@example.com"}) {
		t.Fatalf("members %v", got)
	}
	if !strings.Contains(f.logs.String(), "retried whole") {
		t.Fatalf("logs:\n%s", f.logs.String())
	}
	// The pack's redelivery: Ann and Bob are in the ledger, the ghost has been provisioned.
	rq.err = nil
	f.user("ghost@example.com", "00uGhost")
	f.srv.ResetCounters()
	if failed := f.invoke(ctx, f.batch(p)); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if n := f.srv.Count("PATCH /Groups/{id}"); n != 1 {
		t.Fatalf("%d PATCHes, want 1 (the ghost only)", n)
	}
	if got := f.members("AWS_Admins"); len(got) != 3 || len(rq.sent()) != 0 {
		t.Fatalf("members %v, re-enqueued %d", got, len(rq.sent()))
	}
}

// A pack none of whose changes could be applied is retried whole: nothing innocent goes with it,
// and the retry keeps its batching.
func TestPackAllFailedIsReportedWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"group missing, CREATE_GROUPS=false", func(c *Config) { c.CreateGroups = false }, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		{"deadline", nil, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second) // within the safety margin
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rq := packedFixture(t, tc.mut)
			f.user("ann@example.com", "00uAnn")
			f.user("bob@example.com", "00uBob")
			ctx, cancel := tc.ctx()
			defer cancel()
			failed := f.invoke(ctx, f.batch(pack(add("e1", t0, "00uAnn", "ann@example.com"), add("e2", t0, "00uBob", "bob@example.com"))))
			if !equal(failed, []string{"msg-001"}) || rq.calls != 0 {
				t.Fatalf("failed %v, %d re-enqueues; want the pack reported and nothing re-enqueued", failed, rq.calls)
			}
		})
	}
}

// Without a requeuer a partly failed pack is reported whole.
func TestPackWithoutRequeueIsReported(t *testing.T) {
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	failed := f.invoke(context.Background(), f.batch(pack(add("e1", t0, "00uAnn", "ann@example.com"), add("e2", t0, "00uGhost", "ghost@example.com"))))
	if !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com"}) {
		t.Fatalf("members %v", got)
	}
}

// v1 messages (in flight during a deploy, or redriven from the DLQ) and v2 packs in one batch.
func TestMixedVersionsInOneBatch(t *testing.T) {
	f, rq := packedFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	f.user("cat@example.com", "00uCat")
	failed := f.invoke(context.Background(), f.batch(
		single(add("e1", t0, "00uAnn", "ann@example.com")),
		pack(add("e2", t0, "00uBob", "bob@example.com"), remove("e3", t0.Add(time.Second), "00uAnn", "ann@example.com")),
		single(add("e4", t0.Add(2*time.Second), "00uCat", "cat@example.com")),
		single(add("e5", t0, "00uGhost", "ghost@example.com")), // a v1 single is isolated like a pack's change
	))
	if len(failed) != 0 || rq.calls != 1 || len(rq.sent()) != 1 || !queue.Isolated(rq.sent()[0].GroupID) {
		t.Fatalf("failed %v, %d re-enqueues", failed, rq.calls)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"bob@example.com", "cat@example.com"}) {
		t.Fatalf("members %v", got)
	}
	if f.metric("EventsReceived") != 5 {
		t.Fatalf("EventsReceived counts changes: %s", f.emf.String())
	}
}
