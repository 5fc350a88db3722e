// Package membership holds the domain of okta-aws-sso-sync: a membership change as Okta reported
// it, the rules that collapse many changes into the newest per (group, user), and the plans that
// turn desired membership into SCIM adds and removes. It does no I/O.
package membership

import "time"

// Kind says what a Change does.
type Kind string

const (
	// KindAdd: group.user_membership.add. The user must be a member of the group.
	KindAdd Kind = "add"
	// KindRemove: group.user_membership.remove. The user must not be a member of the group.
	KindRemove Kind = "remove"
	// KindRename: group.profile.update. Okta's payload lacks the new name; the worker reads it
	// from the Okta API.
	KindRename Kind = "rename"
	// KindGroupDelete: group.lifecycle.delete.
	KindGroupDelete Kind = "group_delete"
	// KindUserDeactivate: user.lifecycle.deactivate. No group target; GroupID is empty. Okta
	// keeps a deactivated user's group memberships: what they mean is [LifecycleEffectOf].
	KindUserDeactivate Kind = "user_deactivate"
	// KindUserReactivate: user.lifecycle.reactivate or user.lifecycle.activate (the user is
	// ACTIVE again). No group target.
	KindUserReactivate Kind = "user_reactivate"
	// KindUserSuspend: user.lifecycle.suspend. No group target.
	KindUserSuspend Kind = "user_suspend"
	// KindUserUnsuspend: user.lifecycle.unsuspend. No group target.
	KindUserUnsuspend Kind = "user_unsuspend"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindAdd, KindRemove, KindRename, KindGroupDelete:
		return true
	}
	return k.User()
}

// Member reports whether the kind is a membership change of one user in one group.
func (k Kind) Member() bool { return k == KindAdd || k == KindRemove }

// User reports whether the kind is a user lifecycle change: one user, no group.
func (k Kind) User() bool {
	switch k {
	case KindUserDeactivate, KindUserReactivate, KindUserSuspend, KindUserUnsuspend:
		return true
	}
	return false
}

// Change is one fact from one Okta System Log event, as the hook enqueues it and the sync worker
// applies it. Published is the event's own time: ordering is decided by it, never by delivery or
// queue order.
type Change struct {
	EventUUID string    `json:"eventUuid"`
	Published time.Time `json:"published"`
	Kind      Kind      `json:"kind"`
	UserID    string    `json:"userId,omitempty"`    // Okta user id, 00u…
	Login     string    `json:"login,omitempty"`     // Okta login (User target alternateId)
	GroupID   string    `json:"groupId,omitempty"`   // Okta group id, 00g…
	GroupName string    `json:"groupName,omitempty"` // Okta group name as of the event
}
