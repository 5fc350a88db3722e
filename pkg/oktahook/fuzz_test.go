package oktahook_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
)

// maxSeedBody keeps any large sample out of the corpus: every mutation of it would cost
// megabytes of copying and parsing, and its shape is already covered by the small samples.
const maxSeedBody = 64 << 10

// sampleBodies returns the Okta bodies carried by the API Gateway samples in events/, decoded as
// the hook decodes them (base64 when isBase64Encoded), in file name order.
func sampleBodies(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no samples in events/: %v", err)
	}
	slices.Sort(files)
	var out [][]byte
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		var req struct {
			Body            string `json:"body"`
			IsBase64Encoded bool   `json:"isBase64Encoded"`
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
		}
		if len(body) == 0 || len(body) > maxSeedBody {
			continue
		}
		out = append(out, body)
	}
	return out
}

// envelopeEdgeCases are hand-picked bodies at the edges of what Parse accepts.
var envelopeEdgeCases = []string{
	``, ` `, `null`, `[]`, `{}`, `"com.okta.event_hook"`,
	"\xef\xbb\xbf{\"eventType\":\"com.okta.event_hook\",\"data\":{\"events\":[]}}", // UTF-8 BOM
	`{"eventType":"com.okta.event_hook","data":{"events":null}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[null]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":{}}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[]},"eventType":"x"}`, // duplicate key: last wins
	`{"EVENTTYPE":"com.okta.event_hook","DATA":{"EVENTS":[]}}`,                 // encoding/json matches keys in any case
	`{"eventType":"com.okta.event_hook\u0000","data":{"events":[]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"\ud800","published":"2026-11-25T10:15:30.123+14:00"}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"0001-01-01T00:00:00Z"}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"0000-01-01T00:00:00+01:00","eventType":"user.lifecycle.deactivate","outcome":{"result":"SUCCESS"},"target":[{"id":"00u1","type":"User"}]}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"9999-12-31T23:59:59.999-01:00","eventType":"group.lifecycle.delete","outcome":{"result":"SUCCESS"},"target":[{"id":"00g1","type":"UserGroup","displayName":"AWS_A"}]}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30.123456789Z","eventType":"group.user_membership.add","outcome":{"result":"success"},"target":[{"id":"00u1","type":"User","alternateId":"a@x"},{"id":"00u2","type":"User"},{"id":"00g1","type":"UserGroup","displayName":"AWS_A"},{"id":"00g2","type":"UserGroup","displayName":"Other"}]}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30Z","eventType":"group.user_membership.remove","outcome":{"result":"SUCCESS"},"target":[{"id":"00g1","type":"UserGroup","displayName":"AWS_A"},{"id":"00u1","type":"User"}]},{"uuid":"a","published":"2026-11-25T10:15:31Z","eventType":"group.user_membership.add","outcome":{"result":"SUCCESS"},"target":[{"id":"00g1","type":"UserGroup","displayName":"AWS_A"},{"id":"00u1","type":"User"}]}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30Z","target":{"id":"00u1"}}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":1,"published":"2026-11-25T10:15:30Z"}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"2026-11-25T10:15:30Z","target":[{"id":"00g1","type":"UserGroup","displayName":"AWS_\u00e9\u65e5"}]}]}}`,
	`{"eventType":"com.okta.event_hook","data":{"events":[]},"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
}

// FuzzParseEnvelope: Parse never panics; it returns either a classified error and nothing, or an
// envelope that satisfies its own validation; and a parsed envelope marshals to JSON that parses
// back to an equivalent envelope (so nothing Parse keeps depends on how Okta spelled it).
func FuzzParseEnvelope(f *testing.F) {
	for _, b := range sampleBodies(f) {
		f.Add(b)
	}
	for _, s := range envelopeEdgeCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := oktahook.Parse(body)
		if err != nil {
			if !errors.Is(err, oktahook.ErrMalformed) && !errors.Is(err, oktahook.ErrWrongShape) {
				t.Fatalf("unclassified error: %v", err)
			}
			if !reflect.DeepEqual(env, oktahook.Envelope{}) {
				t.Fatalf("error %v with a non-zero envelope %+v", err, env)
			}
			return
		}
		assertValidEnvelope(t, env)

		again, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("parsed envelope does not marshal: %v", err)
		}
		env2, err := oktahook.Parse(again)
		if err != nil {
			t.Fatalf("re-marshalled envelope does not parse: %v\n%s", err, again)
		}
		if !equivalentEnvelopes(env, env2) {
			t.Fatalf("round trip changed the envelope\n first  %+v\n second %+v", env, env2)
		}
		// The marshalled form is a fixed point: a second round trip changes nothing at all.
		third, err := json.Marshal(env2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("second round trip differs (%v)\n %s\n %s", err, again, third)
		}
	})
}

func assertValidEnvelope(t *testing.T, env oktahook.Envelope) {
	t.Helper()
	if env.EventType != oktahook.EnvelopeEventType {
		t.Fatalf("accepted envelope eventType %q", env.EventType)
	}
	if env.Data.Events == nil {
		t.Fatal("accepted envelope without data.events")
	}
	for i, ev := range env.Data.Events {
		if ev.UUID == "" || ev.Published.IsZero() {
			t.Fatalf("accepted event %d without uuid or published: %+v", i, ev)
		}
	}
}

// equivalentEnvelopes compares two envelopes, published times by instant and UTC offset (the
// time.Location pointers of two parses of "+02:00" differ, the meaning does not).
func equivalentEnvelopes(a, b oktahook.Envelope) bool {
	if len(a.Data.Events) != len(b.Data.Events) {
		return false
	}
	a.Data.Events = slices.Clone(a.Data.Events)
	for i := range a.Data.Events {
		pa, pb := a.Data.Events[i].Published, b.Data.Events[i].Published
		_, oa := pa.Zone()
		_, ob := pb.Zone()
		if !pa.Equal(pb) || oa != ob {
			return false
		}
		a.Data.Events[i].Published = pb
	}
	return reflect.DeepEqual(a, b)
}

// FuzzExpand: for any delivery Parse accepts and any prefix selection, every change is valid
// for the queue, belongs to a selected group named in its own event, is backed by that event's
// targets, and no event yields more changes than its targets allow. Expand is deterministic and
// accounts for every event exactly once (changes or a drop).
func FuzzExpand(f *testing.F) {
	for _, b := range sampleBodies(f) {
		for _, prefix := range []string{"AWS_", "", "Marketing"} {
			f.Add(b, prefix)
		}
	}
	for _, s := range envelopeEdgeCases {
		f.Add([]byte(s), "AWS_")
	}
	f.Fuzz(func(t *testing.T, body []byte, prefix string) {
		env, err := oktahook.Parse(body)
		if err != nil {
			return
		}
		selected := func(name string) bool { return strings.HasPrefix(name, prefix) }
		res := oktahook.Expand(env, selected)

		if again := oktahook.Expand(env, selected); !reflect.DeepEqual(again, res) {
			t.Fatalf("Expand is not deterministic\n first  %+v\n second %+v", res, again)
		}
		if res.Events != len(env.Data.Events) {
			t.Fatalf("Events = %d, delivery has %d", res.Events, len(env.Data.Events))
		}

		perUUID := map[string]int{}
		for _, c := range res.Changes {
			perUUID[c.EventUUID]++
			if err := membership.Validate(c); err != nil {
				t.Fatalf("invalid change %+v: %v", c, err)
			}
			// The hook's next step: a change the queue refuses would turn into a 500 and a retry
			// that can never succeed.
			if _, err := queue.Encode(c); err != nil {
				t.Fatalf("change %+v does not encode for the queue: %v", c, err)
			}
			if !c.Kind.User() && !selected(c.GroupName) {
				t.Fatalf("change for unselected group %q (prefix %q)", c.GroupName, prefix)
			}
			if c.Kind.User() && (c.GroupID != "" || c.GroupName != "") {
				t.Fatalf("user lifecycle change with a group: %+v", c)
			}
			if !backedByEvent(c, env.Data.Events) {
				t.Fatalf("change %+v is not backed by an event of its uuid", c)
			}
		}
		// One uuid yields changes from one event only (later repeats are dropped as duplicates),
		// and no more than that event's targets allow.
		for uuid, n := range perUUID {
			if limit := maxChanges(uuid, env.Data.Events); n > limit {
				t.Fatalf("event %s yielded %d changes, its targets allow %d", uuid, n, limit)
			}
		}
		total := 0
		for reason, n := range res.Dropped {
			if n <= 0 || !knownReason(reason) {
				t.Fatalf("Dropped[%q] = %d", reason, n)
			}
			total += n
		}
		if total != len(res.Drops) {
			t.Fatalf("Dropped sums to %d, Drops has %d", total, len(res.Drops))
		}
		if len(res.Drops)+len(perUUID) != len(env.Data.Events) {
			t.Fatalf("%d events, %d dropped, %d yielded changes", len(env.Data.Events), len(res.Drops), len(perUUID))
		}

		// Selecting nothing leaves only user lifecycle changes, which have no group to select.
		for _, c := range oktahook.Expand(env, nil).Changes {
			if !c.Kind.User() {
				t.Fatalf("nil selection yielded %+v", c)
			}
		}
	})
}

var kinds = map[string]membership.Kind{
	oktahook.EventMembershipAdd:    membership.KindAdd,
	oktahook.EventMembershipRemove: membership.KindRemove,
	oktahook.EventGroupUpdate:      membership.KindRename,
	oktahook.EventGroupDelete:      membership.KindGroupDelete,
	oktahook.EventUserDeactivate:   membership.KindUserDeactivate,
	oktahook.EventUserReactivate:   membership.KindUserReactivate,
	oktahook.EventUserActivate:     membership.KindUserReactivate,
	oktahook.EventUserSuspend:      membership.KindUserSuspend,
	oktahook.EventUserUnsuspend:    membership.KindUserUnsuspend,
}

func knownReason(r oktahook.DropReason) bool {
	switch r {
	case oktahook.DropIrrelevantType, oktahook.DropNotSuccess, oktahook.DropNotSelected,
		oktahook.DropMissingTarget, oktahook.DropDuplicate:
		return true
	}
	return false
}

// backedByEvent reports whether some successful event with c's uuid, kind and time names c's
// user and group among its targets of the right type.
func backedByEvent(c membership.Change, evs []oktahook.LogEvent) bool {
	for _, ev := range evs {
		if ev.UUID != c.EventUUID || kinds[ev.EventType] != c.Kind || !strings.EqualFold(ev.Outcome.Result, "SUCCESS") {
			continue
		}
		if !ev.Published.Equal(c.Published) || c.Published.Location().String() != "UTC" {
			continue
		}
		userOK := c.UserID == "" && c.Login == ""
		groupOK := c.GroupID == "" && c.GroupName == ""
		for _, tg := range ev.Target {
			switch tg.Type {
			case oktahook.TargetUser:
				userOK = userOK || (tg.ID == c.UserID && tg.AlternateID == c.Login && c.UserID != "")
			case oktahook.TargetUserGroup:
				groupOK = groupOK || (tg.ID == c.GroupID && tg.DisplayName == c.GroupName && c.GroupID != "" && c.GroupName != "")
			}
		}
		if userOK && groupOK {
			return true
		}
	}
	return false
}

// maxChanges is the most changes any event with this uuid may yield: users × groups for a
// membership event, groups for a group event, users for a user lifecycle event.
func maxChanges(uuid string, evs []oktahook.LogEvent) int {
	limit := 0
	for _, ev := range evs {
		if ev.UUID != uuid {
			continue
		}
		var users, groups int
		for _, tg := range ev.Target {
			switch tg.Type {
			case oktahook.TargetUser:
				users++
			case oktahook.TargetUserGroup:
				groups++
			}
		}
		n := 0
		switch kinds[ev.EventType] {
		case membership.KindAdd, membership.KindRemove:
			n = users * groups
		case membership.KindRename, membership.KindGroupDelete:
			n = groups
		case membership.KindUserDeactivate, membership.KindUserReactivate, membership.KindUserSuspend, membership.KindUserUnsuspend:
			n = users
		}
		limit = max(limit, n)
	}
	return limit
}
