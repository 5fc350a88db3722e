package membership

import "strings"

// Okta user statuses this package names. Okta's full list (Users API, UserStatus): STAGED,
// PROVISIONED, ACTIVE, RECOVERY, PASSWORD_EXPIRED, LOCKED_OUT, SUSPENDED, DEPROVISIONED.
const (
	StatusActive        = "ACTIVE"
	StatusSuspended     = "SUSPENDED"
	StatusDeprovisioned = "DEPROVISIONED" // "Deactivated" in the Admin Console
)

// Granted reports whether an Okta user in this status is granted AWS group membership. It is the
// one rule of the connector: the reconciler applies it to the members Okta lists for a group, the
// sync worker to user lifecycle events ([LifecycleOf]) and, through the user's status mark, to
// every membership add it applies later ([StatusPermits]).
//
//   - DEPROVISIONED (deactivated): not granted. Okta keeps a deactivated user's group memberships,
//     group rules included ("While deactivating a user will not remove the group memberships, the
//     user will get unassigned from all applications", support.okta.com "Can an Application Be
//     Assigned to a Deactivated User"; "Deactivated Users not Removed From Okta Groups
//     Automatically"), and sends no group.user_membership.remove, so the connector takes the
//     user out of AWS itself.
//   - SUSPENDED: granted. Okta blocks the user's sign-in to Okta and to its SAML apps (AWS's
//     access portal signs in through Okta), keeps the user's app and group memberships and
//     reinstates them on unsuspend; suspension is meant for a pause (leave of absence, contract
//     break) (help.okta.com "Suspend and unsuspend users"; Users API: "Suspended users can't sign
//     in to Okta. They can only be unsuspended or deactivated. Their group and app assignments are
//     retained."). Removing the AWS groups would gain nothing Okta's sign-in block does not give,
//     and without an Okta API token nothing could put them back on unsuspend.
//   - every other status, including ones Okta may add: granted (the reconciler always listed
//     such members as wanted).
//
// Case and surrounding space are ignored.
func Granted(status string) bool {
	return !strings.EqualFold(strings.TrimSpace(status), StatusDeprovisioned)
}

// Effect is what a user lifecycle change does to the user's AWS group memberships.
type Effect string

const (
	// EffectRevoke: the user leaves every selected AWS group (as a remove at the event's time).
	EffectRevoke Effect = "revoke"
	// EffectRestore: the user rejoins the selected groups Okta lists for it (as adds at the
	// event's time).
	EffectRestore Effect = "restore"
	// EffectKeep: memberships stay as they are.
	EffectKeep Effect = "keep"
)

// Lifecycle is what a user lifecycle kind means: the Okta status it moves the user from and to,
// and the effect [Granted] gives that move.
type Lifecycle struct {
	From, To string
	Effect   Effect
}

// transitions are the status moves of the lifecycle kinds. From is the status that matters for
// the effect: a deactivation revokes whatever it starts from (ACTIVE, SUSPENDED, …), and an
// activation restores from DEPROVISIONED, the case where memberships were taken away (an
// activation of a STAGED or PROVISIONED user restores what is already there, at no harm).
var transitions = map[Kind][2]string{
	KindUserDeactivate: {StatusActive, StatusDeprovisioned},
	KindUserReactivate: {StatusDeprovisioned, StatusActive},
	KindUserSuspend:    {StatusActive, StatusSuspended},
	KindUserUnsuspend:  {StatusSuspended, StatusActive},
}

// LifecycleOf returns what a user lifecycle kind does; ok is false for other kinds. The effect
// follows from [Granted] alone: a move to a status that is not granted revokes, a move from one
// that is not granted to one that is restores, anything else keeps. So with today's rule a
// deactivation revokes, a reactivation restores, and suspend and unsuspend keep.
func LifecycleOf(k Kind) (l Lifecycle, ok bool) {
	t, ok := transitions[k]
	if !ok {
		return Lifecycle{}, false
	}
	l = Lifecycle{From: t[0], To: t[1], Effect: EffectKeep}
	switch {
	case !Granted(l.To):
		l.Effect = EffectRevoke
	case !Granted(l.From):
		l.Effect = EffectRestore
	}
	return l, true
}

// StatusPermits reports whether a user's status mark (the mark of the newest user lifecycle
// change recorded for the user, pkg/ledger's StatusKey; found reports whether there is one)
// permits AWS group membership. It is the user-status rule of the sync worker and the reconciler
// (docs/SYNC.md, "The user-status rule"): a (group, user) is a member in AWS iff the newest Okta
// membership change of the pair is an add and the user's newest status is [Granted]. No mark,
// or a mark of a kind that is not a lifecycle kind, permits: membership then follows the
// membership changes alone, as it always did.
func StatusPermits(m Mark, found bool) bool {
	if !found || m.IsZero() {
		return true
	}
	l, ok := LifecycleOf(m.Kind)
	if !ok {
		return true
	}
	return Granted(l.To)
}
