package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
)

// groupIndex is what one listing of SCIM groups taught the run. It is only ever used to find the
// SCIM groups of selected Okta groups (by their names), so groups outside the selection are read
// but never touched.
type groupIndex struct {
	mu         sync.Mutex // also serializes listings: one full listing per run at most
	byName     map[string]scim.Group
	byExternal map[string]scim.Group
	complete   bool
	pages      int
}

var errPageBudget = errors.New("page budget reached")

// list pages through SCIM groups (100 per page) for at most budget pages (< 1: all of them).
// Caller holds mu.
func (ix *groupIndex) listLocked(ctx context.Context, api SCIM, budget int) error {
	if ix.byName == nil {
		ix.byName, ix.byExternal = map[string]scim.Group{}, map[string]scim.Group{}
	}
	pages := 0
	err := api.ListGroups(ctx, func(page []scim.Group) error {
		pages++
		for _, g := range page {
			ix.byName[g.DisplayName] = g
			if g.ExternalID != "" {
				ix.byExternal[g.ExternalID] = g
			}
		}
		if budget > 0 && pages >= budget {
			return errPageBudget
		}
		return nil
	})
	ix.pages += pages
	switch {
	case errors.Is(err, errPageBudget):
		return nil
	case err != nil:
		return fmt.Errorf("list SCIM groups: %w", err)
	}
	ix.complete = true
	return nil
}

// resolveGroups finds the SCIM groups of the selected Okta groups before they are read. With
// several groups one listing (100 groups per request) is cheaper than one displayName lookup per
// group; its budget is the number of lookups it replaces, so it never costs more than those
// lookups. Groups the listing did not reach are looked up one by one when they are read.
func (r *run) resolveGroups(ctx context.Context) {
	pending := r.groupsIn(stateListed)
	if len(pending) < 2 {
		return
	}
	// No group worker runs yet: the index is not shared at this point.
	r.index.mu.Lock()
	defer r.index.mu.Unlock()
	if err := r.index.listLocked(ctx, r.cfg.SCIM, len(pending)); err != nil {
		r.noteSCIMErr(err)
		r.log.WarnContext(ctx, "listing SCIM groups failed: looking groups up one by one", "error", err.Error())
		return
	}
	for _, g := range pending {
		if sg, ok := r.index.byName[g.okta.Name]; ok {
			g.read.scim, g.read.inSCIM, g.read.resolved = sg, true, true
			r.dir.SetGroup(g.okta.ID, sg)
		} else if r.index.complete {
			g.read.resolved = true
		}
	}
}

// resolveGroup finds one group's SCIM group by displayName, when the listing did not.
func (r *run) resolveGroup(ctx context.Context, g *groupRun) error {
	if g.read.resolved {
		return nil
	}
	sg, _, err := r.dir.Group(ctx, g.ref, false)
	switch {
	case errors.Is(err, scimapply.ErrGroupNotFound):
		g.read.resolved = true
		return nil
	case err != nil:
		return err
	}
	g.read.scim, g.read.inSCIM, g.read.resolved = sg, true, true
	return nil
}

// errRenamed: a SCIM group carries the Okta group's id as externalId under another name.
var errRenamed = errors.New("renamed")

// ensureGroup makes sure a group missing from SCIM exists, creating it (displayName = Okta name,
// externalId = Okta id) unless this is a dry run. It first checks a complete listing of SCIM
// groups: a group created meanwhile is used, and a SCIM group that already carries this Okta
// group's id under another name (a rename whose event was lost) stops the creation, since a
// duplicate group would silently split the permission set assignments.
func (r *run) ensureGroup(ctx context.Context, g *groupRun) error {
	r.index.mu.Lock()
	var err error
	if !r.index.complete {
		err = r.index.listLocked(ctx, r.cfg.SCIM, 0)
	}
	byName, nameOK := r.index.byName[g.okta.Name]
	byExternal, externalOK := r.index.byExternal[g.okta.ID]
	r.index.mu.Unlock()
	if err != nil {
		return err
	}
	if nameOK {
		g.read.scim, g.read.inSCIM = byName, true
		r.dir.SetGroup(g.okta.ID, byName)
		return nil
	}
	if sg := byExternal; externalOK {
		return fmt.Errorf("%w: SCIM group %q (%s) carries this Okta group's id as externalId: the group was renamed in Okta and the rename did not reach AWS; rename the SCIM group to %q (the sync worker does on the next rename event) instead of creating a duplicate",
			errRenamed, sg.DisplayName, sg.ID, g.okta.Name)
	}
	if r.dryRun {
		g.read.scim = scim.Group{DisplayName: g.okta.Name, ExternalID: g.okta.ID}
		g.out.created = true
		r.log.InfoContext(ctx, "dry run: SCIM group would be created", "group", g.okta.Name, "group_id", g.okta.ID)
		return nil
	}
	sg, created, err := r.dir.CreateGroup(ctx, g.ref)
	if err != nil {
		return err
	}
	g.read.scim, g.read.inSCIM, g.out.created = sg, true, created
	if created {
		r.log.InfoContext(ctx, "SCIM group created", "group", sg.DisplayName, "group_id", g.okta.ID, "scim_group_id", sg.ID)
	}
	return nil
}
