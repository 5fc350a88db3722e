package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// batchSize is the template's SQS event source BatchSize.
const batchSize = 10

// mapping plays Lambda's SQS event source mapping for the sync function: it receives batches of
// at most 10, invokes sync with an events.SQSEvent, deletes what sync did not report in
// batchItemFailures (ReportBatchItemFailures), and leaves the rest to reappear after the
// visibility timeout until the queue's redrive policy moves it to the DLQ.
type mapping struct {
	w    *world
	sync *harness.Runtime
	logs logCursor
}

func newMapping(w *world, sync *harness.Runtime) *mapping {
	return &mapping{w: w, sync: sync, logs: logCursor{rt: sync}}
}

// batch is one sync invocation and what it did.
type batch struct {
	messages []harness.Message
	changes  []membership.Change // the changes of the decodable messages, for the summary
	failed   map[string]bool     // message ids sync reported for retry
	err      error               // the invocation failed: the whole batch is retried
	logs     []logLine
}

func (b batch) retries() int {
	n := 0
	for _, m := range b.messages {
		if m.ReceiveCount > 1 {
			n++
		}
	}
	return n
}

// poll runs at most one batch; ok is false when no message was visible.
func (m *mapping) poll(ctx context.Context) (b batch, ok bool, err error) {
	msgs, err := m.w.moto.Receive(ctx, m.w.queue.URL, batchSize)
	if err != nil || len(msgs) == 0 {
		return batch{}, false, err
	}
	b = batch{messages: msgs, failed: map[string]bool{}}
	ev := harness.SQSEvent(m.w.queue.ARN, msgs)
	for _, x := range msgs {
		cs, _ := queue.Decode(x.Body)
		b.changes = append(b.changes, cs...)
	}
	var resp events.SQSEventResponse
	b.err = m.sync.InvokeJSON(ctx, ev, &resp)
	b.logs = m.logs.next("batch done")
	if b.err != nil {
		// Lambda retries the whole batch: nothing is deleted.
		for _, x := range msgs {
			b.failed[x.ID] = true
		}
		return b, true, nil
	}
	for _, f := range resp.BatchItemFailures {
		b.failed[f.ItemIdentifier] = true
	}
	for _, x := range msgs {
		if !b.failed[x.ID] {
			if err := m.w.moto.DeleteMessage(ctx, m.w.queue.URL, x.ReceiptHandle); err != nil {
				return b, true, err
			}
		}
	}
	return b, true, nil
}

// drain runs batches until the queue is empty, waiting out the visibility timeout of reported
// failures, and calls each (may be nil) after every batch.
func (m *mapping) drain(ctx context.Context, each func(batch)) ([]batch, error) {
	var all []batch
	// The worker's own backoff (5 s doubling) brings failures back; 3 minutes covers the demo's
	// 20 s UNPROVISIONED_USER_WAIT many times over.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, ok, err := m.poll(ctx)
		if err != nil {
			return all, err
		}
		if ok {
			all = append(all, b)
			if each != nil {
				each(b)
			}
			continue
		}
		depth, err := m.w.moto.Depth(ctx, m.w.queue.URL)
		if err != nil {
			return all, err
		}
		if depth == 0 {
			return all, nil
		}
		if time.Now().After(deadline) {
			return all, fmt.Errorf("queue not drained: %d messages left", depth)
		}
		// In flight: a reported failure waits for its visibility timeout.
		select {
		case <-ctx.Done():
			return all, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run polls until ctx ends (make local's background consumer).
func (m *mapping) run(ctx context.Context, each func(batch), report func(error)) {
	for ctx.Err() == nil {
		b, ok, err := m.poll(ctx)
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			report(err)
		case ok:
			each(b)
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}
