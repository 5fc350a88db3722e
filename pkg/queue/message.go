// Package queue is the format of the messages on the FIFO queue between the hook and the sync
// worker (versioned JSON, one membership.Change per message) and the SQS client wrapper that
// sends them.
package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// Version of the message format. A reader rejects versions it does not know, so a newer hook
// never has its messages half-understood by an older worker during a deploy.
const Version = 1

// Message is the JSON body of one queue message.
type Message struct {
	V      int               `json:"v"`
	Change membership.Change `json:"change"`
}

// Entry is one message ready for SendMessage(Batch).
type Entry struct {
	Body    string
	GroupID string // MessageGroupId: one Okta group, so changes of a group are applied by one worker at a time
	DedupID string // MessageDeduplicationId: identical for Okta's redeliveries of the same event target
}

var (
	// ErrInvalidMessage: the body is not a well-formed message or its change is incomplete.
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
	case membership.KindUserDeactivate:
		if c.UserID == "" {
			missing = append(missing, "userId")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s change without %s", ErrInvalidMessage, c.Kind, strings.Join(missing, ", "))
	}
	return nil
}

// Encode turns a change into a queue entry.
func Encode(c membership.Change) (Entry, error) {
	if err := Validate(c); err != nil {
		return Entry{}, err
	}
	b, err := json.Marshal(Message{V: Version, Change: c})
	if err != nil {
		return Entry{}, fmt.Errorf("encode change %s: %w", c.EventUUID, err)
	}
	return Entry{Body: sqsBody(string(b)), GroupID: GroupID(c), DedupID: DedupID(c)}, nil
}

// Decode parses a message body. Unknown fields are tolerated (additive changes need no version
// bump); an unknown version or an incomplete change is an error.
func Decode(body string) (membership.Change, error) {
	var m struct {
		V      *int               `json:"v"`
		Change *membership.Change `json:"change"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return membership.Change{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	switch {
	case m.V == nil:
		return membership.Change{}, fmt.Errorf("%w: no version", ErrInvalidMessage)
	case *m.V != Version:
		return membership.Change{}, fmt.Errorf("%w: %d (this build reads %d)", ErrUnsupportedVersion, *m.V, Version)
	case m.Change == nil:
		return membership.Change{}, fmt.Errorf("%w: no change", ErrInvalidMessage)
	}
	if err := Validate(*m.Change); err != nil {
		return membership.Change{}, err
	}
	return *m.Change, nil
}

// GroupID is the MessageGroupId of c: the Okta group id, so one worker at a time handles a
// group. A user deactivation has no group; it gets a group of its own per user.
func GroupID(c membership.Change) string {
	if c.Kind == membership.KindUserDeactivate {
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
