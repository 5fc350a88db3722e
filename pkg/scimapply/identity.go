package scimapply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
)

// The identity rule, in one place for the sync worker and the reconciler.
//
// An Okta group's AWS group is the one whose externalId is the Okta group id. Names change (Okta
// renames, an AWS administrator's rename, a group deleted and recreated under its old name, two
// Okta groups with one name), ids do not, so a name is never enough to write to a group:
//
//   - Lookup is by externalId (AWS documents the `externalId eq` ListGroups filter), and it
//     must find exactly one group: AWS does not keep externalId unique (an administrator can
//     give a second group an Okta group's id by hand; see scim.Client.FindGroupsByExternalID),
//     and when two or more carry it nothing says which one the administrator means, so none is
//     written for that Okta group: [ErrDuplicateExternalID], decided by [UniqueGroup] for the
//     filter's answer and for the reconciler's listing alike, whatever order AWS lists them in.
//     Only a revoke (a deprovisioned user leaving every managed AWS group, pkg/syncer) still
//     removes from them: access removal is never blocked by a conflict. A
//     displayName match is used only to adopt a selected AWS group that has no externalId yet (it
//     then gets this Okta group's id), or one whose externalId names an Okta group that Okta says
//     is gone. A displayName match that belongs to another live Okta group is never written to:
//     [ErrIdentityConflict].
//   - A group is created only when no AWS group has its externalId and Okta, when configured,
//     confirms the group still exists and gives its current name; an Okta read error fails the
//     creation instead ([Directory.Resolve] with Create).
//   - A delete finds its group by externalId only ([GroupQuery.ExternalIDOnly]).
//   - The cache holds Okta id → SCIM group id; whether a group may be touched is decided on the
//     displayName AWS holds now (re-read once per caller-defined epoch, [GroupQuery.FreshSince]),
//     never on a cached name, so a group an AWS administrator renamed out of the selection is
//     left alone.
//   - Renames go through [Directory.Rename], which resolves a name held by another Okta group's
//     AWS group that Okta renamed too (a swap) through a temporary name.

// OktaGroups tells what Okta says about a group now: its current name, or exists false when Okta
// answers 404 (deleted). An implementation without an Okta API returns [ErrOktaUnavailable].
type OktaGroups func(ctx context.Context, oktaGroupID string) (name string, exists bool, err error)

// Identity errors callers branch on.
var (
	// ErrOktaUnavailable: no Okta API is configured (no okta_api_token / OKTA_ORG_URL).
	ErrOktaUnavailable = errors.New("no Okta API configured")
	// ErrIdentityConflict: the AWS group found by name belongs to another Okta group (its
	// externalId), which Okta does not say is gone. It is never written to.
	ErrIdentityConflict = errors.New("AWS group belongs to another Okta group")
	// ErrDeletedInOkta: the Okta group no longer exists; nothing is created for it.
	ErrDeletedInOkta = errors.New("group deleted in Okta")
	// ErrDuplicateExternalID: two or more AWS groups carry the Okta group's id as externalId
	// ([DuplicateExternalID]); none of them is written for it. errors.Is(err,
	// ErrIdentityConflict) is true too.
	ErrDuplicateExternalID = errors.New("several AWS groups carry one Okta group's id")
)

// UniqueGroup is the identity rule's answer for the AWS groups that carry oktaGroupID as
// externalId, from the externalId filter or from a listing of every group: the one group, or
// ErrGroupNotFound when none does, or a [DuplicateExternalID] naming all of them (sorted by SCIM
// id, so the answer and its message do not depend on the order AWS listed them in) when several
// do. Groups carrying another externalId are ignored (a filter that compares loosely).
func UniqueGroup(oktaGroupID string, carrying []scim.Group) (scim.Group, error) {
	var gs []scim.Group
	for _, g := range carrying {
		if g.ExternalID == oktaGroupID && oktaGroupID != "" && !slices.ContainsFunc(gs, func(x scim.Group) bool { return x.ID == g.ID }) {
			gs = append(gs, g)
		}
	}
	switch len(gs) {
	case 0:
		return scim.Group{}, ErrGroupNotFound
	case 1:
		return gs[0], nil
	}
	slices.SortFunc(gs, func(a, b scim.Group) int { return strings.Compare(a.ID, b.ID) })
	return scim.Group{}, &DuplicateExternalID{OktaGroupID: oktaGroupID, Groups: gs}
}

// DuplicateExternalID is an [ErrDuplicateExternalID]: Groups (sorted by SCIM id) all carry
// OktaGroupID as externalId.
type DuplicateExternalID struct {
	OktaGroupID string
	Groups      []scim.Group
}

func (e *DuplicateExternalID) Error() string {
	parts := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		parts[i] = fmt.Sprintf("%q (%s)", g.DisplayName, g.ID)
	}
	return fmt.Sprintf("%d AWS groups carry Okta group %s as externalId: %s; it cannot be told which one is this Okta group's, so none is written for it: in IAM Identity Center, clear or correct the externalId of every group here that is not this Okta group's",
		len(e.Groups), e.OktaGroupID, strings.Join(parts, ", "))
}

// SCIMGroupIDs returns the SCIM ids of the groups carrying the id, sorted.
func (e *DuplicateExternalID) SCIMGroupIDs() []string {
	ids := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		ids[i] = g.ID
	}
	return ids
}

// Is makes errors.Is(err, ErrDuplicateExternalID) and errors.Is(err, ErrIdentityConflict) true.
func (e *DuplicateExternalID) Is(target error) bool {
	return target == ErrDuplicateExternalID || target == ErrIdentityConflict
}

// WithOktaGroups lets the directory ask Okta whether a group exists and how it is named now
// (adoption of an orphan, creation, swaps). Without it those decisions stay conservative.
func WithOktaGroups(f OktaGroups) DirectoryOption {
	return func(d *Directory) { d.okta = f }
}

// UseOktaGroups sets the Okta lookup after construction (the sync worker wires its Okta access
// this way); see [WithOktaGroups]. Call it before the directory is used.
func (d *Directory) UseOktaGroups(f OktaGroups) { d.okta = f }

// GroupQuery says how [Directory.Resolve] may find a group.
type GroupQuery struct {
	// Create makes the group when none exists (CREATE_GROUPS and a membership add).
	Create bool
	// ExternalIDOnly finds the group by externalId only: no adoption by name (deletes).
	ExternalIDOnly bool
	// FreshSince: a cached group read from AWS at or after this time is used without a new
	// read (one read per invocation or run). Zero: always re-read.
	FreshSince time.Time
}

// Resolved is a group found by [Directory.Resolve].
type Resolved struct {
	Group   scim.Group
	Created bool
	Adopted bool // the group got this Okta group's externalId by this call
	// DryRun: the directory's SCIM client is read-only (scim.ReadOnly), so an adoption was
	// planned, not made: Group shows the externalId it would get, AWS still has none.
	DryRun bool
}

// Group resolves ref with a fresh read of AWS (see [Directory.Resolve]).
func (d *Directory) Group(ctx context.Context, ref GroupRef, create bool) (scim.Group, bool, error) {
	res, err := d.Resolve(ctx, ref, GroupQuery{Create: create})
	return res.Group, res.Created, err
}

// Resolve finds the AWS group of an Okta group by the identity rule above. A group whose current
// AWS displayName is not selected is never returned (ErrNotSelected).
func (d *Directory) Resolve(ctx context.Context, ref GroupRef, q GroupQuery) (Resolved, error) {
	g, err := d.byIdentity(ctx, ref, q.FreshSince)
	if err == nil {
		return Resolved{Group: g}, d.checkSelected(g)
	}
	if !errors.Is(err, ErrGroupNotFound) || q.ExternalIDOnly {
		return Resolved{}, err
	}
	if d.selected(ref.Name) {
		res, err := d.adopt(ctx, ref)
		if !errors.Is(err, ErrGroupNotFound) {
			return res, err
		}
	}
	if !q.Create {
		return Resolved{}, fmt.Errorf("group %q (%s): %w", ref.Name, ref.ID, ErrGroupNotFound)
	}
	if d.okta != nil {
		name, exists, oerr := d.okta(ctx, ref.ID)
		switch {
		case errors.Is(oerr, ErrOktaUnavailable):
		case oerr != nil:
			return Resolved{}, fmt.Errorf("read group %s from Okta before creating its AWS group (not created): %w", ref.ID, oerr)
		case !exists:
			return Resolved{}, fmt.Errorf("group %q (%s): %w", ref.Name, ref.ID, ErrDeletedInOkta)
		case name != ref.Name:
			// The event predates a rename: the group is created (or adopted) under its name now.
			ref.Name = name
			if res, err := d.adopt(ctx, ref); !errors.Is(err, ErrGroupNotFound) {
				return res, err
			}
		}
	}
	return d.create(ctx, ref)
}

// create makes the AWS group of an Okta group (displayName = name, externalId = Okta id) after a
// lookup found none; a 409 (created meanwhile) goes through the adoption rule, so a group of
// another Okta group is never taken.
func (d *Directory) create(ctx context.Context, ref GroupRef) (Resolved, error) {
	if !d.selected(ref.Name) {
		return Resolved{}, fmt.Errorf("group %q: %w", ref.Name, ErrNotSelected)
	}
	g, err := d.api.CreateGroup(ctx, scim.Group{DisplayName: ref.Name, ExternalID: ref.ID}, nil)
	if errors.Is(err, scim.ErrConflict) {
		// Created meanwhile (the reconciler, another container), or the name is another's.
		res, aerr := d.adopt(ctx, ref)
		if errors.Is(aerr, ErrGroupNotFound) {
			return Resolved{}, fmt.Errorf("create SCIM group %q: 409 but no group of that name found: %w", ref.Name, err)
		}
		return res, aerr
	}
	if err != nil {
		return Resolved{}, fmt.Errorf("create SCIM group %q: %w", ref.Name, err)
	}
	d.remember(ref.ID, g)
	return Resolved{Group: g, Created: true}, nil
}

// byIdentity finds the group whose externalId is ref.ID: the cached one when it was read at or
// after freshSince, else by the externalId filter, decided by [UniqueGroup]. The filter costs what
// a GET of the cached id costs (one read), and unlike it sees a second group given the id since
// the cache was filled, so a warm container and a cold one decide alike. ErrGroupNotFound when
// no group carries the id; a [DuplicateExternalID] when several do.
func (d *Directory) byIdentity(ctx context.Context, ref GroupRef, freshSince time.Time) (scim.Group, error) {
	d.mu.Lock()
	c, ok := d.groups[ref.ID]
	d.mu.Unlock()
	if ok && !freshSince.IsZero() && !c.readAt.Before(freshSince) {
		return c.group, nil
	}
	if ref.ID == "" {
		return scim.Group{}, ErrGroupNotFound
	}
	gs, err := d.api.FindGroupsByExternalID(ctx, ref.ID)
	if err != nil {
		return scim.Group{}, fmt.Errorf("find SCIM group by externalId %s: %w", ref.ID, err)
	}
	g, err := UniqueGroup(ref.ID, gs)
	if err != nil {
		// Deleted, re-pointed at another Okta group, or duplicated: nothing cached is used.
		d.ForgetGroup(ref.ID)
		return scim.Group{}, err
	}
	d.remember(ref.ID, g)
	return g, nil
}

// adopt looks at the selected AWS group named ref.Name: no externalId yet, or the externalId of an
// Okta group that Okta says is gone → it becomes ref's (externalId set); ref's own id (a lookup
// that lagged) → it is ref's; another live Okta group's id → ErrIdentityConflict, or
// ErrDeletedInOkta when it is ref's own group that is gone.
func (d *Directory) adopt(ctx context.Context, ref GroupRef) (Resolved, error) {
	g, err := d.api.FindGroupByDisplayName(ctx, ref.Name)
	switch {
	case errors.Is(err, scim.ErrNotFound):
		return Resolved{}, ErrGroupNotFound
	case err != nil:
		return Resolved{}, fmt.Errorf("find SCIM group %q: %w", ref.Name, err)
	}
	if g.ExternalID == ref.ID {
		d.remember(ref.ID, g)
		return Resolved{Group: g}, d.checkSelected(g)
	}
	if g.ExternalID != "" {
		conflict := &IdentityConflict{Name: g.DisplayName, SCIMGroupID: g.ID, Owner: g.ExternalID, OktaGroupID: ref.ID}
		if d.okta == nil {
			return Resolved{}, conflict
		}
		_, exists, err := d.okta(ctx, g.ExternalID)
		switch {
		case errors.Is(err, ErrOktaUnavailable):
			return Resolved{}, conflict
		case err != nil:
			return Resolved{}, fmt.Errorf("AWS group %q carries Okta group %s's id; reading it from Okta failed: %w", g.DisplayName, g.ExternalID, err)
		case exists:
			// Before blaming the other group: is it this one that is gone (a late event)?
			if _, self, err := d.okta(ctx, ref.ID); err == nil && !self {
				return Resolved{}, fmt.Errorf("group %q (%s): %w", ref.Name, ref.ID, ErrDeletedInOkta)
			}
			return Resolved{}, conflict
		}
		// The owner is gone in Okta: the group is adopted.
	}
	if !d.selected(g.DisplayName) {
		return Resolved{}, fmt.Errorf("SCIM group %q: %w", g.DisplayName, ErrNotSelected)
	}
	if scim.IsReadOnly(d.api) {
		// A dry run: the adoption is planned, not made (the read-only client would refuse it).
		g.ExternalID = ref.ID
		d.remember(ref.ID, g)
		return Resolved{Group: g, Adopted: true, DryRun: true}, nil
	}
	if err := d.api.SetGroupExternalID(ctx, g.ID, ref.ID); err != nil {
		return Resolved{}, fmt.Errorf("adopt SCIM group %q (set externalId %s): %w", g.DisplayName, ref.ID, err)
	}
	g.ExternalID = ref.ID
	d.remember(ref.ID, g)
	return Resolved{Group: g, Adopted: true}, nil
}

// IdentityConflict is an [ErrIdentityConflict]: the AWS group named Name belongs to Owner.
type IdentityConflict struct {
	Name        string // the AWS group's displayName
	SCIMGroupID string
	Owner       string // its externalId: another Okta group
	OktaGroupID string // the group the change was for
}

func (e *IdentityConflict) Error() string {
	return fmt.Sprintf("AWS group %q (%s) carries Okta group %s as externalId, not %s: it is never written to for %s (two Okta groups with one name, or a name reused; rename one in Okta or fix the AWS group's externalId)",
		e.Name, e.SCIMGroupID, e.Owner, e.OktaGroupID, e.OktaGroupID)
}

// Is makes errors.Is(err, ErrIdentityConflict) true.
func (e *IdentityConflict) Is(target error) bool { return target == ErrIdentityConflict }

// Renamed is one displayName change [Directory.Rename] made.
type Renamed struct {
	OktaGroupID string
	From, To    string
}

// tempMarker is part of the temporary name of a group moved aside during a swap.
const tempMarker = " (renaming "

// tempName is the name a group holding a name another group needs is moved to for a moment;
// unique because Okta group ids are.
func tempName(name, oktaGroupID string) string { return name + tempMarker + oktaGroupID + ")" }

// IsTemporaryName reports whether name is one [Directory.Rename] gave a group for the moment of a
// swap (not its Okta name: no name mark is written for it).
func IsTemporaryName(name string) bool { return baseName(name) != "" }

// baseName is the name a temporary name was made from ("" when it is not one).
func baseName(name string) string {
	i := strings.LastIndex(name, tempMarker)
	if i < 0 || !strings.HasSuffix(name, ")") {
		return ""
	}
	return name[:i]
}

// Check returns ErrNotSelected unless the AWS group's current name is selected (the rule
// [Directory.Resolve] applies, for callers that found the group in a listing).
func (d *Directory) Check(g scim.Group) error { return d.checkSelected(g) }

// checkSelected returns ErrNotSelected unless the AWS group's current name is selected (a group
// moved aside during a swap counts under the name it was moved from).
func (d *Directory) checkSelected(g scim.Group) error {
	if d.selected(g.DisplayName) {
		return nil
	}
	if b := baseName(g.DisplayName); b != "" && d.selected(b) {
		return nil
	}
	return fmt.Errorf("SCIM group %q: %w", g.DisplayName, ErrNotSelected)
}

// Rename gives g, the AWS group of Okta group ref.ID, the name ref.Name. If another AWS group
// holds that name (409) and carries the id of an Okta group that Okta has renamed too (two groups
// swapped names, or a chain), that group is moved to a temporary name, g is renamed, and the other
// gets its own current Okta name when that name is free and selected; otherwise it stays at the
// temporary name until its own rename arrives. Every rename made is returned, also on error.
// A name held by an AWS group without externalId, or by another live Okta group that is still
// named so, is an [ErrIdentityConflict].
func (d *Directory) Rename(ctx context.Context, ref GroupRef, g scim.Group) ([]Renamed, error) {
	if !d.selected(ref.Name) {
		return nil, fmt.Errorf("rename to %q: %w", ref.Name, ErrNotSelected)
	}
	var done []Renamed
	rename := func(id, okta, from, to string) error {
		if err := d.api.RenameGroup(ctx, id, to); err != nil {
			return err
		}
		done = append(done, Renamed{OktaGroupID: okta, From: from, To: to})
		return nil
	}
	err := rename(g.ID, ref.ID, g.DisplayName, ref.Name)
	if err == nil {
		g.DisplayName = ref.Name
		d.remember(ref.ID, g)
		return done, nil
	}
	if errors.Is(err, scim.ErrNotFound) {
		d.ForgetGroup(ref.ID)
	}
	if !errors.Is(err, scim.ErrConflict) {
		return done, fmt.Errorf("rename SCIM group %q to %q: %w", g.DisplayName, ref.Name, err)
	}
	holder, ferr := d.api.FindGroupByDisplayName(ctx, ref.Name)
	if ferr != nil {
		return done, fmt.Errorf("rename SCIM group %q to %q: 409, and finding the holder of the name failed: %w", g.DisplayName, ref.Name, ferr)
	}
	conflict := &IdentityConflict{Name: holder.DisplayName, SCIMGroupID: holder.ID, Owner: holder.ExternalID, OktaGroupID: ref.ID}
	if holder.ExternalID == "" || holder.ExternalID == ref.ID || d.okta == nil {
		return done, conflict
	}
	other, exists, oerr := d.okta(ctx, holder.ExternalID)
	switch {
	case errors.Is(oerr, ErrOktaUnavailable):
		return done, conflict
	case oerr != nil:
		return done, fmt.Errorf("rename SCIM group %q to %q: the name is held by Okta group %s's AWS group, and reading it from Okta failed: %w",
			g.DisplayName, ref.Name, holder.ExternalID, oerr)
	case !exists:
		return done, fmt.Errorf("%w: the Okta group it belongs to is deleted (an orphan: delete or rename it in AWS)", conflict)
	case other == ref.Name:
		return done, conflict
	case !d.selected(other):
		return done, fmt.Errorf("%w: its Okta group is now named %q, outside the selection, so it is left alone", conflict, other)
	}
	// A swap or a chain: move the holder aside, take the name, then give the holder its own.
	aside := tempName(ref.Name, holder.ExternalID)
	if err := rename(holder.ID, holder.ExternalID, holder.DisplayName, aside); err != nil {
		return done, fmt.Errorf("rename SCIM group %q to %q: moving the holder of the name aside failed: %w", g.DisplayName, ref.Name, err)
	}
	d.ForgetGroup(holder.ExternalID)
	if err := rename(g.ID, ref.ID, g.DisplayName, ref.Name); err != nil {
		return done, fmt.Errorf("rename SCIM group %q to %q after moving the holder aside: %w", g.DisplayName, ref.Name, err)
	}
	g.DisplayName = ref.Name
	d.remember(ref.ID, g)
	if err := rename(holder.ID, holder.ExternalID, aside, other); err == nil {
		holder.DisplayName = other
		d.remember(holder.ExternalID, holder)
	}
	// A failure here leaves the holder at the temporary name; it keeps its identity (externalId)
	// and its own rename event, or the reconciler, gives it its name.
	return done, nil
}
