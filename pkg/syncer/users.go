package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// User lifecycle events (docs/SYNC.md, "User lifecycle" and "The user-status rule"). Okta keeps a
// deactivated user's group memberships and sends no group.user_membership.remove for them, so the
// event itself must take the user out of AWS. What each event does follows from one rule,
// membership.Granted, which the reconciler applies to the members it lists: membership.LifecycleOf
// says a deactivation revokes, a reactivation restores, suspend and unsuspend keep.
//
// The AWS state a (group G, user U) must reach is: member iff the newest Okta membership change of
// (G, U) is an add and U's newest Okta status is granted. Membership marks hold the first half;
// the user's status mark (ledger.StatusKey) the second. Every lifecycle event writes U's status
// mark first, before any PATCH (a claim with the ledger's newest-published-wins condition): when a
// newer status is recorded already, the event is stale and acknowledged without a SCIM request.
// Every membership add of U the worker applies later, published before or after the lifecycle
// event, is checked against that mark (members(), membership.StatusPermits): a deprovisioned user
// is not added back, whatever the delivery order or the token setting.
//
// A revoke removes U from every managed AWS group SCIM says U is in (ListGroups filter
// members.value): a group is managed when its current AWS displayName is selected, the rule of
// every path that writes to AWS. Okta's list of U's groups is not used for a revoke: it would miss
// an AWS group whose Okta group was renamed out of the selection, and without a token there is
// none. The removes bypass membership-mark ordering (a newer add mark must not keep a deprovisioned
// user in AWS) and write no membership mark: the status mark is their ordering memory. A
// redelivered deactivation lists SCIM again (one GET, no PATCH when nothing is left).
//
// A restore needs Okta's list, since nothing in AWS remembers the removed memberships: with
// OKTA_ORG_URL and okta_api_token, GET /api/v1/users/{id}/groups gives each group's Okta id, and
// an add published at the event's time, with its uuid, joins the batch's membership changes for
// each selected group (collapse, ledger, identity rule, PATCHes, audit, marks; a derived add that
// fails on its own is isolated like any membership change). The status mark the restore wrote
// first permits them. Without Okta access it is logged and acknowledged.

// OktaUserGroups lists the groups an Okta user is a member of (okta.Reader.UserGroups). When
// Config.Okta also implements it, a restore (reactivation) adds the user to the selected groups
// Okta lists; otherwise a restore cannot be applied. Return ErrOktaUnconfigured when the secret
// has no okta_api_token.
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
	won, err := r.claimStatus(c)
	if err != nil {
		return fmt.Errorf("record the status of user %s in the ledger: %w", c.UserID, err)
	}
	if !won {
		r.log.InfoContext(ctx, "user lifecycle change is stale: a newer status of the user is recorded, nothing removed or restored",
			"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID,
			"published", c.Published.UTC().Format(time.RFC3339Nano))
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	switch l.Effect {
	case membership.EffectRevoke:
		return r.revoke(ctx, c, l)
	case membership.EffectRestore:
		return r.restore(ctx, c, l)
	}
	r.log.InfoContext(ctx, "user lifecycle change: Okta status "+l.To+" keeps AWS group membership, nothing changes",
		"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
	r.met.Count(telemetry.MetricChangesSkipped, 1)
	return nil
}

// claimStatus writes c's status mark and reports whether it won (no newer status is recorded). A
// dry run writes nothing: it reads the mark and keeps c's in the run's memory, so the batch's adds
// are checked as they would be.
func (r *run) claimStatus(c membership.Change) (won bool, err error) {
	rec := ledger.StatusRecord(c)
	if r.h.cfg.DryRun {
		marks, err := r.h.cfg.Ledger.Get(r.work, []ledger.Key{rec.Key})
		if err != nil {
			return false, err
		}
		if m, ok := marks[rec.Key]; ok && m.Published.UnixMilli() > c.Published.UnixMilli() {
			return false, nil
		}
	} else {
		written, err := r.h.cfg.Ledger.PutReport(r.work, []ledger.Record{rec})
		if err != nil {
			return false, err
		}
		if !written[0] {
			return false, nil
		}
	}
	if old, ok := r.status[c.UserID]; !ok || !old.Published.After(rec.Mark.Published) {
		r.status[c.UserID] = rec.Mark
	}
	return true, nil
}

// statusOf returns the user's status mark: the newer of the ledger's (among marks) and the one
// this run claimed.
func (r *run) statusOf(marks map[ledger.Key]membership.Mark, userID string) (membership.Mark, bool) {
	m, found := marks[ledger.StatusKey(userID)]
	if own, ok := r.status[userID]; ok && (!found || !own.Published.Before(m.Published)) {
		return own, true
	}
	return m, found
}

// revoke takes the user out of every managed AWS group SCIM says it is in.
func (r *run) revoke(ctx context.Context, c membership.Change, l membership.Lifecycle) error {
	ref := scimapply.UserRef{ID: c.UserID, Login: c.Login}
	res := r.h.cfg.Dir.ResolveUsers(r.work, []scimapply.UserRef{ref})
	if err := res.Errors[c.UserID]; err != nil {
		r.noteErr(ctx, err)
		return fmt.Errorf("find user %s in SCIM: %w", c.UserID, err)
	}
	u, found := res.Users[c.UserID]
	if !found {
		r.log.InfoContext(ctx, "user "+l.To+" in Okta is not in SCIM: no AWS group to leave; its status is recorded, so no later membership add puts it into one",
			"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	groups, err := r.h.cfg.SCIM.ListUserGroups(r.work, u.ID)
	if errors.Is(err, scim.ErrNotFound) {
		// AWS answers 404 to a members filter naming a user it does not have: deleted meanwhile.
		r.h.cfg.Dir.ForgetUser(ref)
		groups, err = nil, nil
	}
	if err != nil {
		r.noteErr(ctx, err)
		return fmt.Errorf("list the AWS groups of user %s: %w", c.UserID, err)
	}
	var managed []scim.Group
	for _, g := range groups {
		// Groups without the prefix are never read-modified-written; every selected one is
		// managed, linked to an Okta group or not, its Okta group selected or not.
		if r.h.cfg.Selected(g.DisplayName) {
			managed = append(managed, g)
		}
	}
	r.log.InfoContext(ctx, "user "+l.To+" in Okta: leaving every managed AWS group SCIM lists for it",
		"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID,
		"aws_groups", len(groups), "managed", len(managed))
	if len(managed) == 0 {
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	applier := scimapply.NewApplier(r.h.cfg.SCIM, r.h.cfg.Dir, r.log, r.met, scimapply.DryRun(r.h.cfg.DryRun), scimapply.WithClock(r.h.cfg.Now))
	member := scimapply.Member{SCIMID: u.ID, UserID: c.UserID, Login: c.Login, EventUUID: c.EventUUID, Published: c.Published}
	var errs []error
	var removed []scimapply.Write
	for _, g := range managed {
		target := scimapply.Target{Okta: scimapply.GroupRef{ID: g.ExternalID, Name: g.DisplayName}, SCIM: g}
		for _, res := range applier.Apply(r.work, target, scimapply.Plan{Removes: []scimapply.Member{member}}) {
			switch {
			case res.Err != nil && !errors.Is(res.Err, scimapply.ErrGroupGone):
				r.noteErr(ctx, res.Err)
				errs = append(errs, fmt.Errorf("remove user %s from AWS group %q: %w", c.UserID, g.DisplayName, res.Err))
			case res.Err == nil && g.ExternalID != "" && !r.h.cfg.DryRun:
				removed = append(removed, scimapply.Write{Target: target, Member: member, Op: membership.KindRemove,
					Mark: ledger.Record{Key: membership.Key{GroupID: g.ExternalID, UserID: c.UserID}}})
			}
		}
	}
	// The single-writer rule (docs/SYNC.md): a newer status recorded while these removes were in
	// flight (a reactivation in the other container, its restore already applied) must not be
	// undone by them. Read the marks and converge to what they say (scimapply.Settle): with the
	// deactivation still the newest status, nothing more happens.
	for _, res := range applier.Settle(ctx, r.h.cfg.Ledger, removed) {
		if res.Err != nil {
			r.noteErr(ctx, res.Err)
			errs = append(errs, fmt.Errorf("settle the remove of user %s from AWS group %q: %w", c.UserID, res.Target.SCIM.DisplayName, res.Err))
		}
	}
	// A failed remove fails the lifecycle message: retried after the backoff, it lists SCIM
	// again and removes what is left (its status mark is already recorded).
	return errors.Join(errs...)
}

// restore puts the user back into the selected groups Okta lists for it.
func (r *run) restore(ctx context.Context, c membership.Change, l membership.Lifecycle) error {
	groups, err := r.oktaUserGroups(c.UserID)
	switch {
	case errors.Is(err, errNoUserGroups), errors.Is(err, ErrOktaUnconfigured):
		r.log.WarnContext(ctx, "user "+l.To+" again in Okta, but restoring its AWS group memberships needs okta_api_token in the secret and OKTA_ORG_URL: none restored (add the user to its groups again in Okta, or configure the token)",
			"op", string(c.Kind), "user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	case errors.Is(err, okta.ErrNotFound):
		r.log.InfoContext(ctx, "reactivated user no longer exists in Okta: nothing to restore",
			"user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
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
		r.met.Count(telemetry.MetricChangesSkipped, 1)
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
	same := func(it *item) bool { return it.ok() && sameEvent(it.change, c) }
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
