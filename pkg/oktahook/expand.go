package oktahook

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// System Log event types the sync acts on; every other type is acknowledged and ignored.
//
// User lifecycle events carry one User target (id 00u…, alternateId = login) and no group. Okta
// logs user.lifecycle.reactivate only when a provisioning job or an import reactivates a user; an
// admin activating a deactivated user in the Admin Console is logged as user.lifecycle.activate
// (support.okta.com, "User Reactivation Appears as an Activation Event in the System Log"), so both
// mean "ACTIVE again" here.
const (
	EventMembershipAdd    = "group.user_membership.add"
	EventMembershipRemove = "group.user_membership.remove"
	EventGroupUpdate      = "group.profile.update"
	EventGroupDelete      = "group.lifecycle.delete"
	EventUserDeactivate   = "user.lifecycle.deactivate"
	EventUserReactivate   = "user.lifecycle.reactivate"
	EventUserActivate     = "user.lifecycle.activate"
	EventUserSuspend      = "user.lifecycle.suspend"
	EventUserUnsuspend    = "user.lifecycle.unsuspend"
)

var kinds = map[string]membership.Kind{
	EventMembershipAdd:    membership.KindAdd,
	EventMembershipRemove: membership.KindRemove,
	EventGroupUpdate:      membership.KindRename,
	EventGroupDelete:      membership.KindGroupDelete,
	EventUserDeactivate:   membership.KindUserDeactivate,
	EventUserReactivate:   membership.KindUserReactivate,
	EventUserActivate:     membership.KindUserReactivate,
	EventUserSuspend:      membership.KindUserSuspend,
	EventUserUnsuspend:    membership.KindUserUnsuspend,
}

// HandledEventTypes returns the event types the sync acts on, sorted: the one list of them. The
// Okta event hook's subscription is derived from it (cmd/okta-hook), so a type added to kinds is
// subscribed on the next `make okta-hook` and an unsubscribed type shows in `make okta-hook-check`.
func HandledEventTypes() []string { return slices.Sorted(maps.Keys(kinds)) }

// DropReason says why an event produced no change.
type DropReason string

const (
	// DropIrrelevantType: an event type the sync does not act on.
	DropIrrelevantType DropReason = "irrelevant_type"
	// DropNotSuccess: outcome.result is not SUCCESS (the change did not happen in Okta).
	DropNotSuccess DropReason = "not_success"
	// DropNotSelected: none of the event's groups is selected (GROUP_PREFIX / GROUP_REGEX).
	DropNotSelected DropReason = "not_selected"
	// DropMissingTarget: the event lacks a User or UserGroup target it needs.
	DropMissingTarget DropReason = "missing_target"
	// DropDuplicate: the same event uuid appeared earlier in the same delivery.
	DropDuplicate DropReason = "duplicate"
)

// Drop records one event that produced no change.
type Drop struct {
	EventUUID string
	EventType string
	Reason    DropReason
}

// Result is the expansion of one delivery.
type Result struct {
	// Events is the number of System Log events in the delivery.
	Events int
	// Changes in delivery order: one per (event, user, group) for membership events, one per
	// (event, group) for group events, one per (event, user) for user lifecycle events.
	Changes []membership.Change
	// Dropped counts dropped events by reason; Drops lists them in delivery order.
	Dropped map[DropReason]int
	Drops   []Drop
}

// DroppedTotal is the number of events that produced no change.
func (r Result) DroppedTotal() int { return len(r.Drops) }

// LogDrops writes one debug line per dropped event. It names the event, never its actor or
// targets' logins: the reason and uuid are enough to find the event in Okta's System Log.
func (r Result) LogDrops(ctx context.Context, l *slog.Logger) {
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	for _, d := range r.Drops {
		l.LogAttrs(ctx, slog.LevelDebug, "event dropped",
			slog.String("event_uuid", d.EventUUID),
			slog.String("event_type", d.EventType),
			slog.String("reason", string(d.Reason)))
	}
}

// Expand turns the events of a delivery into membership changes. An event yields changes only if
// its type is relevant, its outcome is SUCCESS, and it has the targets its kind needs; group
// events yield changes only for groups whose name selected accepts. User lifecycle events have no
// group and are never filtered by selection (the worker finds the user's selected groups). Targets are matched by type, never by position, and
// an event with several User (or UserGroup) targets yields one change for each.
// A nil selected selects no group.
func Expand(env Envelope, selected func(groupName string) bool) Result {
	if selected == nil {
		selected = func(string) bool { return false }
	}
	res := Result{
		Events:  len(env.Data.Events),
		Changes: make([]membership.Change, 0, len(env.Data.Events)),
	}
	seen := make(map[string]struct{}, len(env.Data.Events))
	for i := range env.Data.Events {
		ev := &env.Data.Events[i]
		reason, ok := expandEvent(ev, selected, seen, &res.Changes)
		if ok {
			continue
		}
		if res.Dropped == nil {
			res.Dropped = make(map[DropReason]int)
		}
		res.Dropped[reason]++
		res.Drops = append(res.Drops, Drop{EventUUID: ev.UUID, EventType: ev.EventType, Reason: reason})
	}
	return res
}

// expandEvent appends the event's changes to out, or reports why there are none.
func expandEvent(ev *LogEvent, selected func(string) bool, seen map[string]struct{}, out *[]membership.Change) (DropReason, bool) {
	kind, relevant := kinds[ev.EventType]
	if !relevant {
		return DropIrrelevantType, false
	}
	if !strings.EqualFold(ev.Outcome.Result, "SUCCESS") {
		return DropNotSuccess, false
	}
	if _, dup := seen[ev.UUID]; dup {
		return DropDuplicate, false
	}

	base := membership.Change{EventUUID: ev.UUID, Published: ev.Published.UTC(), Kind: kind}
	users := targets(ev.Target, TargetUser)
	groups := targets(ev.Target, TargetUserGroup)

	var n int
	switch {
	case kind.User():
		for _, u := range users {
			c := base
			c.UserID, c.Login = u.ID, u.AlternateID
			*out = append(*out, c)
			n++
		}
	case kind.Member():
		if len(users) == 0 || len(groups) == 0 {
			return DropMissingTarget, false
		}
		for _, g := range groups {
			if !selected(g.DisplayName) {
				continue
			}
			for _, u := range users {
				c := base
				c.UserID, c.Login = u.ID, u.AlternateID
				c.GroupID, c.GroupName = g.ID, g.DisplayName
				*out = append(*out, c)
				n++
			}
		}
		if n == 0 {
			return DropNotSelected, false
		}
	default: // rename, group delete
		if len(groups) == 0 {
			return DropMissingTarget, false
		}
		// A rename is filtered on the name in the payload. A rename that moves a group into or out
		// of the selection may be missed here; the reconciler repairs that.
		for _, g := range groups {
			if !selected(g.DisplayName) {
				continue
			}
			c := base
			c.GroupID, c.GroupName = g.ID, g.DisplayName
			*out = append(*out, c)
			n++
		}
		if n == 0 {
			return DropNotSelected, false
		}
	}
	if n == 0 {
		return DropMissingTarget, false
	}
	seen[ev.UUID] = struct{}{}
	return "", true
}

// targets returns the usable targets of one type: a User needs an id; a UserGroup needs an id
// and a name, since selection and SCIM matching go by name.
func targets(all []Target, typ string) []Target {
	var out []Target
	for _, t := range all {
		if t.Type != typ || t.ID == "" {
			continue
		}
		if typ == TargetUserGroup && t.DisplayName == "" {
			continue
		}
		out = append(out, t)
	}
	return out
}
