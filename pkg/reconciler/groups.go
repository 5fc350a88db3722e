package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// groupIndex is one complete listing of the AWS groups, indexed by externalId (the identity rule
// of pkg/scimapply: an Okta group's AWS group carries its id). It finds the selected groups' AWS
// groups without a lookup each, and it is what shows the orphans.
type groupIndex struct {
	mu         sync.Mutex
	byExternal map[string][]scim.Group
	all        []scim.Group
	complete   bool
	pages      int
}

// listLocked pages through every AWS group (100 per page). Caller holds mu.
func (ix *groupIndex) listLocked(ctx context.Context, api SCIM) error {
	ix.byExternal, ix.all = map[string][]scim.Group{}, nil
	pages := 0
	err := api.ListGroups(ctx, func(page []scim.Group) error {
		pages++
		for _, g := range page {
			ix.all = append(ix.all, g)
			if g.ExternalID != "" {
				ix.byExternal[g.ExternalID] = append(ix.byExternal[g.ExternalID], g)
			}
		}
		return nil
	})
	ix.pages += pages
	if err != nil {
		return fmt.Errorf("list SCIM groups: %w", err)
	}
	ix.complete = true
	return nil
}

// resolveGroups lists the AWS groups once (100 per request) and gives every selected Okta group
// the AWS group carrying its id, by the identity rule's [scimapply.UniqueGroup]: when several
// carry it (a second group given the id by hand), none of them is the group's, and the group is
// skipped as an identity conflict: no adds, no removes, no adoption, no rename, whatever order
// AWS listed them in ([run.identityConflict]). Groups with no AWS group carrying their id are
// resolved one by one when read (adoption by name, [scimapply.Directory.Resolve]). The listing
// also finds the AWS groups that carry the id of a deleted Okta group ([run.findOrphans]).
func (r *run) resolveGroups(ctx context.Context) {
	pending := r.groupsIn(stateListed)
	if len(pending) == 0 {
		return
	}
	// No group worker runs yet: the index is not shared at this point.
	r.index.mu.Lock()
	defer r.index.mu.Unlock()
	if err := r.index.listLocked(ctx, r.api); err != nil {
		r.noteSCIMErr(err)
		r.log.WarnContext(ctx, "listing SCIM groups failed: looking groups up one by one, orphans not checked", "error", err.Error())
		return
	}
	for _, g := range pending {
		use, err := scimapply.UniqueGroup(g.okta.ID, r.index.byExternal[g.okta.ID])
		switch {
		case errors.Is(err, scimapply.ErrGroupNotFound):
			continue
		case err != nil:
			r.identityConflict(ctx, g, err)
			continue
		}
		if err := r.dir.Check(use); err != nil {
			// Renamed out of the selection in AWS: left alone (read() skips it with the reason).
			continue
		}
		g.read.scim, g.read.inSCIM, g.read.resolved = use, true, true
		r.dir.SetGroup(g.okta.ID, use)
	}
}

// identityConflict skips g because of an identity conflict (several AWS groups carrying its id,
// or its name held by another Okta group's AWS group): nothing is written for it. It is counted
// (GroupIdentityConflicts, alarm) and listed in the summary's identityConflicts and skipped.
func (r *run) identityConflict(ctx context.Context, g *groupRun, err error) {
	r.met.Count(telemetry.MetricGroupIdentityConflicts, 1)
	c := IdentityConflict{Group: g.okta.Name, GroupID: g.okta.ID, Reason: err.Error()}
	var dup *scimapply.DuplicateExternalID
	var other *scimapply.IdentityConflict
	switch {
	case errors.As(err, &dup):
		c.SCIMGroupIDs = dup.SCIMGroupIDs()
	case errors.As(err, &other):
		c.SCIMGroupIDs = []string{other.SCIMGroupID}
	}
	r.conflictMu.Lock()
	r.conflicts = append(r.conflicts, c)
	r.conflictMu.Unlock()
	r.log.ErrorContext(ctx, "group identity conflict: the group is not reconciled, nothing is written for it",
		"group", g.okta.Name, "group_id", g.okta.ID, "scim_group_ids", c.SCIMGroupIDs, "error", err.Error())
	r.skipFor(ctx, g, "identity conflict", err)
}

// resolveGroup finds one group's AWS group by the identity rule, when the listing did not.
func (r *run) resolveGroup(ctx context.Context, g *groupRun) error {
	if g.read.resolved {
		return nil
	}
	res, err := r.dir.Resolve(ctx, g.ref, scimapply.GroupQuery{})
	switch {
	case errors.Is(err, scimapply.ErrGroupNotFound):
		g.read.resolved = true
		return nil
	case err != nil:
		return err
	}
	g.read.scim, g.read.inSCIM, g.read.resolved = res.Group, true, true
	r.adopted(ctx, g, res)
	return nil
}

// adopted notes that the identity rule adopted (or, in a dry run, would adopt) an AWS group found
// by name for g.
func (r *run) adopted(ctx context.Context, g *groupRun, res scimapply.Resolved) {
	if !res.Adopted {
		return
	}
	g.out.adopted = true
	msg := "AWS group adopted: found by name without externalId, it now carries the Okta group's id"
	if res.DryRun {
		msg = "dry run: AWS group would be adopted (found by name without externalId; its externalId would be set)"
	}
	r.log.InfoContext(ctx, msg, "group", res.Group.DisplayName, "group_id", g.okta.ID, "scim_group_id", res.Group.ID)
}

// ensureGroup makes sure a group missing from AWS exists, creating it (displayName = Okta name,
// externalId = Okta id) unless this is a dry run. Creation goes through the identity rule: a
// group created meanwhile, or an unowned one with the name, is adopted; one that belongs to
// another Okta group is not taken (an identity conflict skips the group).
func (r *run) ensureGroup(ctx context.Context, g *groupRun) error {
	if r.dryRun {
		g.read.scim = scim.Group{DisplayName: g.okta.Name, ExternalID: g.okta.ID}
		g.out.created = true
		r.log.InfoContext(ctx, "dry run: SCIM group would be created", "group", g.okta.Name, "group_id", g.okta.ID)
		return nil
	}
	res, err := r.dir.Resolve(ctx, g.ref, scimapply.GroupQuery{Create: true})
	if err != nil {
		return err
	}
	g.read.scim, g.read.inSCIM, g.out.created = res.Group, true, res.Created
	r.adopted(ctx, g, res)
	if res.Created {
		r.log.InfoContext(ctx, "SCIM group created", "group", res.Group.DisplayName, "group_id", g.okta.ID, "scim_group_id", res.Group.ID)
	}
	return nil
}

// follow renames a group's AWS group to its current Okta name (read by this run) when they
// differ: a rename event lost, or made while the sync worker had no Okta access. Swaps resolve
// through the identity rule's temporary name. A failed rename is reported; the group's
// memberships are still applied (the AWS group is this group's by its externalId).
func (r *run) follow(ctx context.Context, g *groupRun) {
	if !g.read.inSCIM || g.read.scim.DisplayName == g.okta.Name {
		return
	}
	if r.dryRun {
		g.out.renameFrom, g.out.renameTo = g.read.scim.DisplayName, g.okta.Name
		r.log.InfoContext(ctx, "dry run: AWS group would be renamed", "group", g.read.scim.DisplayName, "new_name", g.okta.Name, "group_id", g.okta.ID)
		return
	}
	from := g.read.scim.DisplayName
	done, err := r.dir.Rename(ctx, g.ref, g.read.scim)
	var recs []ledger.Record
	for _, d := range done {
		r.log.InfoContext(ctx, "AWS group renamed", "group", d.From, "new_name", d.To, "group_id", d.OktaGroupID)
		if d.OktaGroupID == g.okta.ID && err == nil {
			g.read.scim.DisplayName = d.To
			g.out.renamed = true
			g.out.renameFrom, g.out.renameTo = from, d.To
		}
		if !scimapply.IsTemporaryName(d.To) {
			recs = append(recs, ledger.NameRecord(d.OktaGroupID, d.To, g.read.readAt.Add(-markSkew), "reconcile/"+r.runID))
		}
	}
	if err != nil {
		r.noteSCIMErr(err)
		if errors.Is(err, scimapply.ErrIdentityConflict) {
			r.met.Count(telemetry.MetricGroupIdentityConflicts, 1)
		}
		r.addErr("group %q: rename of its AWS group %q failed: %v", g.okta.Name, g.read.scim.DisplayName, err)
		r.log.ErrorContext(ctx, "AWS group rename failed: memberships applied under the old name", "group", g.read.scim.DisplayName,
			"new_name", g.okta.Name, "group_id", g.okta.ID, "error", err.Error())
	}
	if r.cfg.Ledger != nil && len(recs) > 0 {
		// The time of this run's read of Okta (less the skew): a membership event published
		// after it, carrying a newer name, still renames the group.
		if err := r.cfg.Ledger.Put(ctx, recs); err != nil {
			r.log.WarnContext(ctx, "recording the group's applied name failed", "group", g.okta.Name, "error", err.Error())
		}
	}
}

// maxOrphanChecks bounds the Okta reads a run spends on AWS groups that carry the id of an Okta
// group that is not selected (is it deleted?); the rest wait for the next runs.
const maxOrphanChecks = 50

// findOrphans reports the selected-looking AWS groups that carry the id of an Okta group Okta no
// longer has: they keep their permission-set assignments and members, and no event or run ever
// writes to them again. An Okta group that exists under a name outside the selection is not an
// orphan (renamed out of the selection: its AWS group is left alone on purpose).
func (r *run) findOrphans(ctx context.Context) {
	if !r.index.complete || len(r.in.Groups) > 0 {
		return
	}
	checks := 0
	for _, sg := range r.index.all {
		if !strings.HasPrefix(sg.ExternalID, "00g") || r.selectedIDs[sg.ExternalID] || r.dir.Check(sg) != nil {
			continue
		}
		if checks >= maxOrphanChecks {
			r.log.InfoContext(ctx, "orphan check budget reached: the rest is checked by the next runs", "checked", checks)
			return
		}
		checks++
		_, err := r.current().Group(ctx, sg.ExternalID)
		switch {
		case errors.Is(err, okta.ErrNotFound):
			r.orphan(ctx, sg, fmt.Sprintf("carries the id of Okta group %s, which Okta no longer has", sg.ExternalID))
		case err != nil:
			r.log.WarnContext(ctx, "orphan check: reading the Okta group failed", "group", sg.DisplayName, "okta_group_id", sg.ExternalID, "error", err.Error())
		}
	}
}

// orphan reports an AWS group no Okta group maps to (it is never written).
func (r *run) orphan(ctx context.Context, sg scim.Group, reason string) {
	r.orphans = append(r.orphans, OrphanGroup{Group: sg.DisplayName, SCIMGroupID: sg.ID, ExternalID: sg.ExternalID, Reason: reason})
	r.log.WarnContext(ctx, "orphan AWS group: no Okta group maps to it, so nothing keeps its members or assignments current; delete it or fix its externalId in AWS",
		"group", sg.DisplayName, "scim_group_id", sg.ID, "external_id", sg.ExternalID, "reason", reason)
}
