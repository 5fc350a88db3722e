package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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
	cs, err := Decode(e.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0] != add() {
		t.Errorf("round trip = %+v", cs)
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
		{membership.Change{EventUUID: "u4", Published: published, Kind: membership.KindUserReactivate, UserID: "00uX"}, "user:00uX", "u4/user_reactivate//00uX"},
		{membership.Change{EventUUID: "u5", Published: published, Kind: membership.KindUserSuspend, UserID: "00uX"}, "user:00uX", "u5/user_suspend//00uX"},
		{membership.Change{EventUUID: "u6", Published: published, Kind: membership.KindUserUnsuspend, UserID: "00uX"}, "user:00uX", "u6/user_unsuspend//00uX"},
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
	if got[0].GroupName != c.GroupName {
		t.Errorf("GroupName = %q, want %q", got[0].GroupName, c.GroupName)
	}
	other := add()
	other.UserID = "00u2"
	packs, err := EncodeBatch([]membership.Change{c, other})
	if err != nil || len(packs) != 1 || strings.ContainsAny(packs[0].Body, "\uffff\ufffe\u0001") {
		t.Fatalf("EncodeBatch = %+v, %v", packs, err)
	}
	if got, err := Decode(packs[0].Body); err != nil || len(got) != 2 {
		t.Fatalf("pack decodes to %+v, %v", got, err)
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
		"reactivate no id": {mod(func(c *membership.Change) { c.Kind = membership.KindUserReactivate; c.UserID = "" }), "userId"},
		"suspend no id":    {mod(func(c *membership.Change) { c.Kind = membership.KindUserSuspend; c.UserID = "" }), "userId"},
		"unsuspend no id":  {mod(func(c *membership.Change) { c.Kind = membership.KindUserUnsuspend; c.UserID = "" }), "userId"},
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
		"version 3":        {strings.Replace(valid.Body, `"v":1`, `"v":3`, 1), ErrUnsupportedVersion},
		"v1 body as v2":    {strings.Replace(valid.Body, `"v":1`, `"v":2`, 1), ErrInvalidMessage},
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
	cs, err := Decode(body)
	if err != nil || len(cs) != 1 || cs[0] != add() {
		t.Errorf("Decode = %+v, %v", cs, err)
	}
	// A field of the other version is just an unknown field.
	if cs, err := Decode(strings.Replace(valid.Body, `{"v":1,`, `{"v":1,"changes":"n/a",`, 1)); err != nil || len(cs) != 1 {
		t.Errorf("v1 with a changes field: %+v, %v", cs, err)
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
	if recs[0].Err != nil || recs[0].MessageID != "m1" || recs[0].GroupID != ok.GroupID || len(recs[0].Changes) != 1 || recs[0].Changes[0] != add() {
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
	packs, _ := EncodeBatch(changesOf(3, "00gF"))
	f.Add(packs[0].Body)
	f.Add(`{"v":1,"change":{"kind":"user_deactivate","eventUuid":"x","published":"2026-01-01T00:00:00Z","userId":"00u"}}`)
	f.Add(`{"v":2}`)
	f.Add(`{"v":2,"changes":[]}`)
	f.Fuzz(func(t *testing.T, body string) {
		cs, err := Decode(body)
		if err != nil {
			return
		}
		if len(cs) == 0 {
			t.Fatal("Decode accepted a message without changes")
		}
		// Whatever decodes must encode to valid SQS entries and decode back to itself.
		if len(cs) == 1 {
			c := cs[0]
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
			if !c2[0].Published.Equal(c.Published) {
				t.Fatalf("published changed: %v vs %v", c.Published, c2[0].Published)
			}
			c2[0].Published = c.Published
			if c2[0] != c {
				t.Fatalf("round trip changed the change: %+v vs %+v", c, c2[0])
			}
		}
		// Packed again: one message group, every change kept (once per deduplication id).
		entries, err := EncodeBatch(cs)
		if err != nil {
			t.Fatalf("decoded changes do not pack: %v", err)
		}
		want := map[string]bool{}
		for _, c := range cs {
			want[DedupID(c)] = true
		}
		got := map[string]bool{}
		for _, e := range entries {
			if e.GroupID != GroupID(cs[0]) || !validSQSID(e.GroupID) || !validSQSID(e.DedupID) {
				t.Fatalf("entry ids %q %q", e.GroupID, e.DedupID)
			}
			back, err := Decode(e.Body)
			if err != nil {
				t.Fatalf("pack does not decode: %v", err)
			}
			for _, c := range back {
				got[DedupID(c)] = true
			}
		}
		if len(got) != len(want) {
			t.Fatalf("packed %d distinct changes, want %d", len(got), len(want))
		}
	})
}

// changesOf returns n distinct adds to group.
func changesOf(n int, group string) []membership.Change {
	out := make([]membership.Change, n)
	for i := range out {
		c := add()
		c.EventUUID = fmt.Sprintf("evt-%04d", i)
		c.UserID = fmt.Sprintf("00u%04d", i)
		c.GroupID = group
		out[i] = c
	}
	return out
}

func TestEncodeBatchGolden(t *testing.T) {
	a := add()
	b := add()
	b.EventUUID, b.UserID, b.Login = "0c1d2e3f-1d3f-11f0-8e2b-5b1c7f0e4a21", "00u2bobb", "bob@example.com"
	deact := membership.Change{EventUUID: "u1", Published: published, Kind: membership.KindUserDeactivate, UserID: "00uX"}
	entries, err := EncodeBatch([]membership.Change{a, deact, b, a})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries, want one for the group and one for the deactivation", len(entries))
	}
	// Ordered by deduplication id within the group: b's uuid sorts first.
	wantBody := `{"v":2,"changes":[` +
		`{"eventUuid":"0c1d2e3f-1d3f-11f0-8e2b-5b1c7f0e4a21","published":"2026-03-04T10:20:30.123Z","kind":"add","userId":"00u2bobb","login":"bob@example.com","groupId":"00g1abcdEFGH2345ijk7","groupName":"AWS_admins"},` +
		`{"eventUuid":"9b0e7c2a-1d3f-11f0-8e2b-5b1c7f0e4a21","published":"2026-03-04T10:20:30.123Z","kind":"add","userId":"00u1abcdEFGH2345ijk7","login":"ana@example.com","groupId":"00g1abcdEFGH2345ijk7","groupName":"AWS_admins"}]}`
	if entries[0].Body != wantBody {
		t.Errorf("Body =\n%s\nwant\n%s", entries[0].Body, wantBody)
	}
	// The same body json.Marshal gives for a Pack: the hand-assembled form is the canonical one.
	if m, _ := json.Marshal(Pack{V: Version2, Changes: []membership.Change{b, a}}); string(m) != wantBody {
		t.Errorf("Pack marshals to\n%s", m)
	}
	if entries[0].GroupID != "00g1abcdEFGH2345ijk7" {
		t.Errorf("GroupID = %q", entries[0].GroupID)
	}
	sum := sha256.Sum256([]byte(DedupID(b) + "\n" + DedupID(a)))
	if entries[0].DedupID != hex.EncodeToString(sum[:]) {
		t.Errorf("DedupID = %q, want the sha256 of the sorted per-change ids", entries[0].DedupID)
	}
	// A one-change pack keeps the change's own id, as its v1 message had.
	if entries[1].GroupID != "user:00uX" || entries[1].DedupID != DedupID(deact) || entries[1].Body != `{"v":2,"changes":[{"eventUuid":"u1","published":"2026-03-04T10:20:30.123Z","kind":"user_deactivate","userId":"00uX"}]}` {
		t.Errorf("deactivation entry %+v", entries[1])
	}
}

// Okta's redelivery of the same events, in another order or amalgamated with repeats, gives the
// same entries, so SQS deduplicates them.
func TestEncodeBatchIsOrderIndependent(t *testing.T) {
	cs := append(changesOf(150, "00gA"), changesOf(5, "00gB")...)
	first, err := EncodeBatch(cs)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := slices.Clone(cs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	shuffled = append(shuffled, cs[:7]...)
	second, err := EncodeBatch(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	key := func(e Entry) string { return e.DedupID }
	a, b := slices.Clone(first), slices.Clone(second)
	slices.SortFunc(a, func(x, y Entry) int { return strings.Compare(key(x), key(y)) })
	slices.SortFunc(b, func(x, y Entry) int { return strings.Compare(key(x), key(y)) })
	if !slices.Equal(a, b) {
		t.Error("a reordered redelivery gives other entries")
	}
}

func TestEncodeBatchChunks(t *testing.T) {
	entries, err := EncodeBatch(changesOf(250, "00gA"))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	seen := map[string]bool{}
	for _, e := range entries {
		cs, err := Decode(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(cs))
		for _, c := range cs {
			seen[c.EventUUID] = true
		}
		if seen[e.DedupID] {
			t.Errorf("two packs share dedup id %q", e.DedupID)
		}
		seen[e.DedupID] = true
	}
	if fmt.Sprint(sizes) != "[100 100 50]" || len(seen) != 250+3 {
		t.Errorf("pack sizes %v, %d ids seen; want [100 100 50] covering all 250", sizes, len(seen))
	}

	// Long names: the byte cap cuts before the count cap.
	long := changesOf(100, "00gL")
	for i := range long {
		long[i].GroupName = "AWS_" + strings.Repeat("n", 1000)
		long[i].Login = strings.Repeat("l", 100) + "@example.com"
	}
	entries, err = EncodeBatch(long)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range entries {
		if len(e.Body) > MaxPackBytes {
			t.Errorf("pack of %d bytes, cap %d", len(e.Body), MaxPackBytes)
		}
		cs, err := Decode(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		total += len(cs)
	}
	if len(entries) < 2 || total != 100 {
		t.Errorf("%d packs holding %d changes; want the 100 changes in more than one pack", len(entries), total)
	}

	// One change larger than the cap still gets a message.
	huge := add()
	huge.GroupName = "AWS_" + strings.Repeat("h", MaxPackBytes)
	huge.UserID = "00uHuge"
	entries, err = EncodeBatch([]membership.Change{huge, add()})
	if err != nil || len(entries) != 2 {
		t.Fatalf("EncodeBatch with an oversized change: %d entries, %v", len(entries), err)
	}
}

func TestEncodeBatchRejectsInvalid(t *testing.T) {
	cs := changesOf(3, "00gA")
	cs[1].Published = time.Time{}
	if _, err := EncodeBatch(cs); !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), "change 1") {
		t.Errorf("err = %v", err)
	}
	if entries, err := EncodeBatch(nil); err != nil || len(entries) != 0 {
		t.Errorf("EncodeBatch(nil) = %v, %v", entries, err)
	}
}

func TestRetryEntry(t *testing.T) {
	c := add()
	e, err := RetryEntry(c)
	if err != nil {
		t.Fatal(err)
	}
	single, _ := Encode(c)
	packs, _ := EncodeBatch([]membership.Change{c})
	if e.Body != single.Body {
		t.Errorf("retry entry %+v, want the v1 message of the change", e)
	}
	// Isolated: a message group of its own per (group, user), so it never holds the Okta group.
	if e.GroupID == single.GroupID || !Isolated(e.GroupID) || Isolated(single.GroupID) ||
		e.GroupID != "retry/"+c.GroupID+"/"+c.UserID {
		t.Errorf("retry group %q (change's group %q)", e.GroupID, single.GroupID)
	}
	longUser := c
	longUser.UserID = strings.Repeat("u", 200)
	if le, err := RetryEntry(longUser); err != nil || !Isolated(le.GroupID) || len(le.GroupID) > maxIDLen {
		t.Errorf("retry group of a long id: %q, %v", le.GroupID, err)
	}
	// Not swallowed by the dedup window of the pack it came from (a one-change pack has the
	// change's own id), and stable so a pack processed twice re-enqueues once.
	if e.DedupID == packs[0].DedupID || e.DedupID != DedupID(c)+"/retry" {
		t.Errorf("retry dedup id %q", e.DedupID)
	}
	if e2, _ := RetryEntry(c); e2 != e {
		t.Error("RetryEntry not deterministic")
	}
	long := c
	long.EventUUID = strings.Repeat("e", 100)
	if e, _ := RetryEntry(long); !validSQSID(e.DedupID) || e.DedupID == DedupID(long) {
		t.Errorf("long retry dedup id %q", e.DedupID)
	}
}

func TestDecodePack(t *testing.T) {
	a, b := changesOf(2, "00gA")[0], changesOf(2, "00gA")[1]
	other := b
	other.GroupID = "00gB"
	deact := membership.Change{EventUUID: "u1", Published: published, Kind: membership.KindUserDeactivate, UserID: "00uX"}
	body := func(cs ...membership.Change) string {
		m, _ := json.Marshal(Pack{V: Version2, Changes: cs})
		return string(m)
	}
	if cs, err := Decode(body(a, b, a)); err != nil || len(cs) != 3 {
		t.Errorf("Decode = %v, %v", cs, err)
	}
	bad := b
	bad.UserID = ""
	tests := map[string]string{
		"no changes":        `{"v":2}`,
		"empty changes":     `{"v":2,"changes":[]}`,
		"null changes":      `{"v":2,"changes":null}`,
		"changes an object": `{"v":2,"changes":{}}`,
		"null change":       `{"v":2,"changes":[null]}`,
		"invalid change":    body(a, bad),
		"mixed groups":      body(a, other),
		"group and user":    body(a, deact),
	}
	for name, b := range tests {
		if _, err := Decode(b); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: err = %v, want ErrInvalidMessage", name, err)
		}
	}
	if _, err := Decode(body(a, bad)); err == nil || !strings.Contains(err.Error(), "change 1") {
		t.Errorf("error does not name the change: %v", err)
	}
}

// The lifecycle changes of one user share one message group and pack together; a pack never
// mixes them with a group's changes.
func TestUserLifecyclePack(t *testing.T) {
	life := func(uuid string, k membership.Kind, user string) membership.Change {
		return membership.Change{EventUUID: uuid, Published: published, Kind: k, UserID: user, Login: user + "@example.com"}
	}
	deact, react := life("l1", membership.KindUserDeactivate, "00uX"), life("l2", membership.KindUserReactivate, "00uX")
	susp, other := life("l3", membership.KindUserSuspend, "00uX"), life("l4", membership.KindUserUnsuspend, "00uY")
	entries, err := EncodeBatch([]membership.Change{deact, add(), react, susp, other})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, e := range entries {
		cs, err := Decode(e.Body)
		if err != nil {
			t.Fatalf("entry %s: %v", e.GroupID, err)
		}
		groups[e.GroupID] = len(cs)
	}
	if want := map[string]int{"user:00uX": 3, "user:00uY": 1, add().GroupID: 1}; !reflect.DeepEqual(groups, want) {
		t.Errorf("entries per group %v, want %v", groups, want)
	}
	m, _ := json.Marshal(Pack{V: Version2, Changes: []membership.Change{deact, add()}})
	if _, err := Decode(string(m)); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("a pack mixing a user's lifecycle and a group's changes decoded: %v", err)
	}
}
