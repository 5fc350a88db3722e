package syncer

import (
	"context"
	"errors"
	"fmt"

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
		if m.failed == "" && !m.change.Kind.Member() {
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
			case membership.KindUserDeactivate:
				// Okta sends a group.user_membership.remove for every group it drops a deactivated
				// user from (those events do the work), and the reconciler repairs the rest.
				// Deprovisioning the SCIM user is Okta's own AWS app's job, not this connector's.
				r.log.InfoContext(ctx, "user deactivated in Okta: nothing to do here (membership removals follow as their own events)",
					"user", c.Login, "user_id", c.UserID, "event_uuid", c.EventUUID)
				r.met.Count("ChangesSkipped", 1)
			}
		}
		if err == nil {
			continue
		}
		r.noteErr(ctx, err)
		r.met.Count("ChangesFailed", 1)
		r.log.ErrorContext(ctx, "change not applied", "op", string(c.Kind), "group", c.GroupName,
			"group_id", c.GroupID, "event_uuid", c.EventUUID, "error", err.Error())
		same := func(x membership.Change) bool {
			return x.EventUUID == c.EventUUID && x.Kind == c.Kind && x.GroupID == c.GroupID && x.UserID == c.UserID
		}
		// A rename or delete is the group's own change: it keeps its message (and so its
		// group's later changes) and is retried after the backoff.
		r.failWhere(same, failTransient, err.Error())
	}
}

// rename follows an Okta group rename: the SCIM group (cached by Okta id, else found by the
// event's name or the new name) gets the group's current name, read from Okta since the event
// does not carry it. A group renamed out of the selection is left alone.
func (r *run) rename(ctx context.Context, c membership.Change) error {
	audit := telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: c.EventUUID, Group: c.GroupName, GroupID: c.GroupID, Op: "rename"}
	var cur okta.Group
	err := ErrOktaUnconfigured
	if r.h.cfg.Okta != nil {
		cur, err = r.h.cfg.Okta.Group(r.work, c.GroupID)
	}
	if errors.Is(err, ErrOktaUnconfigured) {
		r.log.WarnContext(ctx, "group renamed in Okta, but renames need okta_api_token in the secret and OKTA_ORG_URL: acknowledged, not applied",
			"group", c.GroupName, "group_id", c.GroupID, "event_uuid", c.EventUUID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	}
	if errors.Is(err, okta.ErrNotFound) {
		r.log.InfoContext(ctx, "renamed group no longer exists in Okta: nothing to rename", "group", c.GroupName, "group_id", c.GroupID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read group %s from Okta: %w", c.GroupID, err)
	}
	dir := r.h.cfg.Dir
	g, found := dir.CachedGroup(c.GroupID)
	for _, name := range []string{c.GroupName, cur.Name} {
		if found || name == "" {
			break
		}
		g, err = r.h.cfg.SCIM.FindGroupByDisplayName(r.work, name)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, scim.ErrNotFound):
			return fmt.Errorf("find SCIM group %q: %w", name, err)
		}
	}
	switch {
	case !found:
		r.log.InfoContext(ctx, "renamed group not in SCIM: nothing to rename (the next add or the reconciler creates it)",
			"group", cur.Name, "group_id", c.GroupID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	case g.DisplayName == cur.Name:
		dir.SetGroup(c.GroupID, g)
		r.met.Count("ChangesSkipped", 1)
		return nil
	case !r.h.cfg.Selected(g.DisplayName):
		r.log.WarnContext(ctx, "SCIM group not selected: left alone", "group", g.DisplayName, "new_name", cur.Name, "group_id", c.GroupID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	case !r.h.cfg.Selected(cur.Name):
		dir.ForgetGroup(c.GroupID)
		r.log.WarnContext(ctx, "group renamed out of the selection in Okta: the SCIM group is left alone",
			"group", g.DisplayName, "new_name", cur.Name, "group_id", c.GroupID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	}
	audit.Group = cur.Name
	audit.Reason = "was " + g.DisplayName
	if r.h.cfg.DryRun {
		audit.Result = "dry_run"
		telemetry.Audit(r.log, audit)
		return nil
	}
	if err := r.h.cfg.SCIM.RenameGroup(r.work, g.ID, cur.Name); err != nil {
		if errors.Is(err, scim.ErrNotFound) {
			dir.ForgetGroup(c.GroupID)
		}
		return fmt.Errorf("rename SCIM group %q to %q: %w", g.DisplayName, cur.Name, err)
	}
	g.DisplayName = cur.Name
	dir.SetGroup(c.GroupID, g)
	audit.Result = "applied"
	telemetry.Audit(r.log, audit)
	r.met.Count("ChangesApplied", 1)
	return nil
}

// deleteGroup follows an Okta group delete. By default the AWS group stays (deleting it drops its
// permission-set assignments); DELETE_GROUPS=true deletes it, if its name is selected.
func (r *run) deleteGroup(ctx context.Context, c membership.Change) error {
	if !r.h.cfg.DeleteGroups {
		r.log.InfoContext(ctx, "group deleted in Okta: the AWS group is kept (DELETE_GROUPS=false)",
			"group", c.GroupName, "group_id", c.GroupID, "event_uuid", c.EventUUID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	}
	// The batch's membership changes of this group up to the delete are moot: they must not
	// re-create the group.
	if at, ok := r.deleted[c.GroupID]; !ok || c.Published.After(at) {
		r.deleted[c.GroupID] = c.Published
	}
	dir := r.h.cfg.Dir
	g, _, err := dir.Group(r.work, scimapply.GroupRef{ID: c.GroupID, Name: c.GroupName}, false)
	switch {
	case errors.Is(err, scimapply.ErrGroupNotFound):
		r.met.Count("ChangesSkipped", 1)
		return nil
	case errors.Is(err, scimapply.ErrNotSelected):
		r.log.WarnContext(ctx, "deleted group not selected: the SCIM group is left alone", "group", c.GroupName, "group_id", c.GroupID)
		r.met.Count("ChangesSkipped", 1)
		return nil
	case err != nil:
		return err
	}
	audit := telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: c.EventUUID, Group: g.DisplayName, GroupID: c.GroupID, Op: "delete_group"}
	if r.h.cfg.DryRun {
		audit.Result = "dry_run"
		telemetry.Audit(r.log, audit)
		return nil
	}
	if err := r.h.cfg.SCIM.DeleteGroup(r.work, g.ID); err != nil && !errors.Is(err, scim.ErrNotFound) {
		return fmt.Errorf("delete SCIM group %q: %w", g.DisplayName, err)
	}
	dir.ForgetGroup(c.GroupID)
	audit.Result = "applied"
	telemetry.Audit(r.log, audit)
	r.met.Count("ChangesApplied", 1)
	return nil
}
