package oktahook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// oktaDelivery is shaped like a real Okta delivery: extra fields we do not model, nulls where
// Okta sends nulls, published with milliseconds.
const oktaDelivery = `{
  "eventType": "com.okta.event_hook",
  "eventTypeVersion": "1.0",
  "cloudEventsVersion": "0.1",
  "source": "https://example.okta.com/api/v1/eventHooks/who8vt36qfNpCGz9H1d7",
  "eventId": "f4a1e2a0-5a3b-4b0c-9a43-2a8f0b5c7d11",
  "data": {
    "events": [
      {
        "uuid": "1f3c6a2e-ca1d-11f0-9b1a-6d2f0c1a9e01",
        "published": "2026-11-25T10:15:30.123Z",
        "eventType": "group.user_membership.add",
        "version": "0",
        "displayMessage": "Add user to group membership",
        "severity": "INFO",
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"}, "zone": "null", "device": "Computer", "id": null, "ipAddress": "203.0.113.10", "geographicalContext": null},
        "device": null,
        "actor": {"id": "00uadmin1234567890x7", "type": "User", "alternateId": "admin@example.com", "displayName": "Ada Admin", "detailEntry": null},
        "outcome": {"result": "SUCCESS", "reason": null},
        "target": [
          {"id": "00u1a2b3c4d5e6f7g8h9", "type": "User", "alternateId": "jane.doe@example.com", "displayName": "Jane Doe", "detailEntry": null},
          {"id": "00g1engineers000000x7", "type": "UserGroup", "alternateId": "unknown", "displayName": "AWS_Engineers", "detailEntry": null}
        ],
        "transaction": {"type": "WEB", "id": "Y2x1c3RlcjEK", "detail": {}},
        "debugContext": {"debugData": {"requestUri": "/api/v1/groups/00g1engineers000000x7/users/00u1a2b3c4d5e6f7g8h9"}},
        "legacyEventType": "core.user_group_member.user_add",
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": "102abc"},
        "securityContext": {"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null},
        "insertionTimestamp": null
      }
    ]
  },
  "eventTime": "2026-11-25T10:15:31.456Z",
  "contentType": "application/json"
}`

func TestParseRealShape(t *testing.T) {
	env, err := Parse([]byte(oktaDelivery))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if env.EventID != "f4a1e2a0-5a3b-4b0c-9a43-2a8f0b5c7d11" || env.EventTypeVersion != "1.0" ||
		env.CloudEventsVersion != "0.1" || env.ContentType != "application/json" ||
		env.EventTime != "2026-11-25T10:15:31.456Z" || !strings.Contains(env.Source, "/eventHooks/") {
		t.Errorf("envelope fields not decoded: %+v", env)
	}
	if len(env.Data.Events) != 1 {
		t.Fatalf("events = %d, want 1", len(env.Data.Events))
	}
	ev := env.Data.Events[0]
	want := time.Date(2026, 11, 25, 10, 15, 30, 123e6, time.UTC)
	if !ev.Published.Equal(want) {
		t.Errorf("published = %v, want %v (milliseconds kept)", ev.Published, want)
	}
	if ev.Outcome.Result != "SUCCESS" || ev.Outcome.Reason != "" {
		t.Errorf("outcome = %+v", ev.Outcome)
	}
	if ev.Actor.AlternateID != "admin@example.com" || ev.Actor.Type != "User" {
		t.Errorf("actor = %+v", ev.Actor)
	}
	if len(ev.Target) != 2 || ev.Target[1].Type != TargetUserGroup || ev.Target[1].AlternateID != "unknown" ||
		ev.Target[1].DisplayName != "AWS_Engineers" || ev.Target[0].AlternateID != "jane.doe@example.com" {
		t.Errorf("targets = %+v", ev.Target)
	}
}

func TestParseErrors(t *testing.T) {
	event := func(fields string) string {
		return `{"eventType":"com.okta.event_hook","data":{"events":[` + fields + `]}}`
	}
	tests := []struct {
		name string
		body string
		want error
		msg  string // part of the error text
	}{
		{"empty", ``, ErrMalformed, "empty body"},
		{"whitespace", " \n\t", ErrMalformed, "empty body"},
		{"truncated", `{"eventType":"com.okta.event_hook","data":{"events":[`, ErrMalformed, "unexpected end"},
		{"not json", `eventType=com.okta.event_hook`, ErrMalformed, "invalid character"},
		{"trailing garbage", `{"eventType":"com.okta.event_hook","data":{"events":[]}} x`, ErrMalformed, "after top-level value"},
		{"two documents", `{"eventType":"com.okta.event_hook","data":{"events":[]}}{}`, ErrMalformed, "after top-level value"},
		{"invalid utf-8 in string", "{\"eventType\":\"com.okta.event_hook\",\"data\":{\"events\":[]},\"source\":\"\xff\xfe\"}", ErrMalformed, "UTF-8"},
		{"top-level array", `[{"eventType":"com.okta.event_hook"}]`, ErrWrongShape, "cannot unmarshal array"},
		{"top-level string", `"com.okta.event_hook"`, ErrWrongShape, "cannot unmarshal string"},
		{"top-level null", `null`, ErrWrongShape, "eventType"},
		{"empty object", `{}`, ErrWrongShape, `eventType ""`},
		{"wrong eventType", `{"eventType":"com.okta.inline_hook","data":{"events":[]}}`, ErrWrongShape, `eventType "com.okta.inline_hook"`},
		{"eventType not a string", `{"eventType":7,"data":{"events":[]}}`, ErrWrongShape, "cannot unmarshal number"},
		{"long wrong eventType is truncated", `{"eventType":"` + strings.Repeat("x", 500) + `"}`, ErrWrongShape, "…"},
		{"data missing", `{"eventType":"com.okta.event_hook"}`, ErrWrongShape, "data.events missing"},
		{"data null", `{"eventType":"com.okta.event_hook","data":null}`, ErrWrongShape, "data.events missing"},
		{"events missing", `{"eventType":"com.okta.event_hook","data":{}}`, ErrWrongShape, "data.events missing"},
		{"events null", `{"eventType":"com.okta.event_hook","data":{"events":null}}`, ErrWrongShape, "data.events missing"},
		{"events an object", `{"eventType":"com.okta.event_hook","data":{"events":{"uuid":"x"}}}`, ErrWrongShape, "cannot unmarshal object"},
		{"events a string", `{"eventType":"com.okta.event_hook","data":{"events":"[]"}}`, ErrWrongShape, "cannot unmarshal string"},
		{"event not an object", event(`42`), ErrWrongShape, "cannot unmarshal number"},
		{"event missing uuid", event(`{"published":"2026-11-25T10:15:30.123Z","eventType":"group.user_membership.add"}`), ErrWrongShape, "data.events[0]: uuid missing"},
		{"second event missing published", event(`{"uuid":"a","published":"2026-11-25T10:15:30.123Z"},{"uuid":"b"}`), ErrWrongShape, "data.events[1]: published missing"},
		{"published null", event(`{"uuid":"a","published":null}`), ErrWrongShape, "published missing"},
		{"published not RFC 3339", event(`{"uuid":"a","published":"25/11/2026 10:15"}`), ErrWrongShape, "parsing time"},
		{"published a number", event(`{"uuid":"a","published":1764065730123}`), ErrWrongShape, "Time"},
		{"target not an array", event(`{"uuid":"a","published":"2026-11-25T10:15:30.123Z","target":{"id":"00u1"}}`), ErrWrongShape, "cannot unmarshal object"},
		{"outcome a string", event(`{"uuid":"a","published":"2026-11-25T10:15:30.123Z","outcome":"SUCCESS"}`), ErrWrongShape, "cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %v", err, tt.want)
			}
			other := ErrMalformed
			if tt.want == ErrMalformed {
				other = ErrWrongShape
			}
			if errors.Is(err, other) {
				t.Errorf("error %q wraps both kinds", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		events int
	}{
		{"empty events array", `{"eventType":"com.okta.event_hook","data":{"events":[]}}`, 0},
		{"unknown fields everywhere", `{"eventType":"com.okta.event_hook","extra":{"a":[1,2]},"data":{"more":true,"events":[{"uuid":"a","published":"2026-11-25T10:15:30Z","new":{"x":null},"target":[{"id":"00u1","type":"User","detailEntry":{"k":"v"}}]}]}}`, 1},
		{"nulls for modelled fields", `{"eventType":"com.okta.event_hook","source":null,"eventTime":null,"data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30.123+01:00","eventType":null,"outcome":null,"actor":null,"target":null}]}}`, 1},
		{"non-standard eventTime is not our business", `{"eventType":"com.okta.event_hook","eventTime":"yesterday","data":{"events":[]}}`, 0},
		{"leading BOM-free whitespace", "\n  {\"eventType\":\"com.okta.event_hook\",\"data\":{\"events\":[]}}\n", 0},
		{"unicode names", `{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30.123Z","target":[{"type":"UserGroup","displayName":"AWS_Équipe_日本"}]}]}}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(env.Data.Events) != tt.events {
				t.Errorf("events = %d, want %d", len(env.Data.Events), tt.events)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(oktaDelivery))
	f.Add([]byte(`{"eventType":"com.okta.event_hook","data":{"events":[]}}`))
	f.Add([]byte(`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30.123Z","eventType":"user.lifecycle.deactivate","outcome":{"result":"SUCCESS"},"target":[{"id":"00u1","type":"User"},{"id":"00u2","type":"User"}]}]}}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongShape) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		res := Expand(env, func(string) bool { return true })
		if res.DroppedTotal()+countEvents(res) < len(env.Data.Events) {
			t.Fatalf("events unaccounted for: %d events, %d dropped, changes %d", len(env.Data.Events), res.DroppedTotal(), len(res.Changes))
		}
		for _, c := range res.Changes {
			if c.EventUUID == "" || c.Published.IsZero() || !c.Kind.Valid() {
				t.Fatalf("invalid change %+v", c)
			}
		}
	})
}

// countEvents is the number of distinct events that yielded changes.
func countEvents(r Result) int {
	seen := map[string]bool{}
	for _, c := range r.Changes {
		seen[c.EventUUID] = true
	}
	return len(seen)
}
