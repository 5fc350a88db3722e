package syncer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// fakeVisibility records the backoffs the worker sets.
type fakeVisibility struct {
	mu     sync.Mutex
	delays []queue.Delay
	err    error
}

func (f *fakeVisibility) Delay(_ context.Context, ds []queue.Delay) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delays = append(f.delays, ds...)
	return f.err
}

type retryWorld struct {
	*fixture
	rq, dlq *fakeRequeue
	vis     *fakeVisibility
}

func newRetryWorld(t *testing.T, mut func(*Config)) retryWorld {
	w := retryWorld{rq: &fakeRequeue{}, dlq: &fakeRequeue{}, vis: &fakeVisibility{}}
	w.fixture = newFixture(t, func(c *Config) {
		c.Requeue, c.DeadLetter, c.Visibility = w.rq, w.dlq, w.vis
		if mut != nil {
			mut(c)
		}
	})
	return w
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for n, w := range want {
		if got := DefaultBackoff(n); got != w {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", n, got, w)
		}
	}
	if DefaultBackoff(1000) != time.Minute {
		t.Error("no cap")
	}
}

// A transient failure (SCIM 503 on every PATCH) keeps the pack whole: it is reported, nothing is
// isolated or dead-lettered, and its visibility is set to the first backoff instead of the
// queue's 720 s.
func TestTransientFailureKeepsThePackAndBacksOff(t *testing.T) {
	w := newRetryWorld(t, nil)
	w.user("ann@example.com", "00uAnn")
	w.user("bob@example.com", "00uBob")
	w.srv.SetFaultFunc(func(route string, _ *http.Request) *scimtest.Fault {
		if route == "PATCH /Groups/{id}" {
			return &scimtest.Fault{Status: http.StatusServiceUnavailable}
		}
		return nil
	})
	failed := w.invoke(context.Background(), w.batch(pack(add("e1", t0, "00uAnn", "ann@example.com"), add("e2", t0, "00uBob", "bob@example.com"))))
	if !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v, want the pack", failed)
	}
	if len(w.rq.sent()) != 0 || len(w.dlq.sent()) != 0 {
		t.Fatalf("isolated %d, dead-lettered %d: a transient failure must keep the pack", len(w.rq.sent()), len(w.dlq.sent()))
	}
	if len(w.vis.delays) != 1 || w.vis.delays[0].After != backoffFirst || w.vis.delays[0].ReceiptHandle != "AQEBmsg-001" {
		t.Fatalf("delays %+v, want the first backoff on msg-001", w.vis.delays)
	}
}

// A user AWS does not know yet: its add leaves the group's message for an isolated group, the
// rest of the pack is applied and acknowledged.
func TestUnknownUserIsIsolatedAndTheGroupGoesOn(t *testing.T) {
	w := newRetryWorld(t, nil)
	w.user("ann@example.com", "00uAnn")
	ghost := add("e2", t0, "00uGhost", "ghost@example.com")
	failed := w.invoke(context.Background(), w.batch(pack(add("e1", t0, "00uAnn", "ann@example.com"), ghost, remove("e3", t0, "00uBob", "bob@example.com"))))
	if len(failed) != 0 {
		t.Fatalf("failed %v: the group's message must be acknowledged", failed)
	}
	want, _ := queue.RetryEntry(ghost)
	if got := w.rq.sent(); len(got) != 1 || got[0] != want {
		t.Fatalf("isolated %+v, want %+v", got, want)
	}
	if len(w.vis.delays) != 0 || len(w.dlq.sent()) != 0 {
		t.Fatalf("delays %v, dead %v", w.vis.delays, w.dlq.sent())
	}
	if got := w.members("AWS_Admins"); !equal(got, []string{"ann@example.com"}) {
		t.Fatalf("members %v", got)
	}
}

// The isolated add is retried with backoff while the wait lasts, then dead-lettered with the
// reason as a message attribute; once the user appears it is applied.
func TestIsolatedUnknownUserWaitsThenDeadLetters(t *testing.T) {
	ghost := add("e2", t0, "00uGhost", "ghost@example.com")
	iso, _ := queue.RetryEntry(ghost)

	// Sent at t0, now t0+1h: within a 2 h wait it is retried.
	w := newRetryWorld(t, func(c *Config) { c.UnprovisionedUserWait = 2 * time.Hour })
	if failed := w.invoke(context.Background(), w.requeued([]queue.Entry{iso})); !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v", failed)
	}
	if len(w.rq.sent()) != 0 || len(w.dlq.sent()) != 0 || len(w.vis.delays) != 1 {
		t.Fatalf("isolated again %d, dead %d, delays %v", len(w.rq.sent()), len(w.dlq.sent()), w.vis.delays)
	}
	// The user appears: applied.
	w.user("ghost@example.com", "00uGhost")
	if failed := w.invoke(context.Background(), w.requeued([]queue.Entry{iso})); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := w.members("AWS_Admins"); !equal(got, []string{"ghost@example.com"}) {
		t.Fatalf("members %v", got)
	}

	// With a 30 min wait the hour is up: dead-lettered, acknowledged, with the reason.
	w = newRetryWorld(t, func(c *Config) { c.UnprovisionedUserWait = 30 * time.Minute })
	if failed := w.invoke(context.Background(), w.requeued([]queue.Entry{iso})); len(failed) != 0 {
		t.Fatalf("failed %v: a dead-lettered change is acknowledged", failed)
	}
	dead := w.dlq.sent()
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "not provisioned") || !strings.Contains(dead[0].Reason, "UNPROVISIONED_USER_WAIT=30m0s") {
		t.Fatalf("dead letters %+v", dead)
	}
	if cs, err := queue.Decode(dead[0].Body); err != nil || len(cs) != 1 || cs[0].EventUUID != "e2" {
		t.Fatalf("dead-letter body %q does not decode to the change: %v", dead[0].Body, err)
	}
	if w.metric("ChangesDeadLettered") != 1 {
		t.Fatalf("metrics %s", w.emf.String())
	}
}

// If the DLQ refuses, the isolated message is retried instead: nothing is lost.
func TestDeadLetterFailureKeepsTheMessage(t *testing.T) {
	ghost := add("e2", t0, "00uGhost", "ghost@example.com")
	iso, _ := queue.RetryEntry(ghost)
	w := newRetryWorld(t, func(c *Config) { c.UnprovisionedUserWait = time.Minute })
	w.dlq.err = errors.New("AccessDenied: sqs:SendMessage")
	if failed := w.invoke(context.Background(), w.requeued([]queue.Entry{iso})); !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v", failed)
	}
	if len(w.vis.delays) != 1 {
		t.Fatalf("delays %v", w.vis.delays)
	}
}

// An undecodable message can never apply: dead-lettered at once with its reason.
func TestUndecodableIsDeadLetteredAtOnce(t *testing.T) {
	w := newRetryWorld(t, nil)
	ev := w.requeued([]queue.Entry{{Body: `{"v":1,"change":{}}`, GroupID: "00gA", DedupID: "x"}})
	if failed := w.invoke(context.Background(), ev); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if dead := w.dlq.sent(); len(dead) != 1 || !strings.Contains(dead[0].Reason, "undecodable") || dead[0].Body != `{"v":1,"change":{}}` {
		t.Fatalf("dead letters %+v", dead)
	}
}

// TestClassOfFollowsSCIMStatusClass: a change's failure is transient exactly when scim.ClassOf
// says the status may succeed later; 501 names the change (AWS does not implement the operation).
func TestClassOfFollowsSCIMStatusClass(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409, 429, 500, 501, 502, 503} {
		want := failSelf
		if scim.ClassOf(code).Transient() {
			want = failTransient
		}
		if got := classOf(fmt.Errorf("patch: %w", &scim.APIError{Status: code})); got != want {
			t.Errorf("%d: class %v, want %v", code, got, want)
		}
	}
	if classOf(errors.New("connection reset")) != failTransient || classOf(scim.ErrUnauthorized) != failTransient {
		t.Error("transport errors and a rejected token are transient")
	}
	if classOf(&scim.APIError{Status: http.StatusNotImplemented}) != failSelf {
		t.Error("501 must not be retried as transient")
	}
}
