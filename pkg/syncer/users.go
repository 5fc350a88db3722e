package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
)

// User lifecycle events (docs/SYNC.md, "User lifecycle"). Okta keeps a deactivated user's group
// memberships and sends no group.user_membership.remove for them, so the event itself must take
// the user out of AWS. What each event does follows from one rule, membership.Granted, which the
// reconciler applies to the members it lists: membership.LifecycleOf says a deactivation revokes,
// a reactivation restores, suspend and unsuspend keep.
//
// A lifecycle change published at T is applied as membership changes of the user's groups
// published at T, with the event's uuid: a remove per group for a revoke, an add per group for a
// restore. They join the batch's membership changes (r.items, and the items of the lifecycle
// change's own messages) and take the path every membership change takes: collapse with the
// batch's other changes of the same (group, user), the ordering ledger, the identity rule for the
// group, the batch's user resolution, PATCHes of at most 100 values, audit records, ledger marks
// and the failure classes of retry.go. So a late add published before T is stale against the
// remove's mark, an add published after T applies, and redelivering the lifecycle event costs no
// PATCH. A derived change that fails transiently fails its lifecycle message (retried with the
// backoff, reading the groups again); one that fails on its own is isolated like any membership
// change. The lifecycle message is acknowledged only when each of its removes or adds was applied,
// was already true, or is isolated or dead-lettered as a change of its own.
//
// The user's groups come from Okta when the worker can read them (OKTA_ORG_URL and
// okta_api_token): GET /api/v1/users/{id}/groups gives each group's Okta id, the ledger key. A
// revoke without Okta access (or when Okta no longer knows the user, or rejects the token) asks
// SCIM instead: the groups of the SCIM user (ListGroups filter members.value), keyed by the
// group's externalId, which is the Okta group id by the identity rule. A selected AWS group
// without one (not linked to an Okta group yet) gets the remove directly, through the same
// Applier, with no ordering mark: no Okta group id, no key. A restore needs Okta's list, since
// nothing in AWS remembers the removed memberships; without Okta access it is logged and
// acknowledged.

// OktaUserGroups lists the groups an Okta user is a member of (okta.Reader.UserGroups). When
// Config.Okta also implements it, user lifecycle events are applied to the groups Okta lists;
// otherwise a revoke is applied to the groups SCIM lists and a restore cannot be applied. Return
// ErrOktaUnconfigured when the secret has no okta_api_token.
type OktaUserGroups interface {
	UserGroups(ctx context.Context, userID string) ([]okta.Group, error)
}

// errNoUserGroups: the worker has no way to read a user's groups from Okta.
var errNoUserGroups = errors.New("no Okta API to read the user's groups")

// userLifecycle applies one user lifecycle change (deactivate, reactivate, suspend, unsuspend).
// An error fails it (transient: retried after the backoff).
func (r *run) userLifecycle(ctx context.Context, c membership.Change) error {
	l, ok := membership.LifecycleOf(c.Kind)
	if !ok {
		return fmt.Errorf("%s is not a user lifecycle change", c.Kind)
	}
	switch l.Effect {
	case membership.EffectRevoke:
		return r.revoke(ctx, c, l)
	case membership.EffectRestore:
		return r.restore(ctx, c, l)
	}
	r.log.InfoContext(ctx, "user lifecycle change: Okta status "+l.To+" keeps AWS group membership, nothing changes",
		"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
	r.met.Count("ChangesSkipped", 1)
	return nil
}

// revoke takes the user out of every selected AWS group it is in.
func (r *run) revoke(ctx context.Context, c membership.Change, l membership.Lifecycle) error {
	groups, err := r.oktaUserGroups(c.UserID)
	switch {
	case err == nil:
		r.deriveFromOkta(ctx, c, membership.KindRemove, groups, "user "+l.To+" in Okta: leaving its selected AWS groups (groups from Okta)")
		return nil
	case errors.Is(err, okta.ErrUnauthorized):
		// A rejected token must not keep a deactivated user in AWS until someone fixes it.
		r.log.ErrorContext(ctx, "Okta rejected the API token reading a deactivated user's groups: removing the user from what SCIM lists",
			"user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID, "error", err.Error())
	case errors.Is(err, okta.ErrNotFound):
		r.log.InfoContext(ctx, "user no longer exists in Okta: removing it from the AWS groups SCIM lists",
			"user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
	case errors.Is(err, errNoUserGroups), errors.Is(err, ErrOktaUnconfigured):
	default:
		return fmt.Errorf("read the groups of user %s from Okta: %w", c.UserID, err)
	}
	return r.revokeFromSCIM(ctx, c, l)
}

// revokeFromSCIM removes the user from the selected AWS groups SCIM says it is in.
func (r *run) revokeFromSCIM(ctx context.Context, c membership.Change, l membership.Lifecycle) error {
	lister := r.h.cfg.SCIM
	ref := scimapply.UserRef{ID: c.UserID, Login: c.Login}
	res := r.h.cfg.Dir.ResolveUsers(r.work, []scimapply.UserRef{ref})
	if err := res.Errors[c.UserID]; err != nil {
		return fmt.Errorf("find user %s in SCIM: %w", c.UserID, err)
	}
	u, found := res.Users[c.UserID]
	if !found {
		r.log.InfoContext(ctx, "user "+l.To+" in Okta is not in SCIM: no AWS group to leave",
			"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	}
	groups, err := lister.ListUserGroups(r.work, u.ID)
	if errors.Is(err, scim.ErrNotFound) {
		// AWS answers 404 to a members filter naming a user it does not have: deleted meanwhile.
		r.h.cfg.Dir.ForgetUser(ref)
		groups, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("list the AWS groups of user %s: %w", c.UserID, err)
	}
	var linked []scimapply.GroupRef
	var unlinked []scim.Group
	for _, g := range groups {
		if !r.h.cfg.Selected(g.DisplayName) {
			continue // never touched
		}
		if g.ExternalID == "" {
			unlinked = append(unlinked, g)
			continue
		}
		// The remove goes to the group the identity rule finds for this Okta id; that must be
		// this group (an externalId AWS holds twice resolves to one of them).
		got, err := r.h.cfg.Dir.Resolve(r.work, scimapply.GroupRef{ID: g.ExternalID}, scimapply.GroupQuery{FreshSince: r.started})
		switch {
		case err == nil && got.Group.ID == g.ID:
			// No name: the remove must not claim an Okta name for the group (it has only AWS's).
			linked = append(linked, scimapply.GroupRef{ID: g.ExternalID})
		case err == nil, errors.Is(err, scimapply.ErrGroupNotFound), errors.Is(err, scimapply.ErrNotSelected):
			unlinked = append(unlinked, g)
		default:
			r.noteErr(ctx, err)
			return fmt.Errorf("resolve AWS group %q: %w", g.DisplayName, err)
		}
	}
	r.log.InfoContext(ctx, "user "+l.To+" in Okta: leaving its selected AWS groups (groups from SCIM, no Okta API)",
		"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID,
		"aws_groups", len(groups), "linked", len(linked), "unlinked", len(unlinked))
	if len(linked)+len(unlinked) == 0 {
		r.met.Count("ChangesSkipped", 1)
	}
	if err := r.removeUnlinked(ctx, c, u, unlinked); err != nil {
		return err
	}
	r.derive(c, membership.KindRemove, linked)
	return nil
}

// removeUnlinked removes the user from AWS groups that carry no Okta group id, through the
// Applier the membership changes use. Without a group id there is no ordering key, so no mark is
// written (a membership add published before the deactivation, delivered later, would add the
// user again: docs/SYNC.md, "User lifecycle").
func (r *run) removeUnlinked(ctx context.Context, c membership.Change, u scim.User, groups []scim.Group) error {
	if len(groups) == 0 {
		return nil
	}
	applier := scimapply.NewApplier(r.h.cfg.SCIM, r.h.cfg.Dir, r.log, r.met, scimapply.DryRun(r.h.cfg.DryRun), scimapply.WithClock(r.h.cfg.Now))
	member := scimapply.Member{SCIMID: u.ID, UserID: c.UserID, Login: c.Login, EventUUID: c.EventUUID, Published: c.Published}
	for _, g := range groups {
		r.log.WarnContext(ctx, "AWS group carries no Okta group id: the user is removed without an ordering mark",
			"group", g.DisplayName, "scim_group_id", g.ID, "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		target := scimapply.Target{Okta: scimapply.GroupRef{Name: g.DisplayName}, SCIM: g}
		for _, res := range applier.Apply(r.work, target, scimapply.Plan{Removes: []scimapply.Member{member}}) {
			if res.Err != nil && !errors.Is(res.Err, scimapply.ErrGroupGone) {
				r.noteErr(ctx, res.Err)
				return fmt.Errorf("remove user %s from AWS group %q: %w", c.UserID, g.DisplayName, res.Err)
			}
		}
	}
	return nil
}

// restore puts the user back into the selected groups Okta lists for it.
func (r *run) restore(ctx context.Context, c membership.Change, l membership.Lifecycle) error {
	groups, err := r.oktaUserGroups(c.UserID)
	switch {
	case errors.Is(err, errNoUserGroups), errors.Is(err, ErrOktaUnconfigured):
		r.log.WarnContext(ctx, "user "+l.To+" again in Okta, but restoring its AWS group memberships needs okta_api_token in the secret and OKTA_ORG_URL: none restored (add the user to its groups again in Okta, or configure the token)",
			"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	case errors.Is(err, okta.ErrNotFound):
		r.log.InfoContext(ctx, "reactivated user no longer exists in Okta: nothing to restore",
			"user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	case err != nil:
		return fmt.Errorf("read the groups of user %s from Okta: %w", c.UserID, err)
	}
	r.deriveFromOkta(ctx, c, membership.KindAdd, groups, "user "+l.To+" again in Okta: restoring the selected AWS groups Okta lists")
	return nil
}

// deriveFromOkta applies kind to the user's selected groups among those Okta lists, logging msg
// with the counts (nothing selected: the lifecycle change is skipped).
func (r *run) deriveFromOkta(ctx context.Context, c membership.Change, kind membership.Kind, groups []okta.Group, msg string) {
	refs := r.selectedOkta(groups)
	r.log.InfoContext(ctx, msg, "op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID,
		"okta_groups", len(groups), "selected", len(refs))
	if len(refs) == 0 {
		r.met.Count("ChangesSkipped", 1)
	}
	r.derive(c, kind, refs)
}

// oktaUserGroups reads the user's groups from Okta, or errNoUserGroups.
func (r *run) oktaUserGroups(userID string) ([]okta.Group, error) {
	o, ok := r.h.cfg.Okta.(OktaUserGroups)
	if !ok {
		return nil, errNoUserGroups
	}
	return o.UserGroups(r.work, userID)
}

// selectedOkta returns the selected groups, by their Okta name.
func (r *run) selectedOkta(groups []okta.Group) []scimapply.GroupRef {
	var out []scimapply.GroupRef
	for _, g := range groups {
		if g.ID != "" && r.h.cfg.Selected(g.Name) {
			out = append(out, scimapply.GroupRef{ID: g.ID, Name: g.Name})
		}
	}
	return out
}

// derive adds, for each group, a membership change of kind published at c's time with c's uuid
// to the batch's changes and to every message holding c, so members() applies it and settle()
// maps its outcome to those messages.
func (r *run) derive(c membership.Change, kind membership.Kind, groups []scimapply.GroupRef) {
	if len(groups) == 0 {
		return
	}
	same := func(it *item) bool { return it.failed == "" && sameEvent(it.change, c) }
	for _, rc := range r.records {
		if !slices.ContainsFunc(rc.items, same) {
			continue
		}
		for _, g := range groups {
			d := membership.Change{EventUUID: c.EventUUID, Published: c.Published, Kind: kind,
				UserID: c.UserID, Login: c.Login, GroupID: g.ID, GroupName: g.Name}
			it := &item{change: d}
			rc.items = append(rc.items, it)
			r.items = append(r.items, it)
		}
	}
}
