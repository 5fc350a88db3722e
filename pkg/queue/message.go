// Package queue is the format of the messages on the FIFO queue between the hook and the sync
// worker (versioned JSON: v1 carries one membership.Change, v2 packs the changes of one Okta
// delivery for one Okta group) and the SQS client wrapper that sends them.
package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// Versions of the message format. A reader rejects versions it does not know, so a newer hook
// never has its messages half-understood by an older worker during a deploy (they are retried
// until the new worker runs). Every version ever written stays readable: messages in flight and
// in the DLQ outlive a deploy by up to 14 days.
const (
	// Version1 is {"v":1,"change":{…}}: one change. Encode writes it (the sync worker's
	// re-enqueued single changes); hooks before v2 wrote it for everything.
	Version1 = 1
	// Version2 is {"v":2,"changes":[…]}: 1..MaxPackChanges changes of one MessageGroupId, all
	// from one Okta delivery. EncodeBatch writes it.
	Version2 = 2
	// Version is the newest version this code writes and reads.
	Version = Version2
)

// Limits of one packed (v2) message. Lambda's FIFO event source mapping hands the worker at most
// 10 messages per invocation, so the changes per message bound how many changes of a group one
// PATCH can carry; 100 is exactly what one SCIM PATCH takes. The byte cap keeps a pack far under
// SQS's 256 KiB per message (and SendMessageBatch's 256 KiB per call, so a batch of packs fits
// without splitting a pack): about 200 changes with the longest names Okta allows.
const (
	MaxPackChanges = 100
	MaxPackBytes   = 64 << 10
)

// Message is the JSON body of a v1 message.
type Message struct {
	V      int               `json:"v"`
	Change membership.Change `json:"change"`
}

// Pack is the JSON body of a v2 message.
type Pack struct {
	V       int                 `json:"v"`
	Changes []membership.Change `json:"changes"`
}

// Entry is one message ready for SendMessage(Batch).
type Entry struct {
	Body    string
	GroupID string // MessageGroupId: one Okta group, so changes of a group are applied by one worker at a time
	DedupID string // MessageDeduplicationId: identical for Okta's redeliveries of the same event targets
	// Reason, when set, is sent as the String message attribute "reason": why the sync worker
	// dead-lettered the change. The worker never reads it, so a redriven message decodes as sent.
	Reason string
}

// ReasonAttribute is the message attribute that carries [Entry.Reason].
const ReasonAttribute = "reason"

var (
	// ErrInvalidMessage: the body is not a well-formed message or a change is incomplete.
	// Retrying cannot help.
	ErrInvalidMessage = errors.New("invalid queue message")
	// ErrUnsupportedVersion: the body has a version this code does not know (maybe a newer
	// producer during a deploy).
	ErrUnsupportedVersion = errors.New("unsupported queue message version")
)

// SQS limits for MessageGroupId and MessageDeduplicationId.
const maxIDLen = 128

// Validate reports whether c carries what the sync worker needs for its kind.
func Validate(c membership.Change) error {
	var missing []string
	if c.EventUUID == "" {
		missing = append(missing, "eventUuid")
	}
	if c.Published.IsZero() {
		missing = append(missing, "published")
	}
	if !c.Kind.Valid() {
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidMessage, c.Kind)
	}
	switch c.Kind {
	case membership.KindAdd, membership.KindRemove:
		if c.UserID == "" {
			missing = append(missing, "userId")
		}
		if c.GroupID == "" {
			missing = append(missing, "groupId")
		}
	case membership.KindRename, membership.KindGroupDelete:
		if c.GroupID == "" {
			missing = append(missing, "groupId")
		}
	case membership.KindUserDeactivate, membership.KindUserReactivate, membership.KindUserSuspend, membership.KindUserUnsuspend:
		if c.UserID == "" {
			missing = append(missing, "userId")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s change without %s", ErrInvalidMessage, c.Kind, strings.Join(missing, ", "))
	}
	return nil
}

// Encode turns a change into a single-change (v1) queue entry.
func Encode(c membership.Change) (Entry, error) {
	if err := Validate(c); err != nil {
		return Entry{}, err
	}
	b, err := json.Marshal(Message{V: Version1, Change: c})
	if err != nil {
		return Entry{}, fmt.Errorf("encode change %s: %w", c.EventUUID, err)
	}
	return Entry{Body: sqsBody(string(b)), GroupID: GroupID(c), DedupID: DedupID(c)}, nil
}

// RetryEntry is the single-change (v1) entry the sync worker re-enqueues for a change that failed
// on its own (a user not provisioned in AWS yet, a 4xx naming the user). It goes to a message
// group of its own, [IsolatedGroupID], so while it waits and retries it never holds back the
// other changes of its Okta group: SQS FIFO delivers no message of a group while one of its
// messages is in flight. Its deduplication id differs from the change's own: when the pack held
// only this change its id is the change's id, and SQS would drop the retry as a duplicate of the
// pack for 5 minutes. It is stable, so a pack processed twice re-enqueues its failures once.
func RetryEntry(c membership.Change) (Entry, error) {
	e, err := Encode(c)
	if err != nil {
		return Entry{}, err
	}
	e.GroupID = IsolatedGroupID(c)
	e.DedupID = sqsID(DedupID(c) + "/retry")
	return e, nil
}

// isolatedPrefix starts the message group id of an isolated change; Okta ids never contain '/'.
const isolatedPrefix = "retry/"

// IsolatedGroupID is the message group of an isolated change: one per (Okta group, user), so
// retries of one user's changes to a group stay in order among themselves. Ordering against
// the group's other changes is the ordering ledger's job (newest `published` wins), as it is
// for every change.
func IsolatedGroupID(c membership.Change) string {
	id := GroupID(c) + "/" + c.UserID
	if len(isolatedPrefix)+len(id) > maxIDLen || !sqsIDChars(id) {
		sum := sha256.Sum256([]byte(id))
		id = hex.EncodeToString(sum[:])
	}
	return isolatedPrefix + id
}

// Isolated reports whether a message group id is one of [IsolatedGroupID]'s.
func Isolated(groupID string) bool { return strings.HasPrefix(groupID, isolatedPrefix) }

// EncodeBatch packs the changes of one Okta delivery into v2 entries: one per MessageGroupId (an
// Okta group; a user lifecycle change's "user:<id>"), cut into chunks of at most MaxPackChanges
// changes and MaxPackBytes. Changes with the same deduplication id are packed once. Within a
// group the changes are ordered by deduplication id, so a redelivery of the same events, in any
// order, yields the same entries and SQS deduplicates them; the worker orders changes by their
// published time, not by position. Groups keep the order of their first change. An invalid
// change fails the call.
func EncodeBatch(changes []membership.Change) ([]Entry, error) {
	type item struct {
		dedup string
		json  []byte
	}
	var order []string
	groups := map[string][]item{}
	seen := make(map[string]bool, len(changes))
	for i, c := range changes {
		if err := Validate(c); err != nil {
			return nil, fmt.Errorf("change %d (event %s): %w", i, c.EventUUID, err)
		}
		id := DedupID(c)
		if seen[id] {
			continue
		}
		seen[id] = true
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode change %d (event %s): %w", i, c.EventUUID, err)
		}
		g := GroupID(c)
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], item{dedup: id, json: []byte(sqsBody(string(b)))})
	}
	var out []Entry
	for _, g := range order {
		items := groups[g]
		slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.dedup, b.dedup) })
		var (
			chunk []item
			size  int
		)
		flush := func() {
			if len(chunk) == 0 {
				return
			}
			var body bytes.Buffer
			body.WriteString(`{"v":2,"changes":[`)
			ids := make([]string, len(chunk))
			for i, it := range chunk {
				if i > 0 {
					body.WriteByte(',')
				}
				body.Write(it.json)
				ids[i] = it.dedup
			}
			body.WriteString(`]}`)
			out = append(out, Entry{Body: body.String(), GroupID: g, DedupID: PackDedupID(ids)})
			chunk, size = nil, 0
		}
		for _, it := range items {
			// A change larger than the cap on its own still gets a message of its own.
			if len(chunk) == MaxPackChanges || (len(chunk) > 0 && size+len(it.json)+1 > MaxPackBytes-packOverhead) {
				flush()
			}
			chunk = append(chunk, it)
			size += len(it.json) + 1
		}
		flush()
	}
	return out, nil
}

// packOverhead is the envelope around a pack's changes: {"v":2,"changes":[…]}.
const packOverhead = len(`{"v":2,"changes":[]}`)

// PackDedupID is the MessageDeduplicationId of a pack holding changes with the given per-change
// deduplication ids: the id itself for one change (so a one-change pack and the v1 message of the
// same change deduplicate each other during a deploy), else the SHA-256 in hex of the sorted ids
// joined by newlines. An identical redelivery therefore gets the same id; a delivery that Okta
// amalgamated differently gets other packs, whose changes the worker's ledger recognises as
// applied. A hashed per-change id hashes an Okta uuid and ids, which never contain a newline,
// so the two hashed forms do not meet.
func PackDedupID(ids []string) string {
	if len(ids) == 1 {
		return ids[0]
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:])
}

// Decode parses a message body of any supported version into its changes (one for v1, 1..N
// for v2). Unknown fields are tolerated (additive changes need no version bump); an unknown
// version, an incomplete change or a pack mixing message groups is an error.
func Decode(body string) ([]membership.Change, error) {
	// The payload fields are decoded once the version is known: a field another version uses
	// for something else is then just an unknown field.
	var m struct {
		V       *int            `json:"v"`
		Change  json.RawMessage `json:"change"`
		Changes json.RawMessage `json:"changes"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if m.V == nil {
		return nil, fmt.Errorf("%w: no version", ErrInvalidMessage)
	}
	switch *m.V {
	case Version1:
		var c *membership.Change
		if err := json.Unmarshal(orNull(m.Change), &c); err != nil {
			return nil, fmt.Errorf("%w: change: %v", ErrInvalidMessage, err)
		}
		if c == nil {
			return nil, fmt.Errorf("%w: no change", ErrInvalidMessage)
		}
		if err := Validate(*c); err != nil {
			return nil, err
		}
		return []membership.Change{*c}, nil
	case Version2:
		var cs []membership.Change
		if err := json.Unmarshal(orNull(m.Changes), &cs); err != nil {
			return nil, fmt.Errorf("%w: changes: %v", ErrInvalidMessage, err)
		}
		if len(cs) == 0 {
			return nil, fmt.Errorf("%w: no changes", ErrInvalidMessage)
		}
		for i, c := range cs {
			if err := Validate(c); err != nil {
				return nil, fmt.Errorf("change %d: %w", i, err)
			}
			// The queue keeps one writer per message group; a pack spanning groups would let two
			// workers write one group at once.
			if GroupID(c) != GroupID(cs[0]) {
				return nil, fmt.Errorf("%w: pack mixes message groups %q and %q", ErrInvalidMessage, GroupID(cs[0]), GroupID(c))
			}
		}
		return cs, nil
	default:
		return nil, fmt.Errorf("%w: %d (this build reads %d and %d)", ErrUnsupportedVersion, *m.V, Version1, Version2)
	}
}

// orNull stands in JSON null for an absent field.
func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// GroupID is the MessageGroupId of c: the Okta group id, so one worker at a time handles a
// group. A user lifecycle change (deactivate, reactivate, suspend, unsuspend) has no group; the
// changes of one user share a group of their own, "user:<id>", so one worker at a time handles a
// user's lifecycle. Their order is still decided by `published`: the worker applies a lifecycle
// change as membership changes of the user's groups at the event's time, through the ordering
// ledger, so a redelivered or late one cannot undo a newer change.
func GroupID(c membership.Change) string {
	if c.Kind.User() {
		return sqsID("user:" + c.UserID)
	}
	return sqsID(c.GroupID)
}

// DedupID is the MessageDeduplicationId of c. Okta redelivers an event with the same uuid; the
// kind, group and user keep apart the several changes one event may yield.
func DedupID(c membership.Change) string {
	return sqsID(c.EventUUID + "/" + string(c.Kind) + "/" + c.GroupID + "/" + c.UserID)
}

// sqsID returns s if SQS accepts it as a group or deduplication id (at most 128 characters of
// alphanumerics and ASCII punctuation), else its SHA-256 in hex: still deterministic, so
// redeliveries and group ordering keep working. An unhashed DedupID always contains '/', a hash
// never, so the two forms cannot collide.
func sqsID(s string) string {
	if s != "" && len(s) <= maxIDLen && sqsIDChars(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sqsIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		// '!' (0x21) to '~' (0x7E) is exactly alphanumerics plus punctuation.
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// sqsBody escapes the two noncharacters U+FFFE and U+FFFF, which encoding/json emits raw but
// SQS refuses in a body. They can only occur inside JSON strings, where \u escapes are valid.
func sqsBody(b string) string {
	if !strings.ContainsAny(b, "\uFFFE\uFFFF") {
		return b
	}
	return strings.NewReplacer("\uFFFE", `\ufffe`, "\uFFFF", `\uffff`).Replace(b)
}
