// Package ledger remembers, per (Okta group, Okta user), the last membership change that was
// applied to SCIM, so that the sync worker can tell a stale change delivered late from a new one
// and a redelivered change from a new change, without asking SCIM.
//
// SCIM state alone cannot answer either question: a user who is a member today may be so because of
// a newer add (an old add arriving late is harmless) or despite a newer remove that was not applied
// yet (an old add arriving late must be ignored). SQS FIFO deduplicates for only five minutes and
// a warm container's memory is lost on a cold start, so the memory lives in a DynamoDB table.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// Retention is how long an entry is kept (DynamoDB TTL attribute expiresAt). It must exceed the
// longest time a change can wait in SQS (14 days maximum retention), otherwise a change delivered
// from the tail of the queue could find its newer successor forgotten.
const Retention = 15 * 24 * time.Hour

// maxBatchGet is DynamoDB's BatchGetItem limit of keys per call.
const maxBatchGet = 100

// Key is the membership a ledger entry is about; its table partition key is
// "<oktaGroupId>#<oktaUserId>" (see [PK]).
type Key = membership.Key

// PK returns the table's partition key value for k.
func PK(k Key) string { return k.GroupID + "#" + k.UserID }

// Record is one mark to write: the last change applied for Key.
type Record struct {
	Key  Key
	Mark membership.Mark
}

// RecordOf returns the record that marks c as applied.
func RecordOf(c membership.Change) Record {
	return Record{Key: membership.KeyOf(c), Mark: membership.MarkOf(c)}
}

// NameKey is the key of an Okta group's name mark: the Okta name last applied to its AWS group
// and the time Okta had it (an event's published, or the time of a read of Okta). The sync
// worker renames the AWS group for a membership event carrying another name only when the event
// is newer, so late events with an old name never rename it back; the reconciler writes the mark
// when it renames. The pseudo user id "name" never meets a membership mark (Okta user ids start
// with 00u).
func NameKey(oktaGroupID string) Key { return Key{GroupID: oktaGroupID, UserID: "name"} }

// NameRecord is the name mark that says the group's AWS name is name as of at.
func NameRecord(oktaGroupID, name string, at time.Time, eventUUID string) Record {
	return Record{Key: NameKey(oktaGroupID), Mark: membership.Mark{Published: at, Kind: nameKind, EventUUID: eventUUID, Name: name}}
}

// nameKind is the op stored with a name mark.
const nameKind membership.Kind = "name"

// StatusKey is the key of an Okta user's status mark: the newest user lifecycle change
// (deactivate, reactivate, suspend, unsuspend) recorded for the user, at the event's published.
// Membership marks stay pure Okta membership history; the status mark is what every later
// membership add of the user is checked against ([Permits], membership.StatusPermits), so an add
// delivered after a deactivation, published before or after it, never puts a deprovisioned user
// back into AWS (docs/SYNC.md, "The user-status rule"). Its partition key is
// "status#<oktaUserId>": the pseudo group id "status" never meets a membership or name mark
// (Okta group ids start with 00g).
func StatusKey(oktaUserID string) Key { return Key{GroupID: statusGroup, UserID: oktaUserID} }

// statusGroup is the pseudo group id of status marks.
const statusGroup = "status"

// IsStatusKey reports whether k is a user's status key.
func IsStatusKey(k Key) bool { return k.GroupID == statusGroup }

// StatusRecord is the status mark of the user lifecycle change c: published and kind of the
// lifecycle event, and its uuid.
func StatusRecord(c membership.Change) Record {
	return Record{Key: StatusKey(c.UserID), Mark: membership.MarkOf(c)}
}

// Permits reports whether the status mark of userID among marks (as [Ledger.Get] returned them
// for keys that included StatusKey(userID)) permits AWS group membership
// (membership.StatusPermits: no mark permits).
func Permits(marks map[Key]membership.Mark, userID string) bool {
	m, found := marks[StatusKey(userID)]
	return membership.StatusPermits(m, found)
}

// Whether a change applies given its key's mark is membership.Decide's to say (the one ordering
// verdict); the table evaluates the same order in its conditional writes (claim.go).

// Ledger is the ordering memory the sync worker and the reconciler use.
type Ledger interface {
	// Get returns the marks present for keys; absent keys are missing from the map.
	Get(ctx context.Context, keys []Key) (map[Key]membership.Mark, error)
	// Put records applied changes. A record older than the stored entry is not written (a newer
	// change was recorded meanwhile) and is not an error.
	Put(ctx context.Context, records []Record) error
	// PutReport is Put that also says, per record (same index), whether it was written: false
	// when a newer mark was recorded (the write lost) or the write failed (then in the error).
	PutReport(ctx context.Context, records []Record) ([]bool, error)
	// Claim records membership changes as pending before their SCIM write, under Put's
	// condition (claim.go, the single-writer rule): claimed[i] false means a change that wins
	// over records[i] is recorded, claimed or applied, and records[i] must not be written to
	// SCIM.
	Claim(ctx context.Context, records []Record) (claimed []bool, err error)
	// Finalize turns claims into applied marks where the stored mark is still exactly the claim
	// (published, op, event uuid): final[i] false means a newer change claimed the key during
	// the SCIM write; that change's mark decides what AWS must hold (claim.go, [Target]).
	Finalize(ctx context.Context, records []Record) (final []bool, err error)
}

// DynamoDBAPI is the subset of the DynamoDB client the ledger uses.
type DynamoDBAPI interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Table is the DynamoDB ledger. Table layout: partition key pk (S) = Key.String(); attributes
// published (N, epoch millis), op (S), eventUuid (S), name (S, group name marks only), pending
// (BOOL, true on a claimed membership mark whose SCIM write is not confirmed yet; absent once
// applied), expiresAt (N, epoch seconds, the TTL attribute).
type Table struct {
	api         DynamoDBAPI
	name        string
	now         func() time.Time
	concurrency int
	retryWait   time.Duration
}

// Option configures a Table.
type Option func(*Table)

// WithClock sets the clock used for expiresAt (tests).
func WithClock(now func() time.Time) Option { return func(t *Table) { t.now = now } }

// WithConcurrency bounds the number of PutItem calls in flight (default 4).
func WithConcurrency(n int) Option {
	return func(t *Table) {
		if n > 0 {
			t.concurrency = n
		}
	}
}

// New returns a ledger on the DynamoDB table name.
func New(api DynamoDBAPI, name string, opts ...Option) *Table {
	t := &Table{api: api, name: name, now: time.Now, concurrency: 4, retryWait: 50 * time.Millisecond}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Get reads the entries for keys with strongly consistent reads, 100 keys per BatchGetItem call,
// retrying UnprocessedKeys (DynamoDB returns them under throttling) until ctx ends.
func (t *Table) Get(ctx context.Context, keys []Key) (map[Key]membership.Mark, error) {
	out := make(map[Key]membership.Mark, len(keys))
	uniq := make([]Key, 0, len(keys))
	seen := make(map[Key]bool, len(keys))
	for _, k := range keys {
		// BatchGetItem rejects a request that names the same key twice.
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	for start := 0; start < len(uniq); start += maxBatchGet {
		chunk := uniq[start:min(start+maxBatchGet, len(uniq))]
		req := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			req[i] = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: PK(k)}}
		}
		if err := t.batchGet(ctx, req, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *Table) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, out map[Key]membership.Mark) error {
	wait := t.retryWait
	for len(keys) > 0 {
		res, err := t.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{t.name: {Keys: keys, ConsistentRead: aws.Bool(true)}},
		})
		if err != nil {
			return fmt.Errorf("ledger: batch get from %s: %w", t.name, err)
		}
		for _, item := range res.Responses[t.name] {
			k, e, err := decode(item)
			if err != nil {
				return fmt.Errorf("ledger: table %s: %w", t.name, err)
			}
			out[k] = e
		}
		keys = res.UnprocessedKeys[t.name].Keys
		if len(keys) > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("ledger: batch get from %s: %d keys unprocessed: %w", t.name, len(keys), ctx.Err())
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
		}
	}
	return nil
}

// Put writes records concurrently (bounded), each with the condition
// `attribute_not_exists(pk) OR published <= :p`, so that of two workers racing on one key the newer
// change always stays recorded. It returns the errors of all failed writes joined.
func (t *Table) Put(ctx context.Context, records []Record) error {
	_, err := t.PutReport(ctx, records)
	return err
}

// PutReport implements Ledger: Put, with written[i] true when records[i] passed the condition
// and was stored (a ConditionalCheckFailedException means a newer mark is recorded: false, no
// error).
func (t *Table) PutReport(ctx context.Context, records []Record) ([]bool, error) {
	return t.writeAll(ctx, records, writePut)
}

// writeAll writes records concurrently (bounded) in mode; written[i] says whether records[i]
// passed its condition.
func (t *Table) writeAll(ctx context.Context, records []Record, mode writeMode) ([]bool, error) {
	written := make([]bool, len(records))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, t.concurrency)
	)
	for i, r := range records {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			errs = append(errs, fmt.Errorf("ledger: %s %s: %w", mode, PK(r.Key), ctx.Err()))
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := t.write(ctx, r, mode)
			written[i] = ok // distinct indexes: no lock needed
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return written, errors.Join(errs...)
}

// write stores r as mode says (put, claim, finalize) with that mode's condition (conditionOf).
// DynamoDB evaluates a PutItem's ConditionExpression against the item as stored and writes only
// if it holds, atomically, answering ConditionalCheckFailedException otherwise (DynamoDB API
// Reference, PutItem: ConditionExpression; "Condition expressions" in the Developer Guide).
func (t *Table) write(ctx context.Context, r Record, mode writeMode) (written bool, err error) {
	p := strconv.FormatInt(r.Mark.Published.UnixMilli(), 10)
	item := map[string]types.AttributeValue{
		"pk":        &types.AttributeValueMemberS{Value: PK(r.Key)},
		"published": &types.AttributeValueMemberN{Value: p},
		"op":        &types.AttributeValueMemberS{Value: string(r.Mark.Kind)},
		"eventUuid": &types.AttributeValueMemberS{Value: r.Mark.EventUUID},
		"expiresAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.now().Add(Retention).Unix(), 10)},
	}
	if r.Mark.Name != "" {
		item["name"] = &types.AttributeValueMemberS{Value: r.Mark.Name}
	}
	if mode == writeClaim {
		item["pending"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	cond, values := conditionOf(r.Mark, mode)
	_, err = t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(t.name),
		Item:                      item,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil // a newer change is recorded: that one decides
	}
	if err != nil {
		return false, fmt.Errorf("ledger: %s %s: %w", mode, PK(r.Key), err)
	}
	return true, nil
}

func decode(item map[string]types.AttributeValue) (Key, membership.Mark, error) {
	pk, ok := item["pk"].(*types.AttributeValueMemberS)
	if !ok {
		return Key{}, membership.Mark{}, errors.New("item without string pk")
	}
	g, u, ok := strings.Cut(pk.Value, "#")
	if !ok {
		return Key{}, membership.Mark{}, fmt.Errorf("malformed pk %q", pk.Value)
	}
	k := Key{GroupID: g, UserID: u}
	var e membership.Mark
	if n, ok := item["published"].(*types.AttributeValueMemberN); ok {
		ms, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return Key{}, membership.Mark{}, fmt.Errorf("item %s: published %q: %w", pk.Value, n.Value, err)
		}
		e.Published = time.UnixMilli(ms).UTC()
	} else {
		return Key{}, membership.Mark{}, fmt.Errorf("item %s without numeric published", pk.Value)
	}
	if s, ok := item["op"].(*types.AttributeValueMemberS); ok {
		e.Kind = membership.Kind(s.Value)
	}
	if s, ok := item["eventUuid"].(*types.AttributeValueMemberS); ok {
		e.EventUUID = s.Value
	}
	if s, ok := item["name"].(*types.AttributeValueMemberS); ok {
		e.Name = s.Value
	}
	if b, ok := item["pending"].(*types.AttributeValueMemberBOOL); ok {
		e.Pending = b.Value
	}
	return k, e, nil
}

// Memory is an in-process ledger with the same semantics as Table. It serves tests, benchmarks and
// deployments without STATE_TABLE, where ordering memory then lasts only as long as the warm
// container.
type Memory struct {
	mu sync.Mutex
	m  map[Key]membership.Mark
}

// NewMemory returns an empty in-process ledger.
func NewMemory() *Memory { return &Memory{m: map[Key]membership.Mark{}} }

// Get implements Ledger.
func (m *Memory) Get(_ context.Context, keys []Key) (map[Key]membership.Mark, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]membership.Mark, len(keys))
	for _, k := range keys {
		if e, ok := m.m[k]; ok {
			out[k] = e
		}
	}
	return out, nil
}

// Put implements Ledger with the same "newer or equal wins" condition as Table.
func (m *Memory) Put(ctx context.Context, records []Record) error {
	_, err := m.PutReport(ctx, records)
	return err
}

// PutReport implements Ledger with the same condition as Table.
func (m *Memory) PutReport(_ context.Context, records []Record) ([]bool, error) {
	return m.writeAll(records, writePut), nil
}

// Claim implements Ledger with the same condition as Table.
func (m *Memory) Claim(_ context.Context, records []Record) ([]bool, error) {
	return m.writeAll(records, writeClaim), nil
}

// Finalize implements Ledger with the same condition as Table.
func (m *Memory) Finalize(_ context.Context, records []Record) ([]bool, error) {
	return m.writeAll(records, writeFinalize), nil
}

func (m *Memory) writeAll(records []Record, mode writeMode) []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	written := make([]bool, len(records))
	for i, r := range records {
		r.Mark.Published = time.UnixMilli(r.Mark.Published.UnixMilli()).UTC()
		r.Mark.Pending = mode == writeClaim
		old, found := m.m[r.Key]
		if !holds(r.Mark, old, found, mode) {
			continue
		}
		m.m[r.Key] = r.Mark
		written[i] = true
	}
	return written
}

// Len returns the number of entries (tests).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// TableCreator is the DynamoDB call CreateTable needs.
type TableCreator interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

// CreateTable creates the ledger table (on-demand, key pk) for tests and local runs; deployments
// declare it in template.yaml with expiresAt as the TTL attribute.
func CreateTable(ctx context.Context, api TableCreator, name string) error {
	_, err := api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		return fmt.Errorf("ledger: create table %s: %w", name, err)
	}
	return nil
}
