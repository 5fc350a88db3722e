package queue_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
)

// sampleChanges returns the changes the hook would enqueue for the delivery samples in events/
// (every group selected, so the corpus holds every kind), in file name order.
func sampleChanges(tb testing.TB) []membership.Change {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no samples in events/: %v", err)
	}
	slices.Sort(files)
	var out []membership.Change
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
		}
		env, err := oktahook.Parse(body)
		if err != nil {
			continue // the rejection samples
		}
		out = append(out, oktahook.Expand(env, func(string) bool { return true }).Changes...)
	}
	if len(out) == 0 {
		tb.Fatal("the samples yield no changes")
	}
	return out
}

// sqsIDOK is SQS's rule for MessageGroupId and MessageDeduplicationId: 1 to 128 characters of
// alphanumerics and punctuation, i.e. exactly the bytes '!' (0x21) to '~' (0x7E).
func sqsIDOK(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// sqsBodyOK is SQS's rule for a message body: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
func sqsBodyOK(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// sameChange compares changes with published by instant and UTC offset.
func sameChange(a, b membership.Change) bool {
	_, oa := a.Published.Zone()
	_, ob := b.Published.Zone()
	if !a.Published.Equal(b.Published) || oa != ob {
		return false
	}
	a.Published = b.Published
	return a == b
}

// FuzzDecodeCanonical complements FuzzDecode (message_test.go) with a corpus of the real hook
// output for events/ (packed v2 messages, and the v1 messages of earlier hooks) and stricter
// properties: whatever Decode accepts packs into bodies SQS takes, which decode to the same
// changes and pack again byte for byte (a fixed point), and DecodeEvent agrees with Decode.
func FuzzDecodeCanonical(f *testing.F) {
	samples := sampleChanges(f)
	packs, err := queue.EncodeBatch(samples)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range packs {
		f.Add(e.Body)
	}
	for _, c := range samples {
		e, err := queue.Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Body)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"v":1}`, `{"v":1,"change":null}`, `{"v":"1","change":{}}`, `{"v":1.0,"change":{}}`,
		`{"v":2,"change":{"kind":"add"}}`, `{"v":1,"v":2}`, `{"v":2,"changes":[]}`, `{"v":2,"changes":[null]}`,
		`{"v":2,"changes":[{"eventUuid":"e","published":"2026-11-25T10:15:30Z","kind":"add","userId":"u","groupId":"g"},{"eventUuid":"e","published":"2026-11-25T10:15:31Z","kind":"add","userId":"u","groupId":"g","login":"x"}]}`,
		`{"v":2,"changes":[{"eventUuid":"e","published":"2026-11-25T10:15:30Z","kind":"add","userId":"u","groupId":"g"},{"eventUuid":"f","published":"2026-11-25T10:15:30Z","kind":"rename","groupId":"h"}]}`,
		`{"v":1,"change":{"eventUuid":"e","published":"2026-11-25T10:15:30.123+14:00","kind":"add","userId":"00u1","groupId":"00g1"}}`,
		`{"V":1,"CHANGE":{"EVENTUUID":"e","PUBLISHED":"2026-11-25T10:15:30Z","KIND":"rename","GROUPID":"00g1"}}`,
		`{"v":1,"change":{"eventUuid":"e","published":"0000-01-01T00:00:00+01:00","kind":"group_delete","groupId":"00g1"}}`,
		`{"v":1,"change":{"eventUuid":"e","published":"2026-11-25T10:15:30Z","kind":"user_deactivate","userId":"\ufffe\uffff\u0000"}}`,
		`{"v":1,"change":{"eventUuid":"e\ud800","published":"2026-11-25T10:15:30Z","kind":"add","userId":"u","groupId":"g","login":"` + strings.Repeat("é", 200) + `"}}`,
		`{"v":1,"change":{"eventUuid":"e","published":"2026-11-25T10:15:30Z","kind":"bogus","userId":"u","groupId":"g"}}`,
		"{\"v\":1,\"change\":{\"eventUuid\":\"\xff\",\"published\":\"2026-11-25T10:15:30Z\",\"kind\":\"remove\",\"userId\":\"u\",\"groupId\":\"g\"}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cs, err := queue.Decode(body)
		recs := queue.DecodeEvent(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: body}}})
		if len(recs) != 1 || recs[0].MessageID != "m" || (recs[0].Err == nil) != (err == nil) {
			t.Fatalf("DecodeEvent %+v disagrees with Decode (%v)", recs, err)
		}
		if err != nil {
			if !errors.Is(err, queue.ErrInvalidMessage) && !errors.Is(err, queue.ErrUnsupportedVersion) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if len(cs) == 0 || len(recs[0].Changes) != len(cs) {
			t.Fatalf("Decode gave %d changes, DecodeEvent %d", len(cs), len(recs[0].Changes))
		}
		ids := map[string]bool{}
		for i, c := range cs {
			if !sameChange(recs[0].Changes[i], c) {
				t.Fatalf("DecodeEvent change %+v, Decode %+v", recs[0].Changes[i], c)
			}
			if err := membership.Validate(c); err != nil {
				t.Fatalf("Decode accepted a change membership.Validate refuses: %v", err)
			}
			if queue.GroupID(c) != queue.GroupID(cs[0]) {
				t.Fatalf("Decode accepted a pack of groups %q and %q", queue.GroupID(cs[0]), queue.GroupID(c))
			}
			ids[queue.DedupID(c)] = true
		}
		if len(cs) == 1 {
			// The v1 form of a single change.
			c := cs[0]
			e, err := queue.Encode(c)
			if err != nil {
				t.Fatalf("decoded change does not encode: %v", err)
			}
			if !sqsIDOK(e.GroupID) || !sqsIDOK(e.DedupID) || !sqsBodyOK(e.Body) {
				t.Fatalf("entry SQS would refuse: group %q dedup %q body %q", e.GroupID, e.DedupID, e.Body)
			}
			c2, err := queue.Decode(e.Body)
			if err != nil || len(c2) != 1 {
				t.Fatalf("encoded body does not decode: %v\n%s", err, e.Body)
			}
			if !sameChange(c, c2[0]) {
				t.Fatalf("round trip changed the change\n %+v\n %+v", c, c2[0])
			}
			e2, err := queue.Encode(c2[0])
			if err != nil || e2 != e {
				t.Fatalf("second encode differs (%v)\n %+v\n %+v", err, e, e2)
			}
		}
		entries, err := queue.EncodeBatch(cs)
		if err != nil {
			t.Fatalf("decoded changes do not pack: %v", err)
		}
		var back []membership.Change
		for _, e := range entries {
			if !sqsIDOK(e.GroupID) || !sqsIDOK(e.DedupID) || !sqsBodyOK(e.Body) {
				t.Fatalf("entry SQS would refuse: group %q dedup %q body %q", e.GroupID, e.DedupID, e.Body)
			}
			if e.GroupID != queue.GroupID(cs[0]) {
				t.Fatalf("pack group %q, want %q", e.GroupID, queue.GroupID(cs[0]))
			}
			got, err := queue.Decode(e.Body)
			if err != nil {
				t.Fatalf("pack does not decode: %v\n%s", err, e.Body)
			}
			if len(got) > queue.MaxPackChanges || (len(got) > 1 && len(e.Body) > queue.MaxPackBytes) {
				t.Fatalf("pack of %d changes, %d bytes", len(got), len(e.Body))
			}
			back = append(back, got...)
		}
		if len(back) != len(ids) {
			t.Fatalf("packed %d changes, want the %d distinct ones", len(back), len(ids))
		}
		for _, c := range back {
			if !ids[queue.DedupID(c)] {
				t.Fatalf("pack holds a change that was not decoded: %+v", c)
			}
		}
		again, err := queue.EncodeBatch(back)
		if err != nil || !slices.Equal(again, entries) {
			t.Fatalf("second pack differs (%v)\n %+v\n %+v", err, entries, again)
		}
	})
}

var fuzzKinds = []membership.Kind{
	membership.KindAdd, membership.KindRemove, membership.KindRename, membership.KindGroupDelete,
	membership.KindUserDeactivate, "", "bogus",
}

// FuzzEncodeIDs: for any change, Encode either refuses it as invalid or yields a MessageGroupId
// and MessageDeduplicationId SQS accepts (1-128 of '!'..'~'), deterministically; the group id
// depends only on the group (the user, for a deactivation) and the dedup id stays the same across
// Okta redeliveries (the same event target with another login, name or time).
func FuzzEncodeIDs(f *testing.F) {
	for _, c := range sampleChanges(f) {
		f.Add(c.EventUUID, uint8(slices.Index(fuzzKinds, c.Kind)), c.GroupID, c.UserID, c.Login, c.GroupName, c.Published.UnixMilli())
	}
	long := strings.Repeat("x", 129)
	for _, s := range [][4]string{
		{"e", "00g1", "00u1", "a@x"},
		{strings.Repeat("e", 40), strings.Repeat("g", 40), strings.Repeat("u", 40), ""}, // unhashed form just under 128
		{strings.Repeat("e", 41), strings.Repeat("g", 40), strings.Repeat("u", 40), ""}, // just over: hashed
		{long, long, long, long},
		{"e e", "g\tg", "u\nu", "\x00"},
		{"é", "日本", "\U0001F600", "\xff"},
		{"e", "user:00u1", "00u1", ""},
		{"e", "00g1", "00u1/x", ""},
		{"~", "!", "\x7f", "\x20"},
	} {
		f.Add(s[0], uint8(0), s[1], s[2], s[3], "AWS_"+s[1], int64(1764065730123))
		f.Add(s[0], uint8(4), s[1], s[2], s[3], "", int64(-62135596800000)) // 0001-01-01
	}
	f.Fuzz(func(t *testing.T, uuid string, kind uint8, groupID, userID, login, groupName string, ms int64) {
		c := membership.Change{
			EventUUID: uuid, Published: time.UnixMilli(ms).UTC(), Kind: fuzzKinds[int(kind)%len(fuzzKinds)],
			UserID: userID, Login: login, GroupID: groupID, GroupName: groupName,
		}
		e, err := queue.Encode(c)
		if verr := queue.Validate(c); verr != nil {
			if err == nil || !errors.Is(err, queue.ErrInvalidMessage) {
				t.Fatalf("Encode accepted an invalid change (%v): %v", verr, err)
			}
			return
		}
		if y := c.Published.Year(); y < 0 || y > 9999 {
			if err == nil {
				t.Fatalf("Encode accepted year %d", y)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode refused a valid change %+v: %v", c, err)
		}
		if !sqsIDOK(e.GroupID) || !sqsIDOK(e.DedupID) {
			t.Fatalf("ids SQS would refuse: group %q dedup %q", e.GroupID, e.DedupID)
		}
		if !sqsBodyOK(e.Body) {
			t.Fatalf("body SQS would refuse: %q", e.Body)
		}
		if e.GroupID != queue.GroupID(c) || e.DedupID != queue.DedupID(c) {
			t.Fatalf("Encode ids %q %q differ from GroupID/DedupID %q %q", e.GroupID, e.DedupID, queue.GroupID(c), queue.DedupID(c))
		}
		if e2, err := queue.Encode(c); err != nil || e2 != e {
			t.Fatalf("Encode is not deterministic: %+v vs %+v (%v)", e, e2, err)
		}
		// Packed alone: the same ids, so a one-change pack and the v1 message deduplicate.
		packs, err := queue.EncodeBatch([]membership.Change{c, c})
		if err != nil || len(packs) != 1 || packs[0].GroupID != e.GroupID || packs[0].DedupID != e.DedupID || !sqsBodyOK(packs[0].Body) {
			t.Fatalf("EncodeBatch of the change: %+v, %v", packs, err)
		}
		// Its retry is a different message in an isolated group of its own.
		r, err := queue.RetryEntry(c)
		if err != nil || r.GroupID == e.GroupID || !queue.Isolated(r.GroupID) || !sqsIDOK(r.GroupID) ||
			r.DedupID == e.DedupID || !sqsIDOK(r.DedupID) || r.Body != e.Body {
			t.Fatalf("RetryEntry: %+v, %v", r, err)
		}

		// A redelivery: same event target, anything else Okta may send differently.
		re := c
		re.Login, re.GroupName, re.Published = login+"x", groupName+"x", c.Published.Add(time.Hour)
		if queue.DedupID(re) != e.DedupID || queue.GroupID(re) != e.GroupID {
			t.Fatalf("redelivery changes ids: %q/%q vs %q/%q", queue.GroupID(re), queue.DedupID(re), e.GroupID, e.DedupID)
		}
		// Another event of the same group (user) goes to the same FIFO group, under another dedup id.
		other := c
		other.EventUUID = uuid + "'"
		if queue.GroupID(other) != e.GroupID {
			t.Fatalf("group id depends on the event: %q vs %q", queue.GroupID(other), e.GroupID)
		}
		if queue.DedupID(other) == e.DedupID {
			t.Fatalf("two events share dedup id %q", e.DedupID)
		}
		// Another target of the same event must not be deduplicated away.
		if c.Kind.Member() {
			sib := c
			sib.UserID = userID + "'"
			if queue.DedupID(sib) == e.DedupID {
				t.Fatalf("two targets of event %q share dedup id %q", uuid, e.DedupID)
			}
		}
	})
}
