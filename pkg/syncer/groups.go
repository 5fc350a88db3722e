package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// others applies renames, group deletes and user deactivations, oldest first, before the
// membership changes: a rename must reach the cache before the batch's adds look the group up by
// its new name (they would otherwise create a second group).
func (r *run) others(ctx context.Context) {
	var changes []membership.Change
	for _, m := range r.items {
		if m.ok() && !m.change.Kind.Member() {
			changes = append(changes, m.change)
		}
	}
	if len(changes) == 0 {
		return
	}
	for _, c := range membership.Collapse(changes).Others {
		var err error
		if werr := r.work.Err(); werr != nil {
			err = fmt.Errorf("deadline: not started before the Lambda timeout: %w", werr)
		} else {
			switch c.Kind {
			case membership.KindRename:
				err = r.rename(ctx, c)
			case membership.KindGroupDelete:
				err = r.deleteGroup(ctx, c)
			case membership.KindUserDeactivate, membership.KindUserReactivate, membership.KindUserSuspend, membership.KindUserUnsuspend:
				// Okta keeps a deactivated user's memberships (no removes follow): users.go.
				err = r.userLifecycle(ctx, c)
			}
		}
		if err == nil {
			continue
		}
		r.noteErr(ctx, err)
		r.met.Count(telemetry.MetricChangesFailed, 1)
		r.log.ErrorContext(ctx, "change not applied", "op", string(c.Kind), "group", c.GroupName,
			"group_id", c.GroupID, "event_uuid", c.EventUUID, "error", err.Error())
		same := func(x membership.Change) bool { return sameEvent(x, c) }
		// A rename or delete is the group's own change: it keeps its message and is retried
		// after the backoff, or, when it can never apply (an identity conflict), dead-lettered
		// with the reason. The group's later changes in this batch fail with it: they were
		// published against the group as renamed (or deleted).
		class := failTransient
		if errors.Is(err, scimapply.ErrIdentityConflict) {
			class = failPermanent
			r.met.Count(telemetry.MetricGroupIdentityConflicts, 1)
		}
		r.failWhere(same, class, err.Error())
		if c.GroupID != "" {
			later := func(x membership.Change) bool { return x.GroupID == c.GroupID && x.Published.After(c.Published) }
			r.failWhere(later, failTransient, fmt.Sprintf("an earlier %s of the group failed: %v", c.Kind, err))
		}
		if c.Kind == membership.KindGroupDelete && r.h.cfg.DeleteGroups {
			// The group's older membership changes wait for the delete (deleteGroup): retried with it.
			older := func(x membership.Change) bool {
				return x.GroupID == c.GroupID && x.Kind.Member() && !x.Published.After(c.Published)
			}
			r.failWhere(older, failTransient, fmt.Sprintf("retried with the group's delete, which failed: %v", err))
		}
	}
}

// rename follows an Okta group rename (group.profile.update, which does not carry the new name):
// the AWS group found by the identity rule gets the group's current name, read from Okta. A
// group renamed out of the selection is left alone. Without Okta access the rename is
// acknowledged; the group's next membership event carries the new name and renames it
// ([run.converge]).
func (r *run) rename(ctx context.Context, c membership.Change) error {
	var cur okta.Group
	err := ErrOktaUnconfigured
	if r.h.cfg.Okta != nil {
		cur, err = r.h.cfg.Okta.Group(r.work, c.GroupID)
	}
	if errors.Is(err, ErrOktaUnconfigured) {
		r.log.WarnContext(ctx, "group renamed in Okta; without okta_api_token and OKTA_ORG_URL the new name is applied with the group's next membership event",
			"group", c.GroupName, "group_id", c.GroupID, "event_uuid", c.EventUUID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	if errors.Is(err, okta.ErrNotFound) {
		r.log.InfoContext(ctx, "renamed group no longer exists in Okta: nothing to rename", "group", c.GroupName, "group_id", c.GroupID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read group %s from Okta: %w", c.GroupID, err)
	}
	readAt := r.h.cfg.Now()
	dir := r.h.cfg.Dir
	if !r.h.cfg.Selected(cur.Name) {
		dir.ForgetGroup(c.GroupID)
		r.log.WarnContext(ctx, "group renamed out of the selection in Okta: the AWS group is left alone",
			"group", c.GroupName, "new_name", cur.Name, "group_id", c.GroupID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	var res scimapply.Resolved
	err = scimapply.ErrGroupNotFound
	// Adoption by name tries the event's name, then the current one (once when they are equal).
	names := []string{c.GroupName}
	if cur.Name != c.GroupName {
		names = append(names, cur.Name)
	}
	for _, name := range names {
		if name == "" || !errors.Is(err, scimapply.ErrGroupNotFound) {
			continue
		}
		res, err = dir.Resolve(r.work, scimapply.GroupRef{ID: c.GroupID, Name: name}, scimapply.GroupQuery{FreshSince: r.started})
	}
	g := res.Group
	if err == nil && res.Adopted {
		r.auditAdoption(c.GroupID, g.DisplayName, res.DryRun, c.EventUUID)
	}
	switch {
	case errors.Is(err, scimapply.ErrDuplicateExternalID):
		// Several AWS groups carry the id: renaming one of them would be a guess. The rename is
		// dead-lettered with the reason (others(): permanent, GroupIdentityConflicts).
		return err
	case errors.Is(err, scimapply.ErrGroupNotFound), errors.Is(err, scimapply.ErrIdentityConflict), errors.Is(err, scimapply.ErrDeletedInOkta):
		// No AWS group is this group's: nothing to rename; its first add creates it by its
		// current name.
		r.log.InfoContext(ctx, "renamed group has no AWS group: nothing to rename (the next add creates it under the new name)",
			"group", cur.Name, "group_id", c.GroupID, "reason", err.Error())
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	case errors.Is(err, scimapply.ErrNotSelected):
		r.log.WarnContext(ctx, "AWS group not selected (renamed in AWS?): left alone", "new_name", cur.Name, "group_id", c.GroupID, "reason", err.Error())
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	case err != nil:
		return err
	case g.DisplayName == cur.Name:
		r.nameApplied(ctx, c.GroupID, cur.Name, readAt, c.EventUUID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	if err := r.renameTo(ctx, scimapply.GroupRef{ID: c.GroupID, Name: cur.Name}, g, readAt, c.EventUUID); err != nil {
		return err
	}
	r.met.Count(telemetry.MetricChangesApplied, 1)
	return nil
}

// duplicateExternalID settles a group whose Okta id several AWS groups carry (the identity rule:
// scimapply.UniqueGroup): nothing is written to any of them, since nothing says which one the
// administrator means. Adds and removes alike are dead-lettered with the reason, which names
// every SCIM group carrying the id; retrying cannot help until someone fixes the externalIds in
// AWS, and the DLQ keeps them for a redrive then. A removal still reaches a deprovisioned user
// through the revoke (users.go), which does not go through the identity rule.
func (r *run) duplicateExternalID(ctx context.Context, ref scimapply.GroupRef, pending []membership.Change, col membership.Collapsed, err error) {
	r.met.Count(telemetry.MetricGroupIdentityConflicts, 1)
	r.log.ErrorContext(ctx, "group identity conflict: several AWS groups carry this Okta group's id; its changes are dead-lettered, nothing written to any of them",
		"group", ref.Name, "group_id", ref.ID, "scim_group_ids", scimGroupIDs(err), "changes", len(pending), "error", err.Error())
	r.failChanges(pending, col, failPermanent, "group identity: "+err.Error())
}

// scimGroupIDs returns the SCIM ids a duplicated externalId names (nil for other errors).
func scimGroupIDs(err error) []string {
	var dup *scimapply.DuplicateExternalID
	if errors.As(err, &dup) {
		return dup.SCIMGroupIDs()
	}
	return nil
}

// auditAdoption records the adoption of an AWS group found by name (its externalId set to the
// Okta group's id), or, in a dry run, the adoption that would be made.
func (r *run) auditAdoption(groupID, name string, dryRun bool, eventUUID string) {
	rec := telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: eventUUID, Group: name, GroupID: groupID, Op: telemetry.OpAdoptGroup,
		Result: telemetry.ResultApplied, Reason: "AWS group without this Okta group's id found by name; externalId set"}
	if dryRun {
		rec.Result, rec.Reason = "dry_run", "AWS group without this Okta group's id found by name; externalId would be set"
	}
	telemetry.Audit(r.log, rec)
}

// sameEvent reports whether a and b are the same Okta event's change (one event's duplicates in a
// batch compare equal; its published time and names may be spelled differently).
func sameEvent(a, b membership.Change) bool {
	return a.EventUUID == b.EventUUID && a.Kind == b.Kind && a.GroupID == b.GroupID && a.UserID == b.UserID
}

// nameApplied records the group's name mark (ledger.NameKey): its AWS name is name as of at (best
// effort: without the mark a late event may rename once more, which the next newer one repairs).
func (r *run) nameApplied(ctx context.Context, groupID, name string, at time.Time, eventUUID string) {
	if r.h.cfg.DryRun || groupID == "" {
		return
	}
	if err := r.h.cfg.Ledger.Put(ctx, []ledger.Record{ledger.NameRecord(groupID, name, at, eventUUID)}); err != nil {
		r.log.WarnContext(ctx, "recording the group's applied name failed", "group", name, "group_id", groupID, "error", err.Error())
	}
}

// renameTo renames g (the AWS group of ref.ID) to ref.Name through the identity rule's swap
// handling, audits and records every rename made, and returns the error of the one asked for.
func (r *run) renameTo(ctx context.Context, ref scimapply.GroupRef, g scim.Group, at time.Time, eventUUID string) error {
	if r.h.cfg.DryRun {
		telemetry.Audit(r.log, telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: eventUUID, Group: ref.Name, GroupID: ref.ID,
			Op: telemetry.OpRename, Result: telemetry.ResultDryRun, Reason: "was " + g.DisplayName})
		return nil
	}
	done, err := r.h.cfg.Dir.Rename(r.work, ref, g)
	for _, d := range done {
		telemetry.Audit(r.log, telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: eventUUID, Group: d.To, GroupID: d.OktaGroupID,
			Op: telemetry.OpRename, Result: telemetry.ResultApplied, Reason: "was " + d.From})
		if d.OktaGroupID != ref.ID && !scimapply.IsTemporaryName(d.To) {
			// The other group of a swap got its current Okta name, read just now.
			r.nameApplied(ctx, d.OktaGroupID, d.To, r.h.cfg.Now(), eventUUID)
		}
	}
	if err != nil {
		return err
	}
	r.nameApplied(ctx, ref.ID, ref.Name, at, eventUUID)
	return nil
}

// converge renames g when the newest change of the batch carries a name for the group that is
// newer than the one applied (the group's name mark): a rename event lost, not followed
// without Okta access, or applied by a container that is gone. It returns the group as renamed.
func (r *run) converge(ctx context.Context, ref scimapply.GroupRef, g scim.Group, newest membership.Change) (scim.Group, error) {
	if ref.Name == "" || ref.Name == g.DisplayName || !r.h.cfg.Selected(ref.Name) {
		return g, nil
	}
	marks, err := r.h.cfg.Ledger.Get(r.work, []membership.Key{ledger.NameKey(ref.ID)})
	if err != nil {
		return g, fmt.Errorf("read the group's name mark: %w", err)
	}
	if m, ok := marks[ledger.NameKey(ref.ID)]; ok && !newest.Published.After(m.Published) {
		return g, nil // the event's name is older than the one applied
	}
	if err := r.renameTo(ctx, ref, g, newest.Published, newest.EventUUID); err != nil {
		if errors.Is(err, scimapply.ErrIdentityConflict) {
			// The group is still this group's (by externalId): its memberships are applied
			// under the old name, and the conflict is reported.
			r.met.Count(telemetry.MetricGroupIdentityConflicts, 1)
			r.log.ErrorContext(ctx, "group rename blocked by another group holding the name: memberships applied under the old name",
				"group", g.DisplayName, "new_name", ref.Name, "group_id", ref.ID, "error", err.Error())
			return g, nil
		}
		return g, err
	}
	if !r.h.cfg.DryRun {
		g.DisplayName = ref.Name
	}
	return g, nil
}

// deleteGroup follows an Okta group delete. By default the AWS group stays (deleting it drops its
// permission-set assignments); DELETE_GROUPS=true deletes it, if it carries this Okta group's id
// as externalId (never a group found by name: that may be a recreated group's) and is selected.
func (r *run) deleteGroup(ctx context.Context, c membership.Change) error {
	if !r.h.cfg.DeleteGroups {
		r.log.InfoContext(ctx, "group deleted in Okta: the AWS group is kept (DELETE_GROUPS=false)",
			"group", c.GroupName, "group_id", c.GroupID, "event_uuid", c.EventUUID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		return nil
	}
	// Once the delete is done (or nothing needs deleting), the batch's membership changes of
	// this group up to the delete are moot: they must not re-create the group, and they are
	// acknowledged with it. Not before: a delete that fails is retried, and those changes with
	// it (others()), so a remove is never acknowledged while the group and its member remain.
	done := func() {
		if at, ok := r.deleted[c.GroupID]; !ok || c.Published.After(at) {
			r.deleted[c.GroupID] = c.Published
		}
	}
	dir := r.h.cfg.Dir
	res, err := dir.Resolve(r.work, scimapply.GroupRef{ID: c.GroupID, Name: c.GroupName}, scimapply.GroupQuery{ExternalIDOnly: true, FreshSince: r.started})
	g := res.Group
	switch {
	case errors.Is(err, scimapply.ErrGroupNotFound):
		r.log.InfoContext(ctx, "deleted group has no AWS group carrying its id: nothing deleted", "group", c.GroupName, "group_id", c.GroupID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		done()
		return nil
	case errors.Is(err, scimapply.ErrNotSelected):
		r.log.WarnContext(ctx, "deleted group not selected: the SCIM group is left alone", "group", c.GroupName, "group_id", c.GroupID)
		r.met.Count(telemetry.MetricChangesSkipped, 1)
		done()
		return nil
	case err != nil:
		return err
	}
	audit := telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: c.EventUUID, Group: g.DisplayName, GroupID: c.GroupID, Op: telemetry.OpDeleteGroup}
	if r.h.cfg.DryRun {
		audit.Result = telemetry.ResultDryRun
		telemetry.Audit(r.log, audit)
		done()
		return nil
	}
	if err := r.h.cfg.SCIM.DeleteGroup(r.work, g.ID); err != nil && !errors.Is(err, scim.ErrNotFound) {
		return fmt.Errorf("delete SCIM group %q: %w", g.DisplayName, err)
	}
	dir.ForgetGroup(c.GroupID)
	done()
	audit.Result = telemetry.ResultApplied
	telemetry.Audit(r.log, audit)
	r.met.Count(telemetry.MetricChangesApplied, 1)
	return nil
}

// identityLookup adapts the worker's Okta access to the identity rule's question.
func identityLookup(o OktaGroups) scimapply.OktaGroups {
	return func(ctx context.Context, id string) (string, bool, error) {
		g, err := o.Group(ctx, id)
		switch {
		case errors.Is(err, ErrOktaUnconfigured):
			return "", false, scimapply.ErrOktaUnavailable
		case errors.Is(err, okta.ErrNotFound):
			return "", false, nil
		case err != nil:
			return "", false, err
		}
		return g.Name, true, nil
	}
}
