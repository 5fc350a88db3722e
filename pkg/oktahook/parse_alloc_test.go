package oktahook

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// atLimit is the body size the hook accepts by default (MAX_BODY_BYTES, 6 MiB: more than Lambda
// can pass to it).
const atLimit = 6 << 20

const deliveryHead = `{"eventType":"com.okta.event_hook","data":{"events":[`

// emptyEventsBody is the worst amplification the hostile-input review found: n bytes of "{}"
// items, each of which used to be decoded into a 176-byte LogEvent before any was validated.
func emptyEventsBody(n int) []byte {
	tail := `{}]}}`
	return []byte(deliveryHead + strings.Repeat(`{},`, (n-len(deliveryHead)-len(tail))/3) + tail)
}

// emptyTargetsBody is one valid event whose target array fills n bytes with empty objects.
func emptyTargetsBody(n int) []byte {
	head := deliveryHead + `{"uuid":"a","published":"2026-11-25T10:15:30Z","eventType":"group.user_membership.add","target":[`
	tail := `{}]}]}}`
	return []byte(head + strings.Repeat(`{},`, (n-len(head)-len(tail))/3) + tail)
}

// minimalEvent is the smallest event Parse accepts (49 bytes), numbered so uuids differ.
func minimalEvent(i int) string {
	return fmt.Sprintf(`{"uuid":"%d","published":"2026-11-25T10:15:30Z"}`, i)
}

// minimalEventsBody is a delivery of n minimal valid events.
func minimalEventsBody(n int) []byte {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = minimalEvent(i)
	}
	return []byte(deliveryHead + strings.Join(evs, ",") + `]}}`)
}

// allocatedBytes is what one call of f allocates on the heap, averaged over runs calls. Only
// bytes are counted, never time, so the figure does not depend on the machine's load.
func allocatedBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// A 1 MiB body of empty events used to allocate ~330 MB (the hook Lambda has 256 MB) before the
// first event was found invalid. Events are now checked one by one and Parse stops at the first,
// and data.events is not copied, so it allocates a small fraction of the body.
func TestParseEmptyEventsAllocationBounded(t *testing.T) {
	body := emptyEventsBody(atLimit)
	var err error
	got := allocatedBytes(3, func() { _, err = Parse(body) })
	if !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), "data.events[0]: uuid missing") {
		t.Fatalf("Parse error %v, want wrong shape: data.events[0]: uuid missing", err)
	}
	if limit := uint64(len(body) / 4); got > limit {
		t.Errorf("Parse of %d bytes of empty events allocates %d bytes, want at most %d", len(body), got, limit)
	}
	t.Logf("Parse of %d bytes of empty events allocates %d bytes", len(body), got)
}

// One valid event with a 1 MiB target list used to allocate ~140 MB while encoding/json grew the
// slice; the list is now allocated once at its final size (64 bytes per target), and only after
// its targets were counted against MaxTargets: at 6 MiB, 2 million "{}" targets would be 134 MB.
// What is left is json.Decoder buffering the one event (doubling up to the body's size).
func TestParseEmptyTargetsAllocationBounded(t *testing.T) {
	body := emptyTargetsBody(atLimit)
	var err error
	got := allocatedBytes(3, func() { _, err = Parse(body) })
	if !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), "data.events[0]: more than 50000 targets in one delivery") {
		t.Fatalf("Parse error %v, want wrong shape: data.events[0]: more than 50000 targets", err)
	}
	if limit := uint64(3 * len(body)); got > limit {
		t.Errorf("Parse of %d bytes of empty targets allocates %d bytes, want at most %d", len(body), got, limit)
	}
	t.Logf("Parse of %d bytes of empty targets allocates %d bytes", len(body), got)
}

// eventWithTargets is a membership add of users users and groups groups (all AWS_ groups).
func eventWithTargets(uuid string, users, groups int) string {
	ts := make([]string, 0, users+groups)
	for i := range users {
		ts = append(ts, fmt.Sprintf(`{"id":"00u%d","type":"User","alternateId":"u%d@example.com"}`, i, i))
	}
	for i := range groups {
		ts = append(ts, fmt.Sprintf(`{"id":"00g%d","type":"UserGroup","alternateId":"unknown","displayName":"AWS_%d"}`, i, i))
	}
	return `{"uuid":"` + uuid + `","published":"2026-11-25T10:15:30Z","eventType":"group.user_membership.add",` +
		`"outcome":{"result":"SUCCESS"},"target":[` + strings.Join(ts, ",") + `]}`
}

// emptyTargetsEvent is a valid event with n empty targets.
func emptyTargetsEvent(uuid string, n int) string {
	ts := strings.TrimSuffix(strings.Repeat(`{},`, n), ",")
	return `{"uuid":"` + uuid + `","published":"2026-11-25T10:15:30Z","eventType":"group.user_membership.add","target":[` + ts + `]}`
}

// MaxTargets counts the targets of all events of a delivery, and every target counts, whatever
// its type; a delivery at the cap is decoded whole.
func TestParseTargetsCap(t *testing.T) {
	at := deliveryHead + emptyTargetsEvent("a", MaxTargets/2) + `,` + emptyTargetsEvent("b", MaxTargets-MaxTargets/2) + `]}}`
	env, err := Parse([]byte(at))
	if err != nil {
		t.Fatalf("Parse of %d targets: %v", MaxTargets, err)
	}
	if n := len(env.Data.Events[0].Target) + len(env.Data.Events[1].Target); n != MaxTargets {
		t.Fatalf("%d targets decoded, want %d", n, MaxTargets)
	}
	over := deliveryHead + emptyTargetsEvent("a", MaxTargets/2) + `,` + emptyTargetsEvent("b", MaxTargets-MaxTargets/2+1) + `]}}`
	if _, err := Parse([]byte(over)); !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), "data.events[1]: more than 50000 targets in one delivery") {
		t.Fatalf("Parse of %d targets: error %v, want wrong shape naming the event that went over", MaxTargets+1, err)
	}
}

// MaxChanges bounds the (user, group) pairs of a delivery: one event of many users and groups
// cannot make Expand build the product.
func TestParseChangesCap(t *testing.T) {
	// 140 × 140 = 19,600 pairs, plus 400 one-change events: exactly MaxChanges.
	evs := []string{eventWithTargets("big", 140, 140)}
	for i := range MaxChanges - 140*140 {
		evs = append(evs, eventWithTargets(fmt.Sprint(i), 1, 1))
	}
	env, err := Parse([]byte(deliveryHead + strings.Join(evs, ",") + `]}}`))
	if err != nil {
		t.Fatalf("Parse of %d possible changes: %v", MaxChanges, err)
	}
	if n := len(Expand(env, func(string) bool { return true }).Changes); n != MaxChanges {
		t.Fatalf("Expand made %d changes, want %d", n, MaxChanges)
	}
	evs = append(evs, minimalEvent(99999)) // an event without targets still counts as one
	_, err = Parse([]byte(deliveryHead + strings.Join(evs, ",") + `]}}`))
	if !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), fmt.Sprintf("data.events[%d]: more than 20000 changes in one delivery", len(evs)-1)) {
		t.Fatalf("Parse of %d possible changes: error %v, want wrong shape", MaxChanges+1, err)
	}
	// The pairs of one hostile event, refused before Expand could allocate them.
	_, err = Parse([]byte(deliveryHead + eventWithTargets("product", 5000, 5000) + `]}}`))
	if !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), "data.events[0]: more than 20000 changes") {
		t.Fatalf("Parse of 5,000 users × 5,000 groups: error %v, want wrong shape", err)
	}
}

// Decoding event by event (and targets at their final size) yields what decoding the whole
// envelope in one json.Unmarshal did, field spellings and duplicate keys included.
func TestParseDecodesLikeUnmarshal(t *testing.T) {
	bodies := []string{
		oktaDelivery,
		deliveryHead + `]}}`,
		deliveryHead + minimalEvent(1) + `,` + minimalEvent(2) + `]}}`,
		deliveryHead + `{"UUID":"a","PUBLISHED":"2026-11-25T10:15:30+02:00","TARGET":[{"ID":"00u1","Type":"User"}],"target":[{"id":"00g1","type":"UserGroup","displayName":"AWS_A"},{}]}]}}`,
		deliveryHead + `{"uuid":"a","published":"2026-11-25T10:15:30Z","target":null,"actor":{"id":"00u9"},"outcome":{"result":"SUCCESS"}}]}}`,
		deliveryHead + `{"uuid":"a","published":"2026-11-25T10:15:30Z","target":[]}]},"data":{"x":1}}`,
		string(emptyTargetsBody(4 << 10)),
	}
	for i, body := range bodies {
		got, err := Parse([]byte(body))
		if err != nil {
			t.Fatalf("body %d: Parse: %v", i, err)
		}
		var want Envelope
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("body %d: Unmarshal: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body %d: Parse gave\n %+v\nUnmarshal gave\n %+v", i, got, want)
		}
	}
}

// Type errors name the JSON path and JSON kinds, not this package's Go types.
func TestParseTypeErrorsNameJSONPaths(t *testing.T) {
	ev := func(fields string) string {
		return deliveryHead + `{"uuid":"a","published":"2026-11-25T10:15:30Z",` + fields + `}]}}`
	}
	tests := []struct{ body, want string }{
		{`[]`, "body: cannot unmarshal array into object"},
		{`{"eventType":7}`, "eventType: cannot unmarshal number into string"},
		{`{"eventType":"com.okta.event_hook","eventId":true,"data":{"events":[]}}`, "eventId: cannot unmarshal bool into string"},
		{`{"eventType":"com.okta.event_hook","data":[]}`, "data: cannot unmarshal array into object"},
		{`{"eventType":"com.okta.event_hook","data":{"events":{}}}`, "data.events: cannot unmarshal object into array"},
		{deliveryHead + `"x"]}}`, "data.events[0]: cannot unmarshal string into object"},
		{deliveryHead + minimalEvent(0) + `,{"uuid":["a"]}]}}`, "data.events[1].uuid: cannot unmarshal array into string"},
		{ev(`"outcome":{"result":1}`), "data.events[0].outcome.result: cannot unmarshal number into string"},
		{ev(`"actor":[]`), "data.events[0].actor: cannot unmarshal array into object"},
		{ev(`"target":{}`), "data.events[0].target: cannot unmarshal object into array"},
		{ev(`"target":[{},1]`), "data.events[0].target: cannot unmarshal number into object"},
		{ev(`"target":[{"id":1}]`), "data.events[0].target.id: cannot unmarshal number into string"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.body))
		if !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) = %v, want wrong shape: %s", tt.body, err, tt.want)
			continue
		}
		for _, goName := range []string{"Go ", "oktahook", "wire", "Envelope", "LogEvent", "Target"} {
			if strings.Contains(err.Error(), goName) {
				t.Errorf("Parse(%s) error %q names Go type %q", tt.body, err, goName)
			}
		}
	}
}

func TestCountElements(t *testing.T) {
	tests := []struct {
		array string
		want  int
	}{
		{`[]`, 0},
		{`[ ]`, 0},
		{" [\n\t] ", 0},
		{`[{}]`, 1},
		{`[{},{},{}]`, 3},
		{`[null]`, 1},
		{`[1, 2 ,3]`, 3},
		{`[[],[[]],{"a":[1,2,{"b":[3,4]}]}]`, 3},
		{`["a,b","c]","d\"],[\"","\\",""]`, 5},
		{`[{"id":"00u1","type":"User"},{"id":"00g1","type":"UserGroup","displayName":"AWS_[x],{y}"}]`, 2},
	}
	for _, tt := range tests {
		if got := countElements([]byte(tt.array)); got != tt.want {
			t.Errorf("countElements(%s) = %d, want %d", tt.array, got, tt.want)
		}
	}
}

// FuzzCountElements: for every well-formed JSON array, countElements agrees with encoding/json.
// (A wrong count would only cost memory or a regrowth, never a wrong decode, but should not happen.)
func FuzzCountElements(f *testing.F) {
	for _, s := range []string{`[]`, `[{},{}]`, `["a,b",[1,2],{"c":"]"}]`, `["\\\"",null,true,-1.5e3]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var elems []json.RawMessage
		if !json.Valid(b) || json.Unmarshal(b, &elems) != nil {
			return
		}
		if got := countElements(b); got != len(elems) {
			t.Fatalf("countElements(%q) = %d, want %d", b, got, len(elems))
		}
	})
}

// The events cap bounds what a body of many tiny valid events can make Parse keep.
func TestParseMinimalEventsAllocationBounded(t *testing.T) {
	body := minimalEventsBody(atLimit / (len(minimalEvent(99999)) + 1)) // ~128k events
	var err error
	got := allocatedBytes(3, func() { _, err = Parse(body) })
	if !errors.Is(err, ErrWrongShape) || !strings.Contains(err.Error(), "more than 10000 events") {
		t.Fatalf("Parse error %v, want wrong shape: more than 10000 events", err)
	}
	if limit := uint64(16 << 20); got > limit {
		t.Errorf("Parse of %d bytes of minimal events allocates %d bytes, want at most %d", len(body), got, limit)
	}
	t.Logf("Parse of %d bytes of minimal events allocates %d bytes", len(body), got)
}

func TestParseEventsCap(t *testing.T) {
	env, err := Parse(minimalEventsBody(MaxEvents))
	if err != nil {
		t.Fatalf("Parse of %d events: %v", MaxEvents, err)
	}
	if len(env.Data.Events) != MaxEvents || env.Data.Events[MaxEvents-1].UUID != fmt.Sprint(MaxEvents-1) {
		t.Fatalf("got %d events", len(env.Data.Events))
	}

	_, err = Parse(minimalEventsBody(MaxEvents + 1))
	if !errors.Is(err, ErrWrongShape) || errors.Is(err, ErrMalformed) {
		t.Fatalf("Parse of %d events: error %v, want wrong shape", MaxEvents+1, err)
	}
	if want := "data.events: more than 10000 events in one delivery"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

// Events are validated in order and Parse reports the first invalid one, whatever follows it
// (even a syntax error later in the body is found first: the whole body is checked up front).
func TestParseStopsAtFirstInvalidEvent(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
		msg        string
	}{
		{"invalid event before a mistyped one", deliveryHead + minimalEvent(0) + `,{"uuid":"b"},{"uuid":7}]}}`, ErrWrongShape, "data.events[1]: published missing"},
		{"mistyped event before an invalid one", deliveryHead + minimalEvent(0) + `,{"uuid":7},{"uuid":"b"}]}}`, ErrWrongShape, "data.events[1].uuid: cannot unmarshal number into string"},
		{"invalid event before more events than the cap", string(emptyEventsBody(64 << 10)), ErrWrongShape, "data.events[0]: uuid missing"},
		{"syntax error after an invalid event", deliveryHead + `{},{"uuid":]}}`, ErrMalformed, "invalid character ']'"},
		{"wrong envelope eventType before invalid events", `{"eventType":"x","data":{"events":[{}]}}`, ErrWrongShape, `eventType "x"`},
		{"data not an object", `{"eventType":"com.okta.event_hook","data":"x"}`, ErrWrongShape, "wrong shape: data: cannot unmarshal string into object"},
		{"events a number", `{"eventType":"com.okta.event_hook","data":{"events":1}}`, ErrWrongShape, "data.events: cannot unmarshal number into array"},
		{"events true", `{"eventType":"com.okta.event_hook","data":{"events":true}}`, ErrWrongShape, "data.events: cannot unmarshal bool into array"},
		{"duplicate events key: the last counts", `{"eventType":"com.okta.event_hook","data":{"events":[` + minimalEvent(0) + `],"events":null}}`, ErrWrongShape, "data.events missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Parse([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if env.Data.Events != nil || env.EventType != "" {
				t.Errorf("error with a non-zero envelope %+v", env)
			}
		})
	}
}

// BenchmarkParseHostile: the most expensive bodies of the default size limit (6 MiB, more than
// Lambda passes). -benchmem's B/op is the figure to watch (the hook Lambda has 512 MB).
func BenchmarkParseHostile(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"empty-events-6MiB", emptyEventsBody(atLimit)},
		{"empty-targets-6MiB", emptyTargetsBody(atLimit)},
		{"minimal-events-6MiB", minimalEventsBody(atLimit / (len(minimalEvent(99999)) + 1))},
		{"targets-at-cap", []byte(deliveryHead + emptyTargetsEvent("a", MaxTargets/2) + `,` + emptyTargetsEvent("b", MaxTargets/2) + `]}}`)},
		{"minimal-events-at-cap", minimalEventsBody(MaxEvents)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				_, _ = Parse(c.body)
			}
		})
	}
}
