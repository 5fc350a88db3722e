// Package oktahook implements the Okta event hook protocol: the one-time verification challenge,
// the shared-secret header check, the delivery envelope with its System Log events, and the
// expansion of a delivery into membership changes. It does no I/O.
package oktahook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
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

// Caps on what one delivery may carry. Okta documents no batch size, so the caps are set where no
// delivery that can reach the hook is refused: Lambda passes at most 6 MiB of request (the Invoke
// API's "6 MB" for synchronous calls, enforced as "Request must be smaller than 6291456 bytes"),
// the API Gateway event around the body included. They bound what Parse and Expand keep in memory
// whatever MAX_BODY_BYTES is set to; more than this can only be a few bytes per item, which is
// not Okta. A delivery over a cap is a wrong shape (400).
const (
	// MaxEvents: a real System Log event is 1.1-2.2 kB of JSON even without whitespace (actor,
	// client, request, target…; see events/), so 6 MiB holds fewer than 6,000.
	MaxEvents = 10_000
	// MaxTargets counts the targets of all events together. An event names what it acted on: a
	// user and a group for a membership change, rarely more than four for any event type, each
	// 120-130 bytes of JSON as Okta writes them (id, type, alternateId, displayName,
	// detailEntry). Without the cap a 6 MiB body of 2-byte "{}" targets would make 2 million
	// 64-byte Targets (134 MB).
	MaxTargets = 5 * MaxEvents
	// MaxChanges bounds the changes the events can expand to: a membership event yields one per
	// (User, UserGroup) target pair, so targets alone would let one event of 25,000 users and
	// 25,000 groups ask for 625 million. Okta's events yield one change each.
	MaxChanges = 2 * MaxEvents
)

// wireEnvelope is Envelope with data.events left undecoded, so that Parse can decode and check
// the events one at a time. Its Data field hides the embedded Envelope.Data from encoding/json.
type wireEnvelope struct {
	Envelope
	Data wireData `json:"data"`
}

type wireData struct {
	Events rawSpan `json:"events"`
}

// rawSpan is json.RawMessage without the copy: it keeps the slice of the body that
// json.Unmarshal hands to UnmarshalJSON, which is valid while the body is. Parse decodes it
// before it returns and keeps nothing of it, so a 6 MiB body is not held twice.
type rawSpan []byte

func (r *rawSpan) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}

// Parse decodes and validates a delivery body. Errors wrap ErrMalformed (not UTF-8 JSON) or
// ErrWrongShape (JSON that is not a delivery: wrong envelope eventType, no data.events array, an
// event without uuid, or without a published time that is representable in UTC, or more than
// MaxEvents events, MaxTargets targets or MaxChanges possible changes).
//
// Events are decoded one at a time and Parse stops at the first invalid one: decoding a whole
// array before validating let a 1 MiB body of 349k "{}" allocate over 300 MB (a LogEvent is
// 176 bytes, and the slice grows by copying), more than the hook Lambda's memory.
func Parse(body []byte) (Envelope, error) {
	// encoding/json silently replaces invalid UTF-8 with U+FFFD, which would turn a corrupted
	// login or group name into a different, valid-looking one.
	if len(bytes.TrimSpace(body)) == 0 {
		return Envelope{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if !utf8.Valid(body) {
		return Envelope{}, fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	// Unmarshal checks the syntax of the whole body before it decodes anything, so every
	// syntax error is found here, and the events below are known to be well-formed JSON.
	var w wireEnvelope
	if err := json.Unmarshal(body, &w); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return Envelope{}, fmt.Errorf("%w: %v (offset %d)", ErrMalformed, err, syn.Offset)
		}
		return Envelope{}, fmt.Errorf("%w: %v", ErrWrongShape, describe("", err))
	}
	env := w.Envelope
	if env.EventType != EnvelopeEventType {
		return Envelope{}, fmt.Errorf("%w: eventType %q, want %q", ErrWrongShape, truncate(env.EventType), EnvelopeEventType)
	}
	evs, err := decodeEvents(w.Data.Events)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrWrongShape, err)
	}
	env.Data.Events = evs
	return env, nil
}

// decodeEvents decodes and validates data.events, one event at a time, stopping at the first
// invalid one. raw is well-formed JSON (or empty when the field was absent).
func decodeEvents(raw []byte) ([]LogEvent, error) {
	raw = bytes.TrimSpace(raw)
	// Absent or null is not a delivery; [] is a (pointless but valid) one.
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("data.events missing")
	}
	if raw[0] != '[' {
		// Not an array: let encoding/json say what it is. It skips the value without decoding it.
		var evs []LogEvent
		if err := json.Unmarshal(raw, &evs); err != nil {
			return nil, describe("data.events", err)
		}
		return nil, errors.New("data.events is not an array")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, fmt.Errorf("data.events: %w", err)
	}
	evs := []LogEvent{}
	targetsLeft, changes := MaxTargets, 0
	var w wireEvent // reused: one heap allocation, not one per event
	for i := 0; dec.More(); i++ {
		if i == MaxEvents {
			return nil, fmt.Errorf("data.events: more than %d events in one delivery", MaxEvents)
		}
		w = wireEvent{Target: targetList{left: &targetsLeft}}
		if err := dec.Decode(&w); err != nil {
			return nil, describe(fmt.Sprintf("data.events[%d]", i), err)
		}
		ev := w.LogEvent
		ev.Target = w.Target.ts
		if err := ev.validate(); err != nil {
			return nil, fmt.Errorf("data.events[%d]: %w", i, err)
		}
		if changes += fanOut(ev.Target); changes > MaxChanges {
			return nil, fmt.Errorf("data.events[%d]: more than %d changes in one delivery", i, MaxChanges)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// fanOut is at least the number of changes Expand can make of an event with these targets: one
// per (User, UserGroup) pair, per User, or per UserGroup, and at least 1 so that every event counts.
func fanOut(ts []Target) int {
	users, groups := 0, 0
	for _, t := range ts {
		switch t.Type {
		case TargetUser:
			users++
		case TargetUserGroup:
			groups++
		}
	}
	return max(users, 1) * max(groups, 1)
}

// wireEvent is LogEvent with a target list that is allocated at its final size. Decoded as a
// plain slice, an event of 349k "{}" targets (a 1 MiB body) allocated ~140 MB: encoding/json
// grows the slice one element at a time, by copying, and a Target is 64 bytes.
type wireEvent struct {
	LogEvent
	Target targetList `json:"target"`
}

// targetList decodes an event's targets, counting them against the delivery's MaxTargets
// before it allocates them.
type targetList struct {
	ts   []Target
	left *int // targets the delivery may still carry; nil: no cap
}

func (l *targetList) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '[' {
		// null, or not an array: encoding/json decides (nil, or its error).
		return json.Unmarshal(b, &l.ts)
	}
	n := countElements(b)
	if l.left != nil {
		if n > *l.left {
			return fmt.Errorf("more than %d targets in one delivery", MaxTargets)
		}
		*l.left -= n
	}
	// encoding/json fills a slice's spare capacity before it grows it.
	ts := make([]Target, 0, n)
	if err := json.Unmarshal(b, &ts); err != nil {
		return err
	}
	l.ts = ts
	return nil
}

// countElements counts the elements of a well-formed JSON array (as encoding/json hands it to
// an UnmarshalJSON method) without decoding them. The count is exact (FuzzCountElements); it
// sizes the target list and is checked against MaxTargets before anything is allocated.
func countElements(array []byte) int {
	depth, commas, nonEmpty := 0, 0, false
	inString, escaped := false, false
	for _, c := range array {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case c == '[' || c == '{':
			nonEmpty = nonEmpty || depth == 1
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',':
			if depth == 1 {
				commas++
			}
		default: // a string, number or literal
			nonEmpty = nonEmpty || depth == 1
			inString = c == '"'
		}
	}
	if !nonEmpty {
		return 0
	}
	return commas + 1
}

// describe words a decoding error by the delivery's JSON path and JSON kinds: encoding/json's
// own text names this package's Go types (wireEnvelope.Envelope.eventType), which mean nothing
// to whoever reads the 400. path is where the decoded value sits ("" for the body).
func describe(path string, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		if path == "" {
			return err
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	// Fields promoted from the embedded Envelope and LogEvent carry the embedding's name.
	field := strings.TrimPrefix(strings.TrimPrefix(te.Field, "Envelope."), "LogEvent.")
	switch {
	case field != "" && path != "":
		path += "." + field
	case field != "":
		path = field
	case path == "":
		path = "body"
	}
	return fmt.Errorf("%s: cannot unmarshal %s into %s", path, te.Value, jsonKind(te.Type))
}

// jsonKind is the JSON kind a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}

func (ev *LogEvent) validate() error {
	if ev.UUID == "" {
		return errors.New("uuid missing")
	}
	if ev.Published.IsZero() {
		return errors.New("published missing")
	}
	// Changes carry published in UTC, and JSON times only have years 0000-9999: an offset that
	// moves the instant out of them (0000-01-01T00:00:00+01:00) would make the change
	// unencodable for the queue, a 500 for the whole delivery that Okta's retry cannot fix.
	if y := ev.Published.UTC().Year(); y < 0 || y > 9999 {
		return errors.New("published out of range in UTC")
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
