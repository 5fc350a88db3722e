package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// fakeSQS checks requests the way SQS does and fails entries as the test decides.
type fakeSQS struct {
	mu       sync.Mutex
	calls    [][]types.SendMessageBatchRequestEntry
	queue    []types.SendMessageBatchRequestEntry // accepted, in order
	callErr  error
	failures map[string]int  // dedup id → times to report it as failed (server fault)
	refuse   map[string]bool // dedup id → report as failed with sender fault
	omit     map[string]bool // dedup id → report in neither list
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in.Entries)
	if f.callErr != nil {
		return nil, f.callErr
	}
	if aws.ToString(in.QueueUrl) == "" {
		return nil, errors.New("MissingParameter: QueueUrl")
	}
	if n := len(in.Entries); n == 0 || n > 10 {
		return nil, fmt.Errorf("TooManyEntriesInBatchRequest: %d", n)
	}
	ids := map[string]bool{}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		id := aws.ToString(e.Id)
		if ids[id] {
			return nil, errors.New("BatchEntryIdsNotDistinct")
		}
		ids[id] = true
		dedup := aws.ToString(e.MessageDeduplicationId)
		switch {
		case !validSQSID(aws.ToString(e.MessageGroupId)) || !validSQSID(dedup):
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidParameterValue"), SenderFault: true})
		case f.refuse[dedup]:
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidMessageContents"), Message: aws.String("invalid characters"), SenderFault: true})
		case f.failures[dedup] > 0:
			f.failures[dedup]--
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false})
		case f.omit[dedup]:
		default:
			f.queue = append(f.queue, e)
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + id)})
		}
	}
	return out, nil
}

func changes(n int) []membership.Change {
	out := make([]membership.Change, n)
	for i := range out {
		c := add()
		c.EventUUID = fmt.Sprintf("evt-%03d", i)
		c.GroupID = fmt.Sprintf("00g%d", i%3)
		out[i] = c
	}
	return out
}

// noSleep records the backoff delays instead of waiting.
func noSleep(s *Sender) *[]time.Duration {
	var mu sync.Mutex
	var d []time.Duration
	s.sleep = func(ctx context.Context, x time.Duration) error {
		mu.Lock()
		d = append(d, x)
		mu.Unlock()
		return ctx.Err()
	}
	return &d
}

func queued(f *fakeSQS) map[string]types.SendMessageBatchRequestEntry {
	m := map[string]types.SendMessageBatchRequestEntry{}
	for _, e := range f.queue {
		m[aws.ToString(e.MessageDeduplicationId)] = e
	}
	return m
}

// singles encodes changes as single-change entries, the shape of the worker's re-enqueues.
func singles(t *testing.T, cs []membership.Change) []Entry {
	t.Helper()
	out := make([]Entry, len(cs))
	for i, c := range cs {
		e, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

func TestSendEntriesBatchesOfTen(t *testing.T) {
	f := &fakeSQS{}
	s := NewSender(f, "https://sqs.us-east-1.amazonaws.com/1/q.fifo")
	in := changes(25)
	if err := s.SendEntries(context.Background(), singles(t, in)); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 3 {
		t.Errorf("%d calls for 25 entries, want 3", len(f.calls))
	}
	q := queued(f)
	if len(f.queue) != 25 || len(q) != 25 {
		t.Fatalf("%d queued (%d distinct), want 25", len(f.queue), len(q))
	}
	for _, c := range in {
		e, ok := q[DedupID(c)]
		if !ok {
			t.Fatalf("change %s not queued", c.EventUUID)
		}
		if aws.ToString(e.MessageGroupId) != c.GroupID {
			t.Errorf("group id %q, want %q", aws.ToString(e.MessageGroupId), c.GroupID)
		}
		if got, err := Decode(aws.ToString(e.MessageBody)); err != nil || len(got) != 1 || got[0] != c {
			t.Errorf("body decodes to %+v, %v", got, err)
		}
	}
}

// Send packs a delivery's changes: one message per Okta group, holding that group's changes.
func TestSendPacksPerGroup(t *testing.T) {
	f := &fakeSQS{}
	in := changes(25) // groups 00g0, 00g1, 00g2
	if err := NewSender(f, "q").Send(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 1 || len(f.queue) != 3 {
		t.Fatalf("%d calls, %d messages; want 1 call with 3 messages", len(f.calls), len(f.queue))
	}
	got := map[string]membership.Change{}
	for _, e := range f.queue {
		cs, err := Decode(aws.ToString(e.MessageBody))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			if c.GroupID != aws.ToString(e.MessageGroupId) {
				t.Errorf("change of %s in a message of group %s", c.GroupID, aws.ToString(e.MessageGroupId))
			}
			got[c.EventUUID] = c
			ids = append(ids, DedupID(c))
		}
		if aws.ToString(e.MessageDeduplicationId) != PackDedupID(ids) {
			t.Errorf("dedup id %q, want PackDedupID of its changes", aws.ToString(e.MessageDeduplicationId))
		}
	}
	for _, c := range in {
		if got[c.EventUUID] != c {
			t.Errorf("change %s: got %+v", c.EventUUID, got[c.EventUUID])
		}
	}
}

func TestSendNothing(t *testing.T) {
	f := &fakeSQS{}
	if err := NewSender(f, "q").Send(context.Background(), nil); err != nil || len(f.calls) != 0 {
		t.Errorf("err %v, %d calls", err, len(f.calls))
	}
}

func TestSendRetriesOnlyFailedEntries(t *testing.T) {
	in := changes(12)
	f := &fakeSQS{failures: map[string]int{DedupID(in[3]): 2, DedupID(in[11]): 1}}
	s := NewSender(f, "q", WithConcurrency(1))
	delays := noSleep(s)
	if err := s.SendEntries(context.Background(), singles(t, in)); err != nil {
		t.Fatal(err)
	}
	if len(f.queue) != 12 || len(queued(f)) != 12 {
		t.Errorf("%d queued, want 12 exactly once each", len(f.queue))
	}
	// Batch 1: 10 entries, then in[3] twice more. Batch 2: 2 entries, then in[11] once more.
	var sizes []int
	for _, c := range f.calls {
		sizes = append(sizes, len(c))
	}
	if fmt.Sprint(sizes) != "[10 1 1 2 1]" {
		t.Errorf("call sizes %v, want [10 1 1 2 1]", sizes)
	}
	if aws.ToString(f.calls[1][0].MessageDeduplicationId) != DedupID(in[3]) || aws.ToString(f.calls[1][0].Id) != "3" {
		t.Errorf("retry sent %v", f.calls[1][0])
	}
	if len(*delays) != 3 {
		t.Errorf("%d backoffs, want 3", len(*delays))
	}
	for i, d := range *delays {
		if d <= 0 || d > time.Second {
			t.Errorf("delay %d = %v", i, d)
		}
	}
}

func TestSendGivesUpAfterMaxAttempts(t *testing.T) {
	in := changes(5)
	f := &fakeSQS{failures: map[string]int{DedupID(in[0]): 100, DedupID(in[4]): 100}}
	s := NewSender(f, "q", WithMaxAttempts(4))
	noSleep(s)
	err := s.SendEntries(context.Background(), singles(t, in))
	var se *SendError
	if !errors.As(err, &se) || se.Failed != 2 || se.Total != 5 {
		t.Fatalf("err = %v, want *SendError 2 of 5", err)
	}
	if !strings.Contains(err.Error(), "2 of 5 messages not enqueued") || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("err = %q", err)
	}
	if len(f.calls) != 4 || len(f.queue) != 3 {
		t.Errorf("%d calls, %d queued; want 4 calls, 3 queued", len(f.calls), len(f.queue))
	}
}

func TestSendDoesNotRetrySenderFaults(t *testing.T) {
	in := changes(3)
	f := &fakeSQS{refuse: map[string]bool{DedupID(in[1]): true}}
	s := NewSender(f, "q")
	delays := noSleep(s)
	err := s.SendEntries(context.Background(), singles(t, in))
	var se *SendError
	var ee *EntryError
	if !errors.As(err, &se) || se.Failed != 1 || !errors.As(err, &ee) || !ee.SenderFault || ee.Code != "InvalidMessageContents" {
		t.Fatalf("err = %v", err)
	}
	if len(f.calls) != 1 || len(*delays) != 0 || len(f.queue) != 2 {
		t.Errorf("%d calls, %d backoffs, %d queued; want 1, 0, 2", len(f.calls), len(*delays), len(f.queue))
	}
}

func TestSendTreatsUnreportedEntriesAsFailed(t *testing.T) {
	in := changes(2)
	f := &fakeSQS{omit: map[string]bool{DedupID(in[0]): true}}
	s := NewSender(f, "q", WithMaxAttempts(2))
	noSleep(s)
	err := s.SendEntries(context.Background(), singles(t, in))
	var se *SendError
	if !errors.As(err, &se) || se.Failed != 1 || len(f.calls) != 2 {
		t.Errorf("err = %v after %d calls", err, len(f.calls))
	}
}

func TestSendCallError(t *testing.T) {
	denied := errors.New("AccessDenied: not authorized to perform sqs:SendMessage")
	f := &fakeSQS{callErr: denied}
	err := NewSender(f, "q").SendEntries(context.Background(), singles(t, changes(13)))
	var se *SendError
	if !errors.As(err, &se) || se.Failed != 13 || !errors.Is(err, denied) {
		t.Fatalf("err = %v", err)
	}
	if len(f.calls) != 2 {
		t.Errorf("%d calls, want one per batch and no extra retries (the SDK retries)", len(f.calls))
	}
}

func TestSendStopsRetryingWhenContextEnds(t *testing.T) {
	in := changes(1)
	f := &fakeSQS{failures: map[string]int{DedupID(in[0]): 100}}
	s := NewSender(f, "q", WithMaxAttempts(10), WithBackoff(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	s.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	err := s.SendEntries(ctx, singles(t, in))
	if !errors.Is(err, context.Canceled) || len(f.calls) != 1 {
		t.Errorf("err = %v after %d calls", err, len(f.calls))
	}
}

func TestSendRejectsInvalidChangeBeforeSending(t *testing.T) {
	in := changes(3)
	in[2].UserID = ""
	f := &fakeSQS{}
	err := NewSender(f, "q").Send(context.Background(), in)
	if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), "change 2") {
		t.Errorf("err = %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("%d calls; an invalid change must stop the send before anything is queued", len(f.calls))
	}
}

func TestSendDropsDuplicates(t *testing.T) {
	in := changes(3)
	in = append(in, in[0], in[1])
	f := &fakeSQS{}
	if err := NewSender(f, "q").Send(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range f.queue {
		cs, _ := Decode(aws.ToString(e.MessageBody))
		n += len(cs)
	}
	if n != 3 {
		t.Errorf("%d changes queued, want 3", n)
	}
	f = &fakeSQS{}
	if err := NewSender(f, "q").SendEntries(context.Background(), singles(t, in)); err != nil {
		t.Fatal(err)
	}
	if len(f.queue) != 3 || len(f.calls[0]) != 3 {
		t.Errorf("%d queued in a call of %d, want 3", len(f.queue), len(f.calls[0]))
	}
}

func TestSplitRespectsPayloadLimit(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	entries := []Entry{{Body: big}, {Body: big}, {Body: big}, {Body: "small"}}
	b := split(entries)
	if len(b) != 2 || len(b[0]) != 2 || len(b[1]) != 2 {
		var sizes []int
		for _, x := range b {
			sizes = append(sizes, len(x))
		}
		t.Errorf("batches %v, want [2 2]", sizes)
	}
}

func TestDelayGrowsAndIsBounded(t *testing.T) {
	s := NewSender(nil, "q", WithBackoff(100*time.Millisecond))
	for attempt := 1; attempt <= 10; attempt++ {
		want := min(100*time.Millisecond<<(attempt-1), time.Second)
		for range 20 {
			if d := s.delay(attempt); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := NewSender(nil, "q", WithBackoff(0)).delay(3); d != 0 {
		t.Errorf("zero backoff gives %v", d)
	}
}
