// Package oktahook implements the Okta event hook protocol: the one-time verification challenge,
// the shared-secret header check, the delivery envelope with its System Log events, and the
// expansion of a delivery into membership changes. It does no I/O.
package oktahook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// EnvelopeEventType is the eventType of every Okta event hook delivery envelope.
const EnvelopeEventType = "com.okta.event_hook"

// Errors returned (wrapped, with detail) by Parse. Both mean "answer 400": Okta never retries a
// 4xx, so they are kept for bodies that no retry could fix.
var (
	// ErrMalformed: the body is not valid UTF-8 JSON.
	ErrMalformed = errors.New("malformed JSON")
	// ErrWrongShape: valid JSON, but not an Okta event hook delivery.
	ErrWrongShape = errors.New("wrong shape")
)

// Envelope is one event hook delivery. Okta amalgamates several System Log events into one
// delivery, so Data.Events usually holds more than one. Unknown fields are ignored.
type Envelope struct {
	EventType          string `json:"eventType"`
	EventTypeVersion   string `json:"eventTypeVersion"`
	CloudEventsVersion string `json:"cloudEventsVersion"`
	Source             string `json:"source"`
	EventID            string `json:"eventId"`
	// EventTime is kept as Okta sent it: we never act on it, and a delivery must not be rejected
	// (and so lost, as Okta does not retry a 400) over a field we do not use.
	EventTime   string `json:"eventTime"`
	ContentType string `json:"contentType"`
	Data        Data   `json:"data"`
}

// Data holds the System Log events of a delivery.
type Data struct {
	Events []LogEvent `json:"events"`
}

// LogEvent is the part of an Okta System Log event that the sync uses.
type LogEvent struct {
	UUID string `json:"uuid"`
	// Published is when the event happened (RFC 3339, milliseconds). Ordering is decided by it.
	Published time.Time `json:"published"`
	EventType string    `json:"eventType"`
	Outcome   Outcome   `json:"outcome"`
	Actor     Actor     `json:"actor"`
	Target    []Target  `json:"target"`
}

// Outcome of a System Log event. Result is SUCCESS, FAILURE, SKIPPED, ALLOW, DENY, CHALLENGE or UNKNOWN.
type Outcome struct {
	Result string `json:"result"`
	Reason string `json:"reason"`
}

// Actor is who caused the event.
type Actor struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
	DisplayName string `json:"displayName"`
}

// Target is one object an event acted on. Targets are found by Type, never by position:
// a User has ID 00u… and AlternateID = login; a UserGroup has ID 00g…, DisplayName = group name
// and the literal AlternateID "unknown".
type Target struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
	DisplayName string `json:"displayName"`
}

// Target types used by the sync.
const (
	TargetUser      = "User"
	TargetUserGroup = "UserGroup"
)

// Parse decodes and validates a delivery body. Errors wrap ErrMalformed (not UTF-8 JSON) or
// ErrWrongShape (JSON that is not a delivery: wrong envelope eventType, no data.events array, an
// event without uuid, or without a published time that is representable in UTC).
func Parse(body []byte) (Envelope, error) {
	// encoding/json silently replaces invalid UTF-8 with U+FFFD, which would turn a corrupted
	// login or group name into a different, valid-looking one.
	if len(bytes.TrimSpace(body)) == 0 {
		return Envelope{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if !utf8.Valid(body) {
		return Envelope{}, fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return Envelope{}, fmt.Errorf("%w: %v (offset %d)", ErrMalformed, err, syn.Offset)
		}
		return Envelope{}, fmt.Errorf("%w: %v", ErrWrongShape, err)
	}
	if err := env.validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrWrongShape, err)
	}
	return env, nil
}

func (e *Envelope) validate() error {
	if e.EventType != EnvelopeEventType {
		return fmt.Errorf("eventType %q, want %q", truncate(e.EventType), EnvelopeEventType)
	}
	// A nil slice means data.events was absent or null; [] is a (pointless but valid) delivery.
	if e.Data.Events == nil {
		return errors.New("data.events missing")
	}
	for i := range e.Data.Events {
		ev := &e.Data.Events[i]
		if ev.UUID == "" {
			return fmt.Errorf("data.events[%d]: uuid missing", i)
		}
		if ev.Published.IsZero() {
			return fmt.Errorf("data.events[%d]: published missing", i)
		}
		// Changes carry published in UTC, and JSON times only have years 0000-9999: an offset
		// that moves the instant out of them (0000-01-01T00:00:00+01:00) would make the change
		// unencodable for the queue, a 500 for the whole delivery that Okta's retry cannot fix.
		if y := ev.Published.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("data.events[%d]: published out of range in UTC", i)
		}
	}
	return nil
}

// truncate keeps error messages short when a caller sends something huge.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
