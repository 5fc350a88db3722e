package oktahook

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

var t0 = time.Date(2026, 11, 25, 10, 15, 30, 123e6, time.UTC)

func user(id, login string) Target {
	return Target{ID: id, Type: TargetUser, AlternateID: login, DisplayName: "Some One"}
}

func group(id, name string) Target {
	return Target{ID: id, Type: TargetUserGroup, AlternateID: "unknown", DisplayName: name}
}

func ev(uuid, typ, result string, targets ...Target) LogEvent {
	return LogEvent{
		UUID: uuid, Published: t0, EventType: typ,
		Outcome: Outcome{Result: result},
		Actor:   Actor{ID: "00uadmin", Type: "User", AlternateID: "admin@example.com"},
		Target:  targets,
	}
}

func prefixed(name string) bool { return strings.HasPrefix(name, "AWS_") }

func TestExpand(t *testing.T) {
	jane := user("00ujane", "jane@example.com")
	bob := user("00ubob", "bob@example.com")
	eng := group("00geng", "AWS_Engineers")
	ops := group("00gops", "AWS_Ops")
	sales := group("00gsales", "Sales")
	change := func(uuid string, kind membership.Kind, u, g Target) membership.Change {
		return membership.Change{EventUUID: uuid, Published: t0, Kind: kind, UserID: u.ID, Login: u.AlternateID, GroupID: g.ID, GroupName: g.DisplayName}
	}

	tests := []struct {
		name    string
		events  []LogEvent
		want    []membership.Change
		dropped map[DropReason]int
	}{
		{
			name:   "add",
			events: []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", jane, eng)},
			want:   []membership.Change{change("e1", membership.KindAdd, jane, eng)},
		},
		{
			name:   "remove with group listed before user",
			events: []LogEvent{ev("e1", EventMembershipRemove, "SUCCESS", eng, jane)},
			want:   []membership.Change{change("e1", membership.KindRemove, jane, eng)},
		},
		{
			name: "amalgamated delivery keeps order and drops the unselected group",
			events: []LogEvent{
				ev("e1", EventMembershipAdd, "SUCCESS", jane, eng),
				ev("e2", EventMembershipAdd, "SUCCESS", jane, sales),
				ev("e3", EventMembershipRemove, "SUCCESS", bob, ops),
			},
			want: []membership.Change{
				change("e1", membership.KindAdd, jane, eng),
				change("e3", membership.KindRemove, bob, ops),
			},
			dropped: map[DropReason]int{DropNotSelected: 1},
		},
		{
			name:    "failure outcome",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "FAILURE", jane, eng)},
			dropped: map[DropReason]int{DropNotSuccess: 1},
		},
		{
			name:    "skipped outcome",
			events:  []LogEvent{ev("e1", EventMembershipRemove, "SKIPPED", jane, eng)},
			dropped: map[DropReason]int{DropNotSuccess: 1},
		},
		{
			name:    "missing outcome",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "", jane, eng)},
			dropped: map[DropReason]int{DropNotSuccess: 1},
		},
		{
			name:   "lower-case success",
			events: []LogEvent{ev("e1", EventMembershipAdd, "success", jane, eng)},
			want:   []membership.Change{change("e1", membership.KindAdd, jane, eng)},
		},
		{
			name:    "irrelevant types",
			events:  []LogEvent{ev("e1", "user.session.start", "SUCCESS", jane), ev("e2", "", "SUCCESS", jane, eng), ev("e3", "group.user_membership.ADD", "SUCCESS", jane, eng)},
			dropped: map[DropReason]int{DropIrrelevantType: 3},
		},
		{
			name:    "membership without user",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", eng)},
			dropped: map[DropReason]int{DropMissingTarget: 1},
		},
		{
			name:    "membership without group",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", jane)},
			dropped: map[DropReason]int{DropMissingTarget: 1},
		},
		{
			name:    "no targets at all",
			events:  []LogEvent{ev("e1", EventMembershipRemove, "SUCCESS")},
			dropped: map[DropReason]int{DropMissingTarget: 1},
		},
		{
			name:    "targets without ids or group name are unusable",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", user("", "jane@example.com"), eng), ev("e2", EventMembershipAdd, "SUCCESS", jane, group("00geng", ""))},
			dropped: map[DropReason]int{DropMissingTarget: 2},
		},
		{
			name:    "types are matched exactly, not by position",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", Target{ID: "00ux", Type: "AppUser"}, Target{ID: "00gx", Type: "Group", DisplayName: "AWS_X"})},
			dropped: map[DropReason]int{DropMissingTarget: 1},
		},
		{
			name:   "several users yield one change each",
			events: []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", jane, eng, bob)},
			want:   []membership.Change{change("e1", membership.KindAdd, jane, eng), change("e1", membership.KindAdd, bob, eng)},
		},
		{
			name:   "several groups: only the selected ones",
			events: []LogEvent{ev("e1", EventMembershipRemove, "SUCCESS", jane, sales, ops)},
			want:   []membership.Change{change("e1", membership.KindRemove, jane, ops)},
		},
		{
			name:   "rename",
			events: []LogEvent{ev("e1", EventGroupUpdate, "SUCCESS", eng)},
			want:   []membership.Change{{EventUUID: "e1", Published: t0, Kind: membership.KindRename, GroupID: "00geng", GroupName: "AWS_Engineers"}},
		},
		{
			name:    "rename of an unselected group",
			events:  []LogEvent{ev("e1", EventGroupUpdate, "SUCCESS", sales)},
			dropped: map[DropReason]int{DropNotSelected: 1},
		},
		{
			name:    "rename without group",
			events:  []LogEvent{ev("e1", EventGroupUpdate, "SUCCESS", jane)},
			dropped: map[DropReason]int{DropMissingTarget: 1},
		},
		{
			name:   "group delete",
			events: []LogEvent{ev("e1", EventGroupDelete, "SUCCESS", ops)},
			want:   []membership.Change{{EventUUID: "e1", Published: t0, Kind: membership.KindGroupDelete, GroupID: "00gops", GroupName: "AWS_Ops"}},
		},
		{
			name:    "group delete of an unselected group",
			events:  []LogEvent{ev("e1", EventGroupDelete, "SUCCESS", sales)},
			dropped: map[DropReason]int{DropNotSelected: 1},
		},
		{
			name:   "user deactivate has no group and ignores selection",
			events: []LogEvent{ev("e1", EventUserDeactivate, "SUCCESS", bob)},
			want:   []membership.Change{{EventUUID: "e1", Published: t0, Kind: membership.KindUserDeactivate, UserID: "00ubob", Login: "bob@example.com"}},
		},
		{
			name:   "user deactivate with two users",
			events: []LogEvent{ev("e1", EventUserDeactivate, "SUCCESS", jane, bob)},
			want: []membership.Change{
				{EventUUID: "e1", Published: t0, Kind: membership.KindUserDeactivate, UserID: "00ujane", Login: "jane@example.com"},
				{EventUUID: "e1", Published: t0, Kind: membership.KindUserDeactivate, UserID: "00ubob", Login: "bob@example.com"},
			},
		},
		{
			name:    "user deactivate without user",
			events:  []LogEvent{ev("e1", EventUserDeactivate, "SUCCESS", eng)},
			dropped: map[DropReason]int{DropMissingTarget: 1},
		},
		{
			name:    "user deactivate that failed",
			events:  []LogEvent{ev("e1", EventUserDeactivate, "FAILURE", jane)},
			dropped: map[DropReason]int{DropNotSuccess: 1},
		},
		{
			name: "user reactivate, activate, suspend and unsuspend have no group and ignore selection",
			events: []LogEvent{
				ev("e1", EventUserReactivate, "SUCCESS", bob),
				ev("e2", EventUserActivate, "SUCCESS", jane),
				ev("e3", EventUserSuspend, "SUCCESS", bob, sales),
				ev("e4", EventUserUnsuspend, "SUCCESS", bob),
			},
			want: []membership.Change{
				{EventUUID: "e1", Published: t0, Kind: membership.KindUserReactivate, UserID: "00ubob", Login: "bob@example.com"},
				{EventUUID: "e2", Published: t0, Kind: membership.KindUserReactivate, UserID: "00ujane", Login: "jane@example.com"},
				{EventUUID: "e3", Published: t0, Kind: membership.KindUserSuspend, UserID: "00ubob", Login: "bob@example.com"},
				{EventUUID: "e4", Published: t0, Kind: membership.KindUserUnsuspend, UserID: "00ubob", Login: "bob@example.com"},
			},
		},
		{
			name:    "user lifecycle events without a user or that failed",
			events:  []LogEvent{ev("e1", EventUserReactivate, "SUCCESS", eng), ev("e2", EventUserSuspend, "FAILURE", jane), ev("e3", EventUserUnsuspend, "SUCCESS", user("", "x@example.com"))},
			dropped: map[DropReason]int{DropMissingTarget: 2, DropNotSuccess: 1},
		},
		{
			name:    "other user lifecycle types are ignored",
			events:  []LogEvent{ev("e1", "user.lifecycle.create", "SUCCESS", jane), ev("e2", "user.lifecycle.delete.initiated", "SUCCESS", jane)},
			dropped: map[DropReason]int{DropIrrelevantType: 2},
		},
		{
			name:    "same uuid twice in one delivery",
			events:  []LogEvent{ev("e1", EventMembershipAdd, "SUCCESS", jane, eng), ev("e1", EventMembershipAdd, "SUCCESS", jane, eng)},
			want:    []membership.Change{change("e1", membership.KindAdd, jane, eng)},
			dropped: map[DropReason]int{DropDuplicate: 1},
		},
		{
			name: "published is normalised to UTC",
			events: func() []LogEvent {
				e := ev("e1", EventMembershipAdd, "SUCCESS", jane, eng)
				e.Published = t0.In(time.FixedZone("CET", 3600))
				return []LogEvent{e}
			}(),
			want: []membership.Change{change("e1", membership.KindAdd, jane, eng)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := Envelope{EventType: EnvelopeEventType, Data: Data{Events: tt.events}}
			res := Expand(env, prefixed)
			if res.Events != len(tt.events) {
				t.Errorf("Events = %d, want %d", res.Events, len(tt.events))
			}
			if len(res.Changes) != len(tt.want) || (len(tt.want) > 0 && !reflect.DeepEqual(res.Changes, tt.want)) {
				t.Errorf("changes:\n got %+v\nwant %+v", res.Changes, tt.want)
			}
			for _, c := range res.Changes {
				if c.Published.Location() != time.UTC {
					t.Errorf("published %v not in UTC", c.Published)
				}
			}
			if len(res.Dropped) != len(tt.dropped) || (len(tt.dropped) > 0 && !reflect.DeepEqual(res.Dropped, tt.dropped)) {
				t.Errorf("dropped = %v, want %v", res.Dropped, tt.dropped)
			}
			total := 0
			for _, n := range tt.dropped {
				total += n
			}
			if res.DroppedTotal() != total {
				t.Errorf("DroppedTotal = %d, want %d", res.DroppedTotal(), total)
			}
		})
	}
}

func TestExpandNilSelectionSelectsNothing(t *testing.T) {
	env := Envelope{Data: Data{Events: []LogEvent{
		ev("e1", EventMembershipAdd, "SUCCESS", user("00u1", "a@example.com"), group("00g1", "AWS_A")),
		ev("e2", EventUserDeactivate, "SUCCESS", user("00u1", "a@example.com")),
	}}}
	res := Expand(env, nil)
	if len(res.Changes) != 1 || res.Changes[0].Kind != membership.KindUserDeactivate {
		t.Errorf("changes = %+v, want only the deactivation", res.Changes)
	}
	if res.Dropped[DropNotSelected] != 1 {
		t.Errorf("dropped = %v", res.Dropped)
	}
}

func TestLogDrops(t *testing.T) {
	env := Envelope{Data: Data{Events: []LogEvent{
		ev("e-fail", EventMembershipAdd, "FAILURE", user("00u1", "secret.login@example.com"), group("00g1", "AWS_A")),
		ev("e-ok", EventMembershipAdd, "SUCCESS", user("00u1", "a@example.com"), group("00g1", "AWS_A")),
		ev("e-other", "user.session.start", "SUCCESS"),
	}}}
	res := Expand(env, prefixed)

	var buf bytes.Buffer
	res.LogDrops(context.Background(), slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	out := buf.String()
	if n := strings.Count(out, `"msg":"event dropped"`); n != 2 {
		t.Fatalf("%d drop lines, want 2:\n%s", n, out)
	}
	for _, want := range []string{`"event_uuid":"e-fail"`, `"reason":"not_success"`, `"event_uuid":"e-other"`, `"reason":"irrelevant_type"`, `"event_type":"user.session.start"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret.login") || strings.Contains(out, "e-ok") {
		t.Errorf("log names a login or a kept event:\n%s", out)
	}

	buf.Reset()
	res.LogDrops(context.Background(), slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if buf.Len() != 0 {
		t.Errorf("drops logged above debug level: %s", buf.String())
	}
}

// The lifecycle samples in events/ go through the real parse and expansion: one change of the
// documented kind each, for the documented user.
func TestUserLifecycleSamples(t *testing.T) {
	for file, want := range map[string]membership.Change{
		"hook-delivery-user-deactivate.json": {Kind: membership.KindUserDeactivate, UserID: "00u8f3np4tWcJp7Yf5d7", Login: "carol.white@example.com"},
		"hook-delivery-user-reactivate.json": {Kind: membership.KindUserReactivate, UserID: "00u8f3np4tWcJp7Yf5d7", Login: "carol.white@example.com"},
		"hook-delivery-user-suspend.json":    {Kind: membership.KindUserSuspend, UserID: "00u8f3lm9sVbHn2Xe5d7", Login: "bob.smith@example.com"},
		"hook-delivery-user-unsuspend.json":  {Kind: membership.KindUserUnsuspend, UserID: "00u8f3lm9sVbHn2Xe5d7", Login: "bob.smith@example.com"},
	} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
			if err != nil {
				t.Fatal(err)
			}
			var req struct {
				Body string `json:"body"`
			}
			if err := json.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			env, err := Parse([]byte(req.Body))
			if err != nil {
				t.Fatal(err)
			}
			res := Expand(env, prefixed)
			if len(res.Changes) != 1 || res.DroppedTotal() != 0 {
				t.Fatalf("changes %+v, dropped %v", res.Changes, res.Dropped)
			}
			got := res.Changes[0]
			if got.Kind != want.Kind || got.UserID != want.UserID || got.Login != want.Login || got.GroupID != "" || got.EventUUID == "" || got.Published.IsZero() {
				t.Errorf("change %+v, want %s of %s (%s)", got, want.Kind, want.UserID, want.Login)
			}
		})
	}
}

// Every handled type is expanded (not dropped as irrelevant), and a type outside the list is
// dropped: the hook subscription derived from HandledEventTypes covers exactly what Expand acts on.
func TestHandledEventTypesAreExactlyTheExpandedOnes(t *testing.T) {
	types := HandledEventTypes()
	if !slices.IsSorted(types) || len(types) == 0 {
		t.Fatalf("HandledEventTypes() = %v, want a sorted non-empty list", types)
	}
	for _, want := range []string{EventMembershipAdd, EventMembershipRemove, EventGroupUpdate, EventGroupDelete, EventUserDeactivate, EventUserReactivate, EventUserActivate} {
		if !slices.Contains(types, want) {
			t.Errorf("HandledEventTypes() lacks %s", want)
		}
	}
	for _, typ := range append(types, "user.session.start", "group.lifecycle.create") {
		ev := LogEvent{UUID: "u-" + typ, EventType: typ, Outcome: Outcome{Result: "SUCCESS"}, Target: []Target{
			{ID: "00u1", Type: TargetUser, AlternateID: "ann@example.com"},
			{ID: "00g1", Type: TargetUserGroup, DisplayName: "AWS_Admins", AlternateID: "unknown"},
		}}
		var out []membership.Change
		reason, ok := expandEvent(&ev, func(string) bool { return true }, map[string]struct{}{}, &out)
		handled := slices.Contains(types, typ)
		if ok != handled || (!handled && reason != DropIrrelevantType) {
			t.Errorf("%s: expanded=%v reason=%q, handled=%v", typ, ok, reason, handled)
		}
	}
}
