package queue

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

var published = time.Date(2026, 3, 4, 10, 20, 30, 123000000, time.UTC)

func add() membership.Change {
	return membership.Change{
		EventUUID: "9b0e7c2a-1d3f-11f0-8e2b-5b1c7f0e4a21",
		Published: published,
		Kind:      membership.KindAdd,
		UserID:    "00u1abcdEFGH2345ijk7",
		Login:     "ana@example.com",
		GroupID:   "00g1abcdEFGH2345ijk7",
		GroupName: "AWS_admins",
	}
}

func TestEncodeAdd(t *testing.T) {
	e, err := Encode(add())
	if err != nil {
		t.Fatal(err)
	}
	// The wire format is a contract between two separately deployed functions.
	wantBody := `{"v":1,"change":{"eventUuid":"9b0e7c2a-1d3f-11f0-8e2b-5b1c7f0e4a21","published":"2026-03-04T10:20:30.123Z","kind":"add","userId":"00u1abcdEFGH2345ijk7","login":"ana@example.com","groupId":"00g1abcdEFGH2345ijk7","groupName":"AWS_admins"}}`
	if e.Body != wantBody {
		t.Errorf("Body =\n%s\nwant\n%s", e.Body, wantBody)
	}
	if e.GroupID != "00g1abcdEFGH2345ijk7" {
		t.Errorf("GroupID = %q", e.GroupID)
	}
	if e.DedupID != "9b0e7c2a-1d3f-11f0-8e2b-5b1c7f0e4a21/add/00g1abcdEFGH2345ijk7/00u1abcdEFGH2345ijk7" {
		t.Errorf("DedupID = %q", e.DedupID)
	}
	c, err := Decode(e.Body)
	if err != nil {
		t.Fatal(err)
	}
	if c != add() {
		t.Errorf("round trip = %+v", c)
	}
}

func TestIDsPerKind(t *testing.T) {
	deact := membership.Change{EventUUID: "u1", Published: published, Kind: membership.KindUserDeactivate, UserID: "00uX"}
	rename := membership.Change{EventUUID: "u2", Published: published, Kind: membership.KindRename, GroupID: "00gR"}
	del := membership.Change{EventUUID: "u3", Published: published, Kind: membership.KindGroupDelete, GroupID: "00gD"}
	tests := []struct {
		c              membership.Change
		group, dedupID string
	}{
		{deact, "user:00uX", "u1/user_deactivate//00uX"},
		{rename, "00gR", "u2/rename/00gR/"},
		{del, "00gD", "u3/group_delete/00gD/"},
	}
	for _, tt := range tests {
		e, err := Encode(tt.c)
		if err != nil {
			t.Fatalf("%s: %v", tt.c.Kind, err)
		}
		if e.GroupID != tt.group || e.DedupID != tt.dedupID {
			t.Errorf("%s: group %q dedup %q, want %q %q", tt.c.Kind, e.GroupID, e.DedupID, tt.group, tt.dedupID)
		}
	}
}

// One event with several targets yields several changes; each must survive deduplication.
func TestDedupIDsDistinguishChangesOfOneEvent(t *testing.T) {
	a := add()
	r := a
	r.Kind = membership.KindRemove
	g2 := a
	g2.GroupID = "00g2"
	u2 := a
	u2.UserID = "00u2"
	ids := map[string]bool{}
	for _, c := range []membership.Change{a, r, g2, u2} {
		ids[DedupID(c)] = true
	}
	if len(ids) != 4 {
		t.Errorf("%d distinct dedup ids for 4 changes: %v", len(ids), ids)
	}
	if DedupID(a) != DedupID(add()) {
		t.Error("the same change (a redelivery) must give the same dedup id")
	}
}

func validSQSID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r)) {
			return false
		}
	}
	return true
}

func TestIDsHashedWhenSQSWouldRefuse(t *testing.T) {
	long := add()
	long.EventUUID = strings.Repeat("e", 120)
	odd := add()
	odd.GroupID = "00g group é"
	oddUser := membership.Change{EventUUID: "u", Published: published, Kind: membership.KindUserDeactivate, UserID: "a b"}
	for _, c := range []membership.Change{long, odd, oddUser} {
		e, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if !validSQSID(e.GroupID) || !validSQSID(e.DedupID) {
			t.Errorf("invalid SQS ids %q, %q", e.GroupID, e.DedupID)
		}
		if len(e.DedupID) != 64 && c.EventUUID != "u" {
			t.Errorf("DedupID %q is not a sha256 hex", e.DedupID)
		}
		// Deterministic, or redeliveries and per-group ordering would break.
		if e2, _ := Encode(c); e2 != e {
			t.Errorf("Encode not deterministic: %+v vs %+v", e, e2)
		}
	}
	if GroupID(odd) == GroupID(add()) {
		t.Error("different groups hashed to the same group id")
	}
	if e, _ := Encode(odd); e.GroupID != GroupID(odd) || len(e.GroupID) != 64 {
		t.Errorf("odd group id = %q", e.GroupID)
	}
	if validSQSID(DedupID(add())) != true {
		t.Error("an ordinary Okta event gives an invalid dedup id")
	}
}

func TestEncodeEscapesCharactersSQSRefuses(t *testing.T) {
	c := add()
	c.GroupName = "AWS_\uffff\ufffe\u0001<tag>"
	e, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(e.Body, "\uffff\ufffe\u0001") {
		t.Errorf("body contains characters SQS refuses: %q", e.Body)
	}
	got, err := Decode(e.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got.GroupName != c.GroupName {
		t.Errorf("GroupName = %q, want %q", got.GroupName, c.GroupName)
	}
}

func TestEncodeRejectsInvalidChanges(t *testing.T) {
	mod := func(f func(*membership.Change)) membership.Change { c := add(); f(&c); return c }
	tests := map[string]struct {
		c    membership.Change
		want string
	}{
		"no uuid":          {mod(func(c *membership.Change) { c.EventUUID = "" }), "eventUuid"},
		"no published":     {mod(func(c *membership.Change) { c.Published = time.Time{} }), "published"},
		"bad kind":         {mod(func(c *membership.Change) { c.Kind = "promote" }), `unknown kind "promote"`},
		"empty kind":       {mod(func(c *membership.Change) { c.Kind = "" }), "unknown kind"},
		"add no user":      {mod(func(c *membership.Change) { c.UserID = "" }), "userId"},
		"remove no group":  {mod(func(c *membership.Change) { c.Kind = membership.KindRemove; c.GroupID = "" }), "groupId"},
		"rename no group":  {mod(func(c *membership.Change) { c.Kind = membership.KindRename; c.GroupID = "" }), "groupId"},
		"delete no group":  {mod(func(c *membership.Change) { c.Kind = membership.KindGroupDelete; c.GroupID = "" }), "groupId"},
		"deactivate no id": {mod(func(c *membership.Change) { c.Kind = membership.KindUserDeactivate; c.UserID = "" }), "userId"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Encode(tt.c)
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Encode err = %v, want ErrInvalidMessage mentioning %q", err, tt.want)
			}
			b, _ := json.Marshal(Message{V: Version, Change: tt.c})
			if _, err := Decode(string(b)); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Decode err = %v, want ErrInvalidMessage", err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	valid, _ := Encode(add())
	tests := map[string]struct {
		body string
		want error
	}{
		"empty":            {"", ErrInvalidMessage},
		"not json":         {"add 00u1 to 00g1", ErrInvalidMessage},
		"array":            {`[1]`, ErrInvalidMessage},
		"no version":       {`{"change":{}}`, ErrInvalidMessage},
		"version 0":        {strings.Replace(valid.Body, `"v":1`, `"v":0`, 1), ErrUnsupportedVersion},
		"version 2":        {strings.Replace(valid.Body, `"v":1`, `"v":2`, 1), ErrUnsupportedVersion},
		"version string":   {strings.Replace(valid.Body, `"v":1`, `"v":"1"`, 1), ErrInvalidMessage},
		"no change":        {`{"v":1}`, ErrInvalidMessage},
		"null change":      {`{"v":1,"change":null}`, ErrInvalidMessage},
		"bad published":    {strings.Replace(valid.Body, `2026-03-04T10:20:30.123Z`, `yesterday`, 1), ErrInvalidMessage},
		"trailing garbage": {valid.Body + `x`, ErrInvalidMessage},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(tt.body); !errors.Is(err, tt.want) {
				t.Errorf("Decode err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeToleratesUnknownFields(t *testing.T) {
	valid, _ := Encode(add())
	body := strings.Replace(valid.Body, `{"v":1,`, `{"v":1,"producer":"hook@v2",`, 1)
	body = strings.Replace(body, `"kind":"add",`, `"kind":"add","actor":"00uAdmin",`, 1)
	c, err := Decode(body)
	if err != nil || c != add() {
		t.Errorf("Decode = %+v, %v", c, err)
	}
}

func TestDecodeEvent(t *testing.T) {
	ok, _ := Encode(add())
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: ok.Body, Attributes: map[string]string{"MessageGroupId": ok.GroupID}},
		{MessageId: "m2", Body: `{"v":9,"change":{}}`},
		{MessageId: "m3", Body: "junk"},
	}}
	recs := DecodeEvent(ev)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	if recs[0].Err != nil || recs[0].MessageID != "m1" || recs[0].GroupID != ok.GroupID || recs[0].Change != add() {
		t.Errorf("record 0 = %+v", recs[0])
	}
	if recs[1].MessageID != "m2" || !errors.Is(recs[1].Err, ErrUnsupportedVersion) {
		t.Errorf("record 1 = %+v", recs[1])
	}
	if recs[2].MessageID != "m3" || !errors.Is(recs[2].Err, ErrInvalidMessage) {
		t.Errorf("record 2 = %+v", recs[2])
	}
}

func FuzzDecode(f *testing.F) {
	ok, _ := Encode(add())
	f.Add(ok.Body)
	f.Add(`{"v":1,"change":{"kind":"user_deactivate","eventUuid":"x","published":"2026-01-01T00:00:00Z","userId":"00u"}}`)
	f.Add(`{"v":2}`)
	f.Fuzz(func(t *testing.T, body string) {
		c, err := Decode(body)
		if err != nil {
			return
		}
		// Whatever decodes must encode to valid SQS entries and decode back to itself.
		e, err := Encode(c)
		if err != nil {
			t.Fatalf("decoded change does not encode: %v", err)
		}
		if !validSQSID(e.GroupID) || !validSQSID(e.DedupID) {
			t.Fatalf("invalid ids %q %q", e.GroupID, e.DedupID)
		}
		c2, err := Decode(e.Body)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !c2.Published.Equal(c.Published) {
			t.Fatalf("published changed: %v vs %v", c.Published, c2.Published)
		}
		c2.Published = c.Published
		if c2 != c {
			t.Fatalf("round trip changed the change: %+v vs %+v", c, c2)
		}
	})
}
