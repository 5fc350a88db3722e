package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// SQSAPI is the one SQS call the sender needs.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS limits of one SendMessageBatch call.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 << 10 // the historical payload limit; every region accepts at least this
)

// Defaults of the retry of entries SQS reports as failed. Small: the hook has Okta's 3 s.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = 50 * time.Millisecond
	maxBackoff         = time.Second
	DefaultConcurrency = 4
)

// Sender sends messages to one FIFO queue.
type Sender struct {
	api         SQSAPI
	queueURL    string
	maxAttempts int
	backoff     time.Duration
	concurrency int
	sleep       func(ctx context.Context, d time.Duration) error
}

// Option configures a Sender.
type Option func(*Sender)

// WithMaxAttempts bounds the sends of one entry (first try included); n < 1 means 1.
func WithMaxAttempts(n int) Option { return func(s *Sender) { s.maxAttempts = max(n, 1) } }

// WithBackoff sets the first wait before retrying failed entries; it doubles per attempt up to 1 s.
func WithBackoff(d time.Duration) Option { return func(s *Sender) { s.backoff = max(d, 0) } }

// WithConcurrency bounds the batches in flight at once; n < 1 means 1. Batches may go out of
// order: the worker orders changes by their published time, not by queue position.
func WithConcurrency(n int) Option { return func(s *Sender) { s.concurrency = max(n, 1) } }

// NewSender returns a sender to the FIFO queue at queueURL.
func NewSender(api SQSAPI, queueURL string, opts ...Option) *Sender {
	s := &Sender{
		api:         api,
		queueURL:    queueURL,
		maxAttempts: DefaultMaxAttempts,
		backoff:     DefaultBackoff,
		concurrency: DefaultConcurrency,
		sleep:       sleepCtx,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SendError reports the messages that were finally not enqueued. The others were: a caller that
// answers with a retry (the hook's 500) relies on FIFO deduplication to drop the repeats.
type SendError struct {
	Total  int   // messages to send, after dropping duplicates
	Failed int   // of which not enqueued
	Err    error // the first cause
}

func (e *SendError) Error() string {
	return fmt.Sprintf("send to queue: %d of %d messages not enqueued: %v", e.Failed, e.Total, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// EntryError is one entry SQS refused, with its reason.
type EntryError struct {
	Code, Message string
	SenderFault   bool // the entry itself is wrong; sending it again cannot help
}

func (e *EntryError) Error() string {
	fault := "server"
	if e.SenderFault {
		fault = "sender"
	}
	return fmt.Sprintf("entry refused (%s fault): %s: %s", fault, e.Code, e.Message)
}

// Send enqueues the changes of one Okta delivery packed into v2 messages (EncodeBatch: one
// message per Okta group and chunk), so the worker gets up to MaxPackChanges changes of a group
// per queue message instead of one. An invalid change fails the call before anything is sent;
// otherwise see SendEntries.
func (s *Sender) Send(ctx context.Context, changes []membership.Change) error {
	entries, err := EncodeBatch(changes)
	if err != nil {
		return fmt.Errorf("send to queue: %w", err)
	}
	return s.SendEntries(ctx, entries)
}

// SendEntries enqueues encoded entries (e.g. RetryEntry's single changes), SendMessageBatch with
// up to 10 entries per call. Entries SQS reports as failed without sender fault are retried with
// a short backoff; the error is a *SendError if any entry is finally not enqueued. Entries with
// the same deduplication id are sent once.
func (s *Sender) SendEntries(ctx context.Context, in []Entry) error {
	entries := make([]Entry, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, e := range in {
		if seen[e.DedupID] {
			continue
		}
		seen[e.DedupID] = true
		entries = append(entries, e)
	}
	batches := split(entries)

	var (
		mu     sync.Mutex
		failed int
		cause  error
		wg     sync.WaitGroup
		sem    = make(chan struct{}, s.concurrency)
	)
	for _, b := range batches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n, err := s.sendBatch(ctx, b)
			if n > 0 {
				mu.Lock()
				failed += n
				if cause == nil {
					cause = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		return &SendError{Total: len(entries), Failed: failed, Err: cause}
	}
	return nil
}

// split cuts entries into batches within SQS's count and payload limits.
func split(entries []Entry) [][]Entry {
	var (
		out   [][]Entry
		cur   []Entry
		bytes int
	)
	for _, e := range entries {
		n := len(e.Body)
		if e.Reason != "" {
			n += len(ReasonAttribute) + len("String") + len(e.Reason) // SQS counts name, type and value
		}
		if len(cur) == maxBatchEntries || (len(cur) > 0 && bytes+n > maxBatchBytes) {
			out = append(out, cur)
			cur, bytes = nil, 0
		}
		cur = append(cur, e)
		bytes += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sendBatch returns how many entries of batch were finally not enqueued, and why.
func (s *Sender) sendBatch(ctx context.Context, batch []Entry) (int, error) {
	// Batch entry ids are the positions in batch: unique within a call, as SQS requires.
	pending := make(map[string]Entry, len(batch))
	for i, e := range batch {
		pending[strconv.Itoa(i)] = e
	}
	var (
		refused int
		cause   error
	)
	for attempt := 1; ; attempt++ {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL)}
		for i := range batch {
			id := strconv.Itoa(i)
			if e, ok := pending[id]; ok {
				entry := types.SendMessageBatchRequestEntry{
					Id:                     aws.String(id),
					MessageBody:            aws.String(e.Body),
					MessageGroupId:         aws.String(e.GroupID),
					MessageDeduplicationId: aws.String(e.DedupID),
				}
				if e.Reason != "" {
					entry.MessageAttributes = map[string]types.MessageAttributeValue{
						ReasonAttribute: {DataType: aws.String("String"), StringValue: aws.String(e.Reason)},
					}
				}
				in.Entries = append(in.Entries, entry)
			}
		}
		out, err := s.api.SendMessageBatch(ctx, in)
		if err != nil {
			// The SDK has already retried throttling, 5xx and transport errors; what is left
			// (access denied, no such queue, deadline) applies to every entry.
			return refused + len(pending), fmt.Errorf("SendMessageBatch: %w", err)
		}
		for _, ok := range out.Successful {
			delete(pending, aws.ToString(ok.Id))
		}
		var retryable error
		for _, f := range out.Failed {
			id := aws.ToString(f.Id)
			if _, ok := pending[id]; !ok {
				continue
			}
			ee := &EntryError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
			if f.SenderFault {
				delete(pending, id)
				refused++
				if cause == nil {
					cause = ee
				}
			} else if retryable == nil {
				retryable = ee
			}
		}
		if len(pending) == 0 {
			return refused, cause
		}
		if retryable == nil {
			// Entries in neither list: SQS did not say, so treat them as not enqueued.
			retryable = errors.New("SQS reported no result for some entries")
		}
		if attempt >= s.maxAttempts {
			if cause == nil {
				cause = fmt.Errorf("after %d attempts: %w", attempt, retryable)
			}
			return refused + len(pending), cause
		}
		if err := s.sleep(ctx, s.delay(attempt)); err != nil {
			if cause == nil {
				cause = fmt.Errorf("retry failed entries: %w", err)
			}
			return refused + len(pending), cause
		}
	}
}

// delay doubles per attempt up to maxBackoff, half of it random: concurrent hooks retrying
// together would otherwise hit a throttled queue in step.
func (s *Sender) delay(attempt int) time.Duration {
	d := s.backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
