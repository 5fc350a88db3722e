package tests

// Helpers of the fault scenarios (faults_e2e_test.go). They build on the sync end-to-end world
// (syncWorld, deliver, expect, checkWire, dlq) and add what faults need: several concurrent sync
// environments (the template's MaximumConcurrency is 2), an event source mapping that survives
// failed and timed-out invocations as Lambda's does, hooks to change the world mid-run, and a
// spy on the SCIM requests that must never be sent.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// faultOptions shape one fault world. Zero values take the defaults noted.
type faultOptions struct {
	scim    scimtest.Options
	workers int               // concurrent sync environments; default 2 (template: MaximumConcurrency 2)
	timeout time.Duration     // sync function timeout; default 60 s
	syncEnv map[string]string // added to the sync environment (SECRET_TTL, …)
	// oktaToken, when set, is the secret's okta_api_token (the sync worker also needs
	// OKTA_ORG_URL in syncEnv to use it).
	oktaToken string
}

// faultWorld is a syncWorld with several sync environments and a request spy.
type faultWorld struct {
	*syncWorld
	syncs   []*harness.Runtime
	secret  string // ARN of the functions' secret
	table   string // the StateTable
	scimURL string

	mu         sync.Mutex
	fault      scimtest.FaultFunc // the scenario's fault, behind the spy
	written    map[string]int     // SCIM group id → PATCH and DELETE requests
	unselected map[string]bool    // SCIM group ids seeded outside the selection
	logs       []func() string    // outputs to scan for secrets
	tokens     []string           // secret values that must never be printed
}

// faultAWS are the moto_servers of the fault scenarios: SQS and Secrets Manager on one, the
// DynamoDB ordering table on another, so that the two Python processes share the load (moto, not
// the code under test, is what limits how fast these tests run).
type faultAWS struct{ main, ddb *harness.Moto }

func startFaultAWS(t testing.TB) faultAWS {
	t.Helper()
	var a faultAWS
	var wg sync.WaitGroup
	var errMain, errDDB error
	wg.Add(2)
	go func() { defer wg.Done(); a.main, errMain = harness.StartMoto() }()
	go func() { defer wg.Done(); a.ddb, errDDB = harness.StartMoto() }()
	wg.Wait()
	for _, m := range []*harness.Moto{a.main, a.ddb} {
		if m != nil {
			t.Cleanup(func() { _ = m.Close() })
		}
	}
	if err := errors.Join(errMain, errDDB); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	return a
}

// env is the functions' AWS environment: every service on main, DynamoDB on ddb (the SDK
// honours AWS_ENDPOINT_URL_<SERVICE> over AWS_ENDPOINT_URL).
func (a faultAWS) env() map[string]string {
	return harness.MergeEnv(a.main.Env(), map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": a.ddb.Endpoint})
}

func newFaultWorld(t testing.TB, a faultAWS, name string, o faultOptions) *faultWorld {
	t.Helper()
	if o.workers == 0 {
		o.workers = 2
	}
	if o.timeout == 0 {
		o.timeout = 60 * time.Second
	}
	ctx := context.Background()
	o.scim.Token = e2eSCIMToken
	srv := scimtest.New(o.scim)
	scimURL, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	m := a.main
	// The template's VisibilityTimeout (720 s) and MaxReceiveCount: a reported failure stays in
	// flight, holding its FIFO group, until the visibility the worker set itself ends.
	q, _ := mustCreateProdQueue(t, m, "faults-"+name)
	table := "faults-state-" + name
	if err := ledger.CreateTable(ctx, dynamodb.NewFromConfig(a.ddb.AWSConfig()), table); err != nil {
		t.Fatal(err)
	}
	secret := harness.MustCreateSecret(t, m, "okta-aws-sso-sync-faults-"+name, harness.SecretJSON(e2eHookToken, e2eSCIMToken, o.oktaToken))

	hook := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "hook"), harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "QUEUE_URL": q.URL, "LOG_LEVEL": "info",
	}), harness.WithFunctionName("hook-"+name))
	var syncs []*harness.Runtime
	for i := range o.workers {
		syncs = append(syncs, harness.MustStartRuntime(t, harness.MustBuildFunction(t, "sync"), harness.MergeEnv(a.env(), map[string]string{
			"SECRET_ID": secret, "SCIM_URL": scimURL, "STATE_TABLE": table, "QUEUE_URL": q.URL, "DLQ_URL": q.DLQURL, "LOG_LEVEL": "info",
		}, o.syncEnv), harness.WithFunctionName(fmt.Sprintf("sync-%s-%d", name, i)), harness.WithTimeout(o.timeout)))
	}
	w := &faultWorld{
		syncWorld: &syncWorld{t: t, ctx: ctx, moto: m, scim: srv, queue: q, hook: hook, sync: syncs[0]},
		syncs:     syncs, secret: secret, table: table, scimURL: scimURL,
		written: map[string]int{}, unselected: map[string]bool{},
		tokens: []string{e2eHookToken, e2eSCIMToken},
	}
	if o.oktaToken != "" {
		w.tokens = append(w.tokens, o.oktaToken)
	}
	w.logs = append(w.logs, hook.Logs)
	for _, s := range syncs {
		w.logs = append(w.logs, s.Logs)
	}
	srv.SetFaultFunc(w.spy)
	return w
}

// spy records the writes to groups, then asks the scenario's fault. The emulator calls it for
// every authenticated request.
func (w *faultWorld) spy(route string, r *http.Request) *scimtest.Fault {
	w.mu.Lock()
	if route == "PATCH /Groups/{id}" || route == "DELETE /Groups/{id}" {
		w.written[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
	}
	f := w.fault
	w.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(route, r)
}

// setFault installs the scenario's fault function (nil: none) behind the spy.
func (w *faultWorld) setFault(f scimtest.FaultFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fault = f
}

// addUnselected seeds a SCIM group outside the selection with members: checkFaultWire asserts it
// was never written, expect (with the group in want) that it kept its members.
func (w *faultWorld) addUnselected(name string, logins ...string) {
	w.t.Helper()
	gid := w.scim.AddGroup(name, "")
	for _, l := range logins {
		uid, ok := w.scim.UserID(l)
		if !ok {
			uid = w.scim.AddUser(l, "")
		}
		w.scim.AddMember(gid, uid)
	}
	w.mu.Lock()
	w.unselected[gid] = true
	w.mu.Unlock()
}

// checkFaultWire asserts checkWire's rules plus: only the worker's routes were used, no
// unselected group was written, and no secret value was printed by any function.
func (w *faultWorld) checkFaultWire() {
	w.t.Helper()
	w.checkWire()
	allowed := []string{"GET /Users", "GET /Users/{id}", "GET /Groups", "GET /Groups/{id}", "POST /Groups", "PATCH /Groups/{id}"}
	for route, n := range w.scim.Requests() {
		if !slices.Contains(allowed, route) {
			w.t.Errorf("%d requests %s, which the sync worker must not send", n, route)
		}
	}
	w.mu.Lock()
	for id := range w.unselected {
		if w.written[id] > 0 {
			w.t.Errorf("%d writes to unselected group %s", w.written[id], id)
		}
	}
	w.mu.Unlock()
	for _, logs := range w.logs {
		out := logs()
		for _, s := range w.tokens {
			if strings.Contains(out, s) {
				w.t.Errorf("function output contains a secret value (%d characters)", len(s))
			}
		}
	}
}

// pumpStats is what the event source mapping saw.
type pumpStats struct {
	invocations  int            // sync invocations
	failedItems  int            // batch item failures reported
	errors       int            // invocations that ended in an error (timeout, crash, function error)
	errorKinds   map[string]int // by error type
	redelivered  int            // messages received more than once
	maxReceive   int            // highest ApproximateReceiveCount seen
	acknowledged int            // messages deleted
	elapsed      time.Duration
	stopped      bool // pumpOptions.stop said so
}

func (s pumpStats) String() string {
	return fmt.Sprintf("%d invocations, %d acknowledged, %d item failures, %d failed invocations %v, %d redeliveries (max receive %d), %v",
		s.invocations, s.acknowledged, s.failedItems, s.errors, s.errorKinds, s.redelivered, s.maxReceive, s.elapsed.Round(time.Millisecond))
}

// pumpOptions shape one pumpFaults run.
type pumpOptions struct {
	// feed, when not nil, runs on the test goroutine while the pollers already drain the queue:
	// Okta's deliveries arriving during the burst. It keeps moto's FIFO queue shallow, which
	// matters: moto scans the whole queue on every send and receive.
	feed func()
	// after, when not nil, runs after every invocation with the running count, under the pump's
	// lock, so it can change the world between invocations.
	after func(n int)
	// stop, when not nil, is asked after every invocation (after after); true ends the pump with
	// messages still queued, so a test can change the world and pump again.
	stop func(n int) bool
	// limit bounds the whole pump (default 3 minutes).
	limit time.Duration
}

// pumpFaults plays Lambda's SQS FIFO event source mapping with one poller per sync environment:
// receive up to 10, invoke, delete what the response did not report as failed. An invocation
// that fails as a whole (timeout, crash, function error) deletes nothing: its messages come back
// after the visibility timeout, as with Lambda. It returns when the feed is done and the queue is
// empty (failures that exhausted their receives are in the DLQ then).
func (w *faultWorld) pumpFaults(o pumpOptions) pumpStats {
	w.t.Helper()
	start := time.Now()
	if o.limit == 0 {
		o.limit = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(w.ctx, o.limit)
	defer cancel()
	st := pumpStats{errorKinds: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	fed := make(chan struct{})
	errc := make(chan error, len(w.syncs))
	for _, rt := range w.syncs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.poll(ctx, rt, fed, &mu, &st, o); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	if o.feed != nil {
		o.feed()
	}
	close(fed)
	wg.Wait()
	close(errc)
	for err := range errc {
		w.t.Fatal(err)
	}
	st.elapsed = time.Since(start)
	return st
}

func (w *faultWorld) poll(ctx context.Context, rt *harness.Runtime, fed <-chan struct{}, mu *sync.Mutex, st *pumpStats, o pumpOptions) error {
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("queue not drained within the pump's limit: %w", ctx.Err())
		}
		mu.Lock()
		stopped := st.stopped
		mu.Unlock()
		if stopped {
			return nil
		}
		// Read before receiving: once the feed is done, an empty queue stays empty.
		var done bool
		select {
		case <-fed:
			done = true
		default:
		}
		msgs, err := w.moto.Receive(ctx, w.queue.URL, 10)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			depth, err := w.moto.Depth(ctx, w.queue.URL)
			if err != nil {
				return err
			}
			if done && depth == 0 {
				return nil
			}
			time.Sleep(200 * time.Millisecond) // in flight elsewhere, waiting out the visibility timeout, or more to come
			continue
		}
		ev := harness.SQSEvent(w.queue.ARN, msgs)
		var resp events.SQSEventResponse
		ierr := rt.InvokeJSON(ctx, ev, &resp)
		if ierr != nil && ctx.Err() != nil {
			return fmt.Errorf("sync: %w", ierr)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		// Reported failures stay in flight exactly as Lambda leaves them: only the visibility the
		// worker set itself (its backoff) brings them back before the queue's 720 s. An invocation
		// that failed as a whole (timeout, crash) is the one case the pump shortens, to
		// crashDelay: Lambda too leaves those to the visibility timeout, and the fault tests that
		// crash the worker are about what is applied afterwards, not about that wait.
		var del []types.DeleteMessageBatchRequestEntry
		var retry []types.ChangeMessageVisibilityBatchRequestEntry
		for i, m := range msgs {
			switch {
			case ierr != nil:
				retry = append(retry, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(fmt.Sprint(i)),
					ReceiptHandle: aws.String(m.ReceiptHandle), VisibilityTimeout: crashDelay})
			case !failed[m.ID]:
				del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: aws.String(m.ReceiptHandle)})
			}
		}
		if len(retry) > 0 {
			out, err := w.moto.SQS().ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(w.queue.URL), Entries: retry})
			if err != nil {
				return fmt.Errorf("change visibility: %w", err)
			}
			if len(out.Failed) > 0 {
				return fmt.Errorf("change visibility: %d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
			}
		}
		if len(del) > 0 {
			out, err := w.moto.SQS().DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(w.queue.URL), Entries: del})
			if err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			if len(out.Failed) > 0 {
				return fmt.Errorf("delete: %d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
			}
		}
		mu.Lock()
		st.invocations++
		st.acknowledged += len(del)
		st.failedItems += len(resp.BatchItemFailures)
		if ierr != nil {
			st.errors++
			st.errorKinds[errorKind(ierr)]++
		}
		for _, m := range msgs {
			if m.ReceiveCount > 1 {
				st.redelivered++
			}
			st.maxReceive = max(st.maxReceive, m.ReceiveCount)
		}
		if o.after != nil {
			o.after(st.invocations)
		}
		if o.stop != nil && o.stop(st.invocations) {
			st.stopped = true
		}
		mu.Unlock()
	}
}

// crashDelay is how long the messages of an invocation that failed as a whole stay invisible
// (seconds); production's is the queue's visibility timeout, 12 minutes. Reported failures are not
// shortened by the pump: the worker sets their backoff itself.
const crashDelay = 1

func errorKind(err error) string {
	var te *harness.TimeoutError
	var ee *harness.ExitError
	var fe *harness.FunctionError
	switch {
	case errors.As(err, &te):
		return "timeout"
	case errors.As(err, &ee):
		return "exit"
	case errors.As(err, &fe):
		return "function:" + fe.Type
	}
	return "other"
}

// emfCount sums an EMF metric over the output of the given runtimes.
func emfCount(name string, rts ...*harness.Runtime) float64 {
	var sum float64
	for _, v := range emfValues(name, rts...) {
		sum += v
	}
	return sum
}

// emfValues collects every value of an EMF metric (a number or an array of numbers per line).
func emfValues(name string, rts ...*harness.Runtime) []float64 {
	var out []float64
	for _, rt := range rts {
		for _, line := range rt.Output().Lines() {
			if !strings.Contains(line, `"_aws"`) || !strings.Contains(line, `"`+name+`"`) {
				continue
			}
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			switch v := rec[name].(type) {
			case float64:
				out = append(out, v)
			case []any:
				for _, x := range v {
					if f, ok := x.(float64); ok {
						out = append(out, f)
					}
				}
			}
		}
	}
	return out
}

// percentile is the nearest-rank percentile p (0..1) of vs; 0 for none.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// waitDepth waits until the queue holds at most n messages: Okta's deliveries of a burst spread
// over time, and moto's FIFO queue costs O(depth) per message sent or received.
func (w *faultWorld) waitDepth(n int) {
	w.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := w.moto.Depth(w.ctx, w.queue.URL)
		if err != nil {
			w.t.Fatal(err)
		}
		if d <= n {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("queue still holds %d messages after 2 minutes", d)
		}
		time.Sleep(250 * time.Millisecond) // GetQueueAttributes is O(depth) in moto too
	}
}

// oktaFaultPage fails the member pages of an Okta group from page n+1 on (the first n pass).
func oktaFaultPage(groupID string, n, status int) oktatest.Fault {
	return oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: groupID, Status: status, Skip: n, Times: -1}
}

// oktaEmptyPage answers page n+1 of an Okta group's members with an empty list and no next link:
// a truncated answer that looks complete.
func oktaEmptyPage(groupID string, n int) oktatest.Fault {
	return oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: groupID, Empty: true, Skip: n, Times: -1}
}

// batchTotals sums the "batch done" log lines of the sync environments: messages reported failed
// (retried after the worker's backoff) and changes isolated into message groups of their own.
// Their sum is how many retries the worker asked for.
func batchTotals(rts ...*harness.Runtime) (failed, isolated int) {
	for _, rt := range rts {
		for _, line := range rt.Output().Lines() {
			if !strings.Contains(line, `"batch done"`) {
				continue
			}
			var rec struct {
				Msg              string
				Failed, Isolated int
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "batch done" {
				failed += rec.Failed
				isolated += rec.Isolated
			}
		}
	}
	return failed, isolated
}
