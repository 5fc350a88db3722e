package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123_000_000, time.UTC)

func change(kind membership.Kind, at time.Time) membership.Change {
	return membership.Change{EventUUID: "ev-" + at.Format("150405.000"), Published: at, Kind: kind, UserID: "00u1", GroupID: "00g1"}
}

// fakeDynamo keeps items in memory, returns at most `serve` keys per BatchGetItem call (the rest as
// UnprocessedKeys, as DynamoDB does under throttling) and evaluates the put condition.
type fakeDynamo struct {
	mu       sync.Mutex
	items    map[string]map[string]types.AttributeValue
	serve    int
	getCalls []int // keys requested per call
	puts     int
	failPut  error
}

func (f *fakeDynamo) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out dynamodb.BatchGetItemOutput
	for table, ka := range in.RequestItems {
		f.getCalls = append(f.getCalls, len(ka.Keys))
		if len(ka.Keys) > 100 {
			return nil, errors.New("ValidationException: too many keys")
		}
		seen := map[string]bool{}
		for _, k := range ka.Keys {
			pk := k["pk"].(*types.AttributeValueMemberS).Value
			if seen[pk] {
				return nil, errors.New("ValidationException: duplicate key")
			}
			seen[pk] = true
		}
		n := min(f.serve, len(ka.Keys))
		out.Responses = map[string][]map[string]types.AttributeValue{}
		for _, k := range ka.Keys[:n] {
			if it, ok := f.items[k["pk"].(*types.AttributeValueMemberS).Value]; ok {
				out.Responses[table] = append(out.Responses[table], it)
			}
		}
		if n < len(ka.Keys) {
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: {Keys: ka.Keys[n:]}}
		}
	}
	return &out, nil
}

func (f *fakeDynamo) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.failPut != nil {
		return nil, f.failPut
	}
	pk := in.Item["pk"].(*types.AttributeValueMemberS).Value
	// The fake evaluates the conditions the ledger sends (conditionOf) with holds; moto_test.go
	// checks the same contract against DynamoDB's own evaluation of the expressions.
	_, rec, err := decode(in.Item)
	if err != nil {
		return nil, err
	}
	mode := writePut
	if rec.Pending {
		mode = writeClaim
	}
	want, _ := conditionOf(rec, mode)
	if *in.ConditionExpression != want {
		if fin, _ := conditionOf(rec, writeFinalize); *in.ConditionExpression != fin {
			return nil, fmt.Errorf("unexpected condition %q", *in.ConditionExpression)
		}
		mode = writeFinalize
	}
	old, found := f.items[pk]
	var oldMark membership.Mark
	if found {
		if _, oldMark, err = decode(old); err != nil {
			return nil, err
		}
	}
	if !holds(rec, oldMark, found, mode) {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	}
	f.items[pk] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func TestTableGetChunksDedupsAndRetriesUnprocessed(t *testing.T) {
	ctx := context.Background()
	f := &fakeDynamo{items: map[string]map[string]types.AttributeValue{}, serve: 30}
	tab := New(f, "state", WithClock(func() time.Time { return t0 }))
	tab.retryWait = time.Millisecond
	var recs []Record
	var keys []Key
	for i := range 250 {
		k := Key{GroupID: "00g1", UserID: fmt.Sprintf("00u%03d", i)}
		keys = append(keys, k, k) // every key twice
		if i%2 == 0 {
			recs = append(recs, Record{Key: k, Mark: membership.Mark{Published: t0.Add(time.Duration(i) * time.Millisecond), Kind: membership.KindAdd, EventUUID: fmt.Sprint("e", i)}})
		}
	}
	if err := tab.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := tab.Get(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 125 {
		t.Fatalf("got %d entries, want 125", len(got))
	}
	for _, r := range recs {
		e, ok := got[r.Key]
		if !ok || !e.Published.Equal(r.Mark.Published) || e.Kind != r.Mark.Kind || e.EventUUID != r.Mark.EventUUID {
			t.Fatalf("entry %v = %+v, %v; want %+v", r.Key, e, ok, r.Mark)
		}
	}
	for _, n := range f.getCalls {
		if n > 100 {
			t.Fatalf("BatchGetItem with %d keys", n)
		}
	}
	exp := f.items["00g1#00u000"]["expiresAt"].(*types.AttributeValueMemberN).Value
	if want := fmt.Sprint(t0.Add(Retention).Unix()); exp != want {
		t.Fatalf("expiresAt = %s, want %s", exp, want)
	}
}

func TestTablePutKeepsNewer(t *testing.T) {
	ctx := context.Background()
	f := &fakeDynamo{items: map[string]map[string]types.AttributeValue{}, serve: 100}
	tab := New(f, "state")
	k := Key{GroupID: "00g1", UserID: "00u1"}
	newer := Record{Key: k, Mark: membership.Mark{Published: t0.Add(time.Second), Kind: membership.KindRemove, EventUUID: "new"}}
	older := Record{Key: k, Mark: membership.Mark{Published: t0, Kind: membership.KindAdd, EventUUID: "old"}}
	if err := tab.Put(ctx, []Record{newer}); err != nil {
		t.Fatal(err)
	}
	if err := tab.Put(ctx, []Record{older}); err != nil {
		t.Fatalf("a lost race against a newer change is not an error: %v", err)
	}
	got, err := tab.Get(ctx, []Key{k})
	if err != nil {
		t.Fatal(err)
	}
	if got[k].EventUUID != "new" {
		t.Fatalf("entry = %+v, want the newer change", got[k])
	}
}

func TestTablePutReportsErrors(t *testing.T) {
	f := &fakeDynamo{items: map[string]map[string]types.AttributeValue{}, failPut: errors.New("ProvisionedThroughputExceededException")}
	tab := New(f, "state")
	err := tab.Put(context.Background(), []Record{{Key: Key{GroupID: "g", UserID: "u1"}}, {Key: Key{GroupID: "g", UserID: "u2"}}})
	if err == nil || f.puts != 2 {
		t.Fatalf("err = %v after %d puts; want an error after 2", err, f.puts)
	}
}

func TestMemoryMatchesTableSemantics(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	k := Key{GroupID: "00g1", UserID: "00u1"}
	_ = m.Put(ctx, []Record{{Key: k, Mark: membership.Mark{Published: t0.Add(time.Second), Kind: membership.KindRemove}}})
	_ = m.Put(ctx, []Record{{Key: k, Mark: membership.Mark{Published: t0, Kind: membership.KindAdd}}})
	got, _ := m.Get(ctx, []Key{k, {GroupID: "x", UserID: "y"}})
	if len(got) != 1 || got[k].Kind != membership.KindRemove {
		t.Fatalf("got %+v", got)
	}
}

// checkStatusMarks is the status-mark contract every Ledger keeps: the mark round-trips under
// its own key, never meets a membership mark of the same user, the newest lifecycle change stays
// recorded, and PutReport says which write won.
func checkStatusMarks(t *testing.T, l Ledger) {
	t.Helper()
	ctx := context.Background()
	deact := membership.Change{EventUUID: "e-deact", Published: t0, Kind: membership.KindUserDeactivate, UserID: "00uS"}
	react := membership.Change{EventUUID: "e-react", Published: t0.Add(time.Minute), Kind: membership.KindUserReactivate, UserID: "00uS"}
	member := Record{Key: Key{GroupID: "00gS", UserID: "00uS"}, Mark: membership.MarkOf(membership.Change{EventUUID: "e-add", Published: t0.Add(time.Hour), Kind: membership.KindAdd})}

	if PK(StatusKey("00uS")) != "status#00uS" || !IsStatusKey(StatusKey("00uS")) || IsStatusKey(member.Key) {
		t.Fatalf("status key %q", PK(StatusKey("00uS")))
	}
	written, err := l.PutReport(ctx, []Record{StatusRecord(deact), member})
	if err != nil || len(written) != 2 || !written[0] || !written[1] {
		t.Fatalf("first writes: %v, %v; want both written", written, err)
	}
	marks, err := l.Get(ctx, []Key{StatusKey("00uS"), member.Key, StatusKey("00uOther")})
	if err != nil {
		t.Fatal(err)
	}
	if m := marks[StatusKey("00uS")]; m.Kind != membership.KindUserDeactivate || !m.Published.Equal(t0) || m.EventUUID != "e-deact" {
		t.Fatalf("status mark = %+v", m)
	}
	if marks[member.Key].Kind != membership.KindAdd || len(marks) != 2 {
		t.Fatalf("marks = %+v; want the membership mark untouched and no mark for another user", marks)
	}
	if Permits(marks, "00uS") || !Permits(marks, "00uOther") {
		t.Fatal("a deactivation mark must not permit membership; no mark must")
	}
	// The reactivation wins; the deactivation delivered again afterwards loses and says so.
	if w, err := l.PutReport(ctx, []Record{StatusRecord(react)}); err != nil || !w[0] {
		t.Fatalf("reactivation: %v, %v", w, err)
	}
	if w, err := l.PutReport(ctx, []Record{StatusRecord(deact)}); err != nil || w[0] {
		t.Fatalf("late deactivation: written %v, %v; want not written, no error", w, err)
	}
	marks, err = l.Get(ctx, []Key{StatusKey("00uS")})
	if err != nil || marks[StatusKey("00uS")].EventUUID != "e-react" || !Permits(marks, "00uS") {
		t.Fatalf("after the late deactivation: %+v, %v; want the reactivation kept", marks, err)
	}
	// A redelivery of the recorded change is written again (equal published passes).
	if w, err := l.PutReport(ctx, []Record{StatusRecord(react)}); err != nil || !w[0] {
		t.Fatalf("redelivered reactivation: %v, %v", w, err)
	}
}

func TestStatusMarksTable(t *testing.T) {
	checkStatusMarks(t, New(&fakeDynamo{items: map[string]map[string]types.AttributeValue{}, serve: 100}, "state"))
}

func TestStatusMarksMemory(t *testing.T) { checkStatusMarks(t, NewMemory()) }

func TestTablePutReportFailedWrite(t *testing.T) {
	f := &fakeDynamo{items: map[string]map[string]types.AttributeValue{}, failPut: errors.New("ProvisionedThroughputExceededException")}
	w, err := New(f, "state").PutReport(context.Background(), []Record{StatusRecord(membership.Change{UserID: "00u1", Published: t0, Kind: membership.KindUserDeactivate})})
	if err == nil || len(w) != 1 || w[0] {
		t.Fatalf("written %v, err %v; want not written and an error", w, err)
	}
}
