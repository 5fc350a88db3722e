package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// groupState is how far the run got with a group.
type groupState int

const (
	stateListed     groupState = iota // selected, not started
	stateSkipped                      // could not be reconciled (read error, ambiguity, …)
	stateNotReached                   // not started before the deadline; the next run does it
	stateRead                         // read from Okta and SCIM
	stateDone                         // planned and applied (or found in sync)
)

// groupRun is one selected Okta group in one run: who it is, how far the run got with it, and
// three values that travel together through the phases: what was read, the plan made from it, and
// what applying the plan did.
type groupRun struct {
	okta           okta.Group
	ref            scimapply.GroupRef
	lastReconciled time.Time
	sameName       int // selected Okta groups with this name (1: the name is unambiguous)

	state      groupState
	skipReason string
	skipCause  error // the error that skipped the group; nil when a rule did (ambiguity, CREATE_GROUPS=false)

	read groupRead    // resolveGroups, read
	plan groupPlan    // plan, deferToEvents, safety
	out  groupOutcome // apply
}

// groupRead is what the run read about a group: its SCIM group and both sides' members.
type groupRead struct {
	scim     scim.Group
	inSCIM   bool // the SCIM group exists
	resolved bool // inSCIM is known

	readAt        time.Time
	listed        int         // members Okta listed, every status (compared with okta.UsersCount)
	members       []okta.User // Okta members that should be in SCIM
	deprovisioned int
	scimMembers   []scim.User
}

// groupPlan is the drift found in a group and what the run decided to do about it.
type groupPlan struct {
	rawAdds, rawRemoves int // drift found
	adds, removes       []scimapply.Member
	desired, actual     int
	unknown             []scimapply.UserRef
	linkErrors          int
	deferred            int
	blocked             int
	blockedMembers      []scimapply.Member // the removals withheld (blocked counts them)
	blockReason         string
	suspicious          bool
	partial             bool // Okta listed fewer members than it counts: removals withheld
}

// groupOutcome is what applying a group's plan did.
type groupOutcome struct {
	created, renamed       bool
	adopted                bool   // an AWS group without externalId found by name got (or would get) this group's id
	renameFrom, renameTo   string // the AWS group's rename to the Okta name, made or (dry run) planned
	added, removed, failed int
}

// run is the state of one invocation.
type run struct {
	cfg        *Config
	log        *slog.Logger
	met        *telemetry.Metrics
	in         Input
	start      time.Time
	runID      string
	dryRun     bool
	readCutoff time.Time // zero: no deadline

	// api is the run's SCIM client: cfg.SCIM, or its read-only view in a dry run.
	api      SCIM
	readOnly *scim.ReadOnly // set in a dry run
	initErr  error

	dir     *scimapply.Directory
	applier *scimapply.Applier
	index   groupIndex

	oktaMu      sync.Mutex
	oktaReaders []oktaUse

	groups           []*groupRun // processing order
	selectedIDs      map[string]bool
	orphans          []OrphanGroup
	conflictMu       sync.Mutex
	conflicts        []IdentityConflict // groups skipped for an identity conflict
	links            *links
	selected         int
	verdict          membership.RunVerdict // the removal rules' decision for the run (safety)
	unknownUsers     map[string]string     // Okta user id → login
	scimUnauthorized atomic.Bool
	oktaUnauthorized atomic.Bool

	errMu sync.Mutex
	errs  []string
}

type oktaUse struct {
	rd   Okta
	base int64
}

func newRun(h *Handler, log *slog.Logger, in Input, start time.Time, runID string) *run {
	cfg := &h.cfg
	r := &run{
		cfg: cfg, log: log, in: in, start: start, runID: runID,
		met:          telemetry.NewMetrics(cfg.Namespace),
		dryRun:       cfg.DryRun || in.DryRun,
		unknownUsers: map[string]string{},
	}
	r.api = cfg.SCIM
	if r.dryRun {
		// DRY_RUN, or this invocation's {"dryRun": true}: every SCIM write of the run (the
		// directory's adoptions included) goes through a client that refuses it. The phases plan
		// ("would …") by asking r.dryRun first; one that forgets fails with scim.ErrReadOnly.
		full, ok := cfg.SCIM.(scim.API)
		if !ok {
			r.initErr = fmt.Errorf("reconcile: a dry run needs a SCIM client that can be made read-only (scim.API), got %T: nothing was read or changed", cfg.SCIM)
		} else {
			ro := scim.ReadOnlyOf(full)
			r.api, r.readOnly = ro, ro
		}
	}
	// A directory per run, not per container: the reconciler runs hourly, when a container's
	// cache would be stale anyway, and a fresh one keeps every run's cost and answer independent.
	r.dir = scimapply.NewDirectory(r.api, scimapply.WithSelection(cfg.Selection.Match),
		scimapply.WithLookupConcurrency(cfg.Concurrency), scimapply.WithOktaGroups(r.oktaGroup))
	r.applier = scimapply.NewApplier(r.api, r.dir, log, r.met, scimapply.DryRun(r.dryRun), scimapply.WithClock(cfg.Now))
	return r
}

func (r *run) addErr(format string, args ...any) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *run) groupsIn(states ...groupState) []*groupRun {
	var out []*groupRun
	for _, g := range r.groups {
		if slices.Contains(states, g.state) {
			out = append(out, g)
		}
	}
	return out
}

func (r *run) skip(ctx context.Context, g *groupRun, reason string) {
	g.state, g.skipReason = stateSkipped, reason
	r.log.WarnContext(ctx, "group skipped", "group", g.okta.Name, "group_id", g.okta.ID, "reason", reason)
}

// skipFor skips g because what failed with err; the error is kept so a plan can tell a read
// failure from an identity conflict (RunPlan).
func (r *run) skipFor(ctx context.Context, g *groupRun, what string, err error) {
	g.skipCause = err
	r.skip(ctx, g, what+": "+err.Error())
}

// noteSCIMErr remembers a rejected SCIM token: nothing more can be done in this run.
func (r *run) noteSCIMErr(err error) {
	if errors.Is(err, scim.ErrUnauthorized) {
		r.scimUnauthorized.Store(true)
	}
}

// stopped reports whether a fatal error (a rejected token) makes further work pointless.
func (r *run) stopped() bool { return r.scimUnauthorized.Load() || r.oktaUnauthorized.Load() }

// execute runs the phases: list and order the selected groups, read each from Okta and SCIM,
// link users, plan, check the safety rules on the whole run, apply, record. Groups are read and
// applied at most Concurrency at a time, in the run's order, and none is started after its
// phase's time is up.
func (r *run) execute(ctx, work context.Context) error {
	if r.initErr != nil {
		return r.initErr
	}
	if err := r.listGroups(work); err != nil {
		return err
	}
	r.order(work)
	r.resolveGroups(work)
	r.skipAmbiguous(ctx)
	r.findOrphans(work)
	each(r.cfg.Concurrency, r.groupsIn(stateListed), r.mayRead, func(g *groupRun) { r.read(ctx, work, g) },
		func(g *groupRun) { g.state = stateNotReached })
	if r.stopped() {
		return r.fatalErr()
	}
	r.link(ctx, work)
	for _, g := range r.groupsIn(stateRead) {
		g.plan = r.links.plan(g.read)
	}
	r.safety(ctx)
	mayApply := func() bool { return !r.stopped() && work.Err() == nil }
	each(r.cfg.Concurrency, r.groupsIn(stateRead), mayApply, func(g *groupRun) { r.apply(ctx, work, g) },
		func(g *groupRun) { g.state = stateNotReached })
	r.recordGroups(ctx)
	if r.stopped() {
		return r.fatalErr()
	}
	if r.verdict.OverCap {
		return fmt.Errorf("reconcile: %w: the run planned %d removals, more than MAX_REMOVALS=%d, so it removed none (adds were applied); check Okta and the plan in the logs before raising the cap",
			ErrRemovalsBlocked, r.verdict.Removals, r.cfg.MaxRemovals)
	}
	return nil
}

func (r *run) fatalErr() error {
	var errs []error
	if r.scimUnauthorized.Load() {
		errs = append(errs, errors.New("reconcile: SCIM rejected the bearer token after a secret refresh: rotate aws_sso_scim_key"))
	}
	if r.oktaUnauthorized.Load() {
		errs = append(errs, errors.New("reconcile: Okta rejected the API token (401/403): check okta_api_token and its scope"))
	}
	return errors.Join(errs...)
}

// skipAmbiguous skips the selected Okta groups that share their name with another selected group
// and have no AWS group carrying their id: adopting or creating one by that name could only guess
// which of them it belongs to. A group with its own AWS group (by externalId) is identified and
// reconciled.
func (r *run) skipAmbiguous(ctx context.Context) {
	for _, g := range r.groupsIn(stateListed) {
		if g.sameName > 1 && !g.read.inSCIM {
			r.skip(ctx, g, fmt.Sprintf("%d selected Okta groups are named %q and no AWS group carries this one's id (%s): it cannot be told which AWS group is whose; rename one in Okta", g.sameName, g.okta.Name, g.okta.ID))
		}
	}
}

// mayRead says whether another group may be read: the read phase ends at readCutoff so that
// linking and applying what was read still fits before the deadline.
func (r *run) mayRead() bool {
	return !r.stopped() && (r.readCutoff.IsZero() || r.cfg.Now().Before(r.readCutoff))
}

// each runs fn on items in order, at most n at a time. Before each item it asks may(); once that
// says no, the item and all later ones get skip instead, so a deadline stops the run cleanly at a
// group boundary.
func each(n int, items []*groupRun, may func() bool, fn, skip func(*groupRun)) {
	ch := make(chan *groupRun)
	var wg sync.WaitGroup
	var halted atomic.Bool
	for range min(n, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range ch {
				if halted.Load() || !may() {
					halted.Store(true)
					skip(g)
					continue
				}
				fn(g)
			}
		}()
	}
	for _, g := range items {
		ch <- g
	}
	close(ch)
	wg.Wait()
}

// --- Okta ---

func (r *run) okta(ctx context.Context, refresh bool) (Okta, error) {
	rd, err := r.cfg.Okta(ctx, refresh)
	if err != nil {
		return nil, err
	}
	r.oktaMu.Lock()
	defer r.oktaMu.Unlock()
	for _, u := range r.oktaReaders {
		if u.rd == rd {
			return rd, nil
		}
	}
	r.oktaReaders = append(r.oktaReaders, oktaUse{rd: rd, base: rd.Requests()})
	return rd, nil
}

func (r *run) oktaRequests() int64 {
	r.oktaMu.Lock()
	defer r.oktaMu.Unlock()
	var n int64
	for _, u := range r.oktaReaders {
		n += u.rd.Requests() - u.base
	}
	return n
}

// current returns the reader the run uses now (the last one built).
func (r *run) current() Okta {
	r.oktaMu.Lock()
	defer r.oktaMu.Unlock()
	return r.oktaReaders[len(r.oktaReaders)-1].rd
}

// oktaGroup answers the identity rule's question about an Okta group (exists? current name?).
func (r *run) oktaGroup(ctx context.Context, id string) (string, bool, error) {
	g, err := r.current().Group(ctx, id)
	switch {
	case errors.Is(err, okta.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return g.Name, true, nil
}

// listGroups reads the selected Okta groups. Without it nothing can be decided: the run fails.
func (r *run) listGroups(ctx context.Context) error {
	rd, err := r.okta(ctx, false)
	if err != nil {
		return fmt.Errorf("reconcile: Okta client: %w", err)
	}
	sel := r.cfg.Selection
	prefix := sel.Prefix
	if sel.Regex != nil {
		// The regex decides; Okta's prefix search could hide groups it accepts.
		prefix = ""
	}
	groups, err := rd.Groups(ctx, prefix, sel.Match)
	if errors.Is(err, okta.ErrUnauthorized) {
		// The token may have been rotated since the secret was cached: re-read it once.
		if rd, err = r.okta(ctx, true); err != nil {
			return fmt.Errorf("reconcile: Okta client: %w", err)
		}
		groups, err = rd.Groups(ctx, prefix, sel.Match)
		if errors.Is(err, okta.ErrUnauthorized) {
			r.oktaUnauthorized.Store(true)
		}
	}
	if err != nil {
		return fmt.Errorf("reconcile: list selected Okta groups (nothing was changed): %w", err)
	}

	byName := map[string][]okta.Group{}
	r.selectedIDs = make(map[string]bool, len(groups))
	for _, g := range groups {
		byName[g.Name] = append(byName[g.Name], g)
		r.selectedIDs[g.ID] = true
	}
	var want map[string]bool
	if len(r.in.Groups) > 0 {
		want = map[string]bool{}
		for _, n := range r.in.Groups {
			want[n] = true
		}
	}
	found := map[string]bool{}
	for _, g := range groups {
		if want != nil && !want[g.Name] && !want[g.ID] {
			continue
		}
		found[g.Name], found[g.ID] = true, true
		gr := &groupRun{okta: g, ref: scimapply.GroupRef{ID: g.ID, Name: g.Name}}
		r.groups = append(r.groups, gr)
		gr.sameName = len(byName[g.Name])
	}
	for _, n := range r.in.Groups {
		if !found[n] {
			r.addErr("requested group %q is not a selected Okta group", n)
		}
	}
	r.selected = len(r.groups)
	if len(groups) == 0 {
		// Not an error (a new install may have no group yet), but a wrong GROUP_PREFIX looks the same.
		r.log.WarnContext(ctx, "no Okta group is selected: nothing to reconcile", "prefix", sel.Prefix, "regex", regexString(sel))
	}
	return nil
}

// order sets the processing order: oldest reconcile first with STATE_TABLE, else a rotation
// seeded by the run's (scheduled) time.
func (r *run) order(ctx context.Context) {
	seed := r.in.Time
	if seed.IsZero() {
		seed = r.start
	}
	r.groups = rotate(r.groups, seed)
	if r.cfg.Ledger == nil || len(r.groups) < 2 {
		return
	}
	ordered, err := oldestFirst(ctx, r.cfg.Ledger, r.groups)
	if err != nil {
		r.log.WarnContext(ctx, "reading the groups' last reconcile times failed: using the time-based rotation", "error", err.Error())
		return
	}
	r.groups = ordered
}

// --- read ---

// read fetches one group's Okta members and its SCIM members. Any error skips the group: a group
// that could not be read is never treated as empty.
func (r *run) read(ctx, work context.Context, g *groupRun) {
	g.read.readAt = r.cfg.Now()
	users, err := r.current().GroupMembers(work, g.okta.ID)
	if err != nil {
		if work.Err() != nil {
			g.state = stateNotReached
			return
		}
		if errors.Is(err, okta.ErrUnauthorized) {
			r.oktaUnauthorized.Store(true)
		}
		r.skipFor(ctx, g, "Okta read failed", err)
		return
	}
	g.read.listed = len(users)
	for _, u := range users {
		// Okta keeps a deactivated user's memberships: whether a listed member's status is granted
		// AWS group membership is the rule the sync worker applies to lifecycle events too.
		if !membership.Granted(u.Status) {
			g.read.deprovisioned++
			continue
		}
		g.read.members = append(g.read.members, u)
	}
	if err := r.resolveGroup(work, g); err != nil {
		r.noteSCIMErr(err)
		if work.Err() != nil {
			g.state = stateNotReached
			return
		}
		if errors.Is(err, scimapply.ErrIdentityConflict) {
			r.identityConflict(ctx, g, err)
			return
		}
		r.skipFor(ctx, g, "SCIM group lookup failed", err)
		return
	}
	if g.read.inSCIM {
		ms, err := r.api.ListGroupMembers(work, g.read.scim.ID)
		if err != nil {
			r.noteSCIMErr(err)
			if work.Err() != nil {
				g.state = stateNotReached
				return
			}
			r.skipFor(ctx, g, "SCIM member listing failed", err)
			return
		}
		g.read.scimMembers = ms
		// Members are SCIM users: linking them costs nothing more.
		r.dir.Remember(ms...)
	}
	g.state = stateRead
}

// --- link and plan ---

// link resolves every read group's Okta members to SCIM users in one go. Members already in
// their SCIM group were learned from the member listings; for the rest the directory picks the
// cheaper of one listing of all SCIM users (100 per request) and per-user lookups, told the
// directory's known size by the listings.
func (r *run) link(ctx, work context.Context) {
	var refs []scimapply.UserRef
	seen := map[string]bool{}
	scimUsers := map[string]bool{}
	for _, g := range r.groupsIn(stateRead) {
		for _, u := range g.read.members {
			if !seen[u.ID] {
				seen[u.ID] = true
				refs = append(refs, scimapply.UserRef{ID: u.ID, Login: u.Login})
			}
		}
		for _, su := range g.read.scimMembers {
			scimUsers[su.ID] = true
		}
	}
	r.dir.SizeHint(len(scimUsers))
	res := r.dir.ResolveUsers(work, refs)
	r.log.DebugContext(ctx, "users linked", "okta_users", len(refs), "unknown_to_cache", res.Unknown,
		"strategy", string(res.Strategy), "scim_requests", res.Requests, "not_provisioned", len(res.Missing),
		"errors", len(res.Errors))
	missing := make(map[string]bool, len(res.Missing))
	for _, m := range res.Missing {
		missing[m.ID] = true
	}
	var firstErr error
	for _, err := range res.Errors {
		r.noteSCIMErr(err)
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		r.addErr("%d Okta users could not be linked to SCIM users (their adds wait for the next run): %v", len(res.Errors), firstErr)
	}

	// A SCIM member to remove is named by its Okta id in audit records and ordering marks:
	// externalId when Okta provisioned it, else the Okta user with its userName as login, the
	// same string, case included (the userName rule of pkg/scimapply: a near match is another
	// user).
	byLogin := map[string]string{}
	for _, g := range r.groupsIn(stateRead) {
		for _, u := range g.read.members {
			byLogin[u.Login] = u.ID
		}
	}
	r.links = &links{users: res.Users, missing: missing, byLogin: byLogin}
}

// links is what linking found, for planning.
type links struct {
	users   map[string]scim.User // Okta user id → SCIM user
	missing map[string]bool      // Okta user ids not provisioned in SCIM
	byLogin map[string]string    // Okta login → Okta user id
}

// plan diffs one read group: desired = its linked Okta members, actual = its SCIM members. The
// safety rules and the ordering marks may still withhold part of it.
func (l *links) plan(rd groupRead) groupPlan {
	var p groupPlan
	desired := make([]string, 0, len(rd.members))
	info := make(map[string]scimapply.Member, len(rd.members)+len(rd.scimMembers))
	for _, u := range rd.members {
		su, ok := l.users[u.ID]
		switch {
		case ok:
			desired = append(desired, su.ID)
			info[su.ID] = scimapply.Member{SCIMID: su.ID, UserID: u.ID, Login: u.Login}
		case l.missing[u.ID]:
			p.unknown = append(p.unknown, scimapply.UserRef{ID: u.ID, Login: u.Login})
		default:
			p.linkErrors++
		}
	}
	actual := make([]string, len(rd.scimMembers))
	for i, su := range rd.scimMembers {
		actual[i] = su.ID
		if _, ok := info[su.ID]; !ok {
			info[su.ID] = scimapply.Member{SCIMID: su.ID, UserID: oktaIDOf(su, l.byLogin), Login: su.UserName}
		}
	}
	d := membership.PlanDiff(desired, actual)
	p.desired, p.actual = countSet(desired), countSet(actual)
	p.rawAdds, p.rawRemoves = len(d.Adds), len(d.Removes)
	p.adds = members(d.Adds, info)
	p.removes = members(d.Removes, info)
	return p
}

// oktaIDOf returns the Okta user id of a SCIM user: its externalId when that is an Okta user id
// (Okta's provisioning and this project set it; other sources may put anything there), else the
// id of the Okta user whose login is its userName, else "".
func oktaIDOf(su scim.User, byLogin map[string]string) string {
	if strings.HasPrefix(su.ExternalID, "00u") {
		return su.ExternalID
	}
	return byLogin[su.UserName]
}

func members(ids []string, info map[string]scimapply.Member) []scimapply.Member {
	if len(ids) == 0 {
		return nil
	}
	out := make([]scimapply.Member, len(ids))
	for i, id := range ids {
		out[i] = info[id]
	}
	return out
}

func countSet(ids []string) int {
	s := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if id != "" {
			s[id] = struct{}{}
		}
	}
	return len(s)
}

func regexString(s config.Selection) string {
	if s.Regex == nil {
		return ""
	}
	return s.Regex.String()
}
