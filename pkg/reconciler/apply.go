package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// deferToEvents drops a group's planned changes of memberships for which the sync worker already
// applied an Okta event newer than this run's read of the group (STATE_TABLE only). The read may
// predate that event, so acting on it would undo a newer change; the event is the newer truth.
// It runs for each group right before its plan is applied, not once for the run: the apply
// phase of a large run takes minutes (4 groups at a time, 429 backoffs), and an event the sync
// worker applies meanwhile must still win. What remains is the time of one group's PATCHes.
//
// The same read fetches the status marks (ledger.StatusKey) of the users the plan adds: an add of
// a user whose newest recorded lifecycle status is newer than the read and grants no membership
// (membership.StatusPermits: deactivated after Okta listed the user as active) is deferred too.
// The user-status rule is the sync worker's (docs/SYNC.md, "The user-status rule"); the
// reconciler otherwise applies it through the Okta statuses it reads itself.
func (r *run) deferToEvents(ctx, work context.Context, g *groupRun) {
	if r.cfg.Ledger == nil {
		return
	}
	var keys []membership.Key
	for _, m := range slices.Concat(g.plan.adds, g.plan.removes) {
		if m.UserID != "" {
			keys = append(keys, membership.Key{GroupID: g.okta.ID, UserID: m.UserID})
		}
	}
	for _, m := range g.plan.adds {
		if m.UserID != "" {
			keys = append(keys, ledger.StatusKey(m.UserID))
		}
	}
	if len(keys) == 0 {
		return
	}
	marks, err := r.cfg.Ledger.Get(work, keys)
	if err != nil {
		// Without the marks the group behaves as without STATE_TABLE: a change the sync worker
		// applied during this run may be undone, and the next event or run repairs it.
		r.addErr("group %q: reading ordering marks failed, changes not checked against newer events: %v", g.okta.Name, err)
		r.log.ErrorContext(ctx, "reading ordering marks failed: applying the plan without them", "group", g.okta.Name, "error", err.Error())
		return
	}
	since := g.read.readAt.Add(-markSkew)
	newer := func(m scimapply.Member) bool {
		mk, ok := marks[membership.Key{GroupID: g.okta.ID, UserID: m.UserID}]
		if ok && m.UserID != "" && !mk.Published.Before(since) {
			g.plan.deferred++
			r.log.DebugContext(ctx, "change deferred to a newer Okta event", "group", g.okta.Name, "group_id", g.okta.ID,
				"user", m.Login, "user_id", m.UserID, "event_uuid", mk.EventUUID, "event_op", string(mk.Kind))
			return true
		}
		return false
	}
	notGranted := func(m scimapply.Member) bool {
		st, ok := marks[ledger.StatusKey(m.UserID)]
		if ok && m.UserID != "" && !st.Published.Before(since) && !membership.StatusPermits(st, ok) {
			g.plan.deferred++
			r.log.InfoContext(ctx, "add deferred: the user's Okta status changed after this run's read and grants no AWS group membership",
				"group", g.okta.Name, "group_id", g.okta.ID, "user", m.Login, "user_id", m.UserID,
				"event_uuid", st.EventUUID, "event_op", string(st.Kind))
			return true
		}
		return false
	}
	g.plan.adds = slices.DeleteFunc(g.plan.adds, func(m scimapply.Member) bool { return newer(m) || notGranted(m) })
	g.plan.removes = slices.DeleteFunc(g.plan.removes, newer)
}

// safety applies the removal rules to the whole run, all of them decided by membership.CheckRun:
// a group whose Okta answer was empty while SCIM has members removes nobody, a group whose Okta
// member listing is shorter than Okta's own count of it removes nobody, and a run planning more
// removals than MAX_REMOVALS removes nobody at all. Adds are never blocked.
func (r *run) safety(ctx context.Context) {
	read := r.groupsIn(stateRead)
	plans := make(map[string]membership.GroupPlan, len(read))
	for _, g := range read {
		gp := membership.GroupPlan{Plan: membership.Plan{Removes: scimIDs(g.plan.removes)}, Desired: g.plan.desired, Actual: g.plan.actual,
			Listed: g.read.listed, Revoked: g.read.deprovisioned}
		if g.okta.HasCount {
			gp.Counted = g.okta.UsersCount
		}
		plans[g.okta.ID] = gp
	}
	lim := membership.Limits{MaxRemovals: r.cfg.MaxRemovals, AllowEmptyDesired: r.cfg.AllowEmptyGroups}
	r.verdict = membership.CheckRun(plans, lim)
	for _, g := range read {
		v := r.verdict.Groups[g.okta.ID]
		if v.Partial {
			g.plan.partial = true
			r.log.WarnContext(ctx, "Okta member listing may be partial: this group's removals are withheld", "group", g.okta.Name,
				"group_id", g.okta.ID, "okta_listed", g.read.listed, "okta_count", g.okta.UsersCount, "removals_withheld", len(g.plan.removes))
		}
		if v.AllowRemovals || len(g.plan.removes) == 0 {
			continue
		}
		reason := v.Reason
		g.plan.suspicious = v.Suspicious
		g.plan.blocked, g.plan.blockReason = len(g.plan.removes), reason
		g.plan.blockedMembers = g.plan.removes
		// The plan that was not carried out, for the operator deciding what went wrong.
		r.log.WarnContext(ctx, "removals blocked", "group", g.okta.Name, "group_id", g.okta.ID, "reason", reason,
			"removals", len(g.plan.removes), "okta_members", len(g.read.members), "scim_members", g.plan.actual,
			"users", logins(g.plan.removes, maxListedInLog))
		g.plan.removes = nil
	}
}

// partialReason says why a group's Okta member listing may be incomplete, "" when nothing says
// so. Okta can answer a member page short or empty without a next link, which looks exactly like
// the end of the list; the group's usersCount from this run's group listing is the independent
// figure that shows it (an incident removed 788 of 1,200 members that way). A member removed in
// Okta between the two reads also makes the listing shorter: its removal then waits one run,
// which is harmless. More members than counted (added meanwhile) is fine, and without a count
// (HasCount false) the listing is taken as it is.
func scimIDs(ms []scimapply.Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.SCIMID
	}
	return ids
}

func logins(ms []scimapply.Member, max int) []string {
	out := make([]string, 0, min(len(ms), max))
	for _, m := range ms[:min(len(ms), max)] {
		out = append(out, m.Login)
	}
	return out
}

// apply carries out one group's plan through the shared apply path (removes first, PATCHes of at
// most 100 values, one audit record per change), with STATE_TABLE under the single-writer rule
// (applyClaimed).
func (r *run) apply(ctx, work context.Context, g *groupRun) {
	if !g.read.inSCIM {
		if !r.cfg.CreateGroups {
			r.skip(ctx, g, fmt.Sprintf("not in SCIM and CREATE_GROUPS=false: %d adds wait until the group exists", len(g.plan.adds)))
			return
		}
		if err := r.ensureGroup(work, g); err != nil {
			r.noteSCIMErr(err)
			if work.Err() != nil {
				g.state = stateNotReached
				return
			}
			if errors.Is(err, scimapply.ErrIdentityConflict) {
				r.identityConflict(ctx, g, err)
				return
			}
			r.skipFor(ctx, g, "SCIM group creation", err)
			return
		}
	}
	r.follow(ctx, g)
	g.state = stateDone
	r.deferToEvents(ctx, work, g)
	if len(g.plan.adds)+len(g.plan.removes) == 0 {
		return
	}
	target := scimapply.Target{Okta: g.ref, SCIM: g.read.scim}
	if r.cfg.Ledger == nil || r.dryRun {
		// Without STATE_TABLE there are no marks to order by; a dry run claims nothing.
		r.count(g, r.applier.Apply(work, target, scimapply.Plan{Adds: g.plan.adds, Removes: g.plan.removes}))
	} else {
		r.applyClaimed(ctx, work, g, target)
	}
	if g.out.failed > 0 {
		r.addErr("group %q: %d changes failed (see the audit records)", g.okta.Name, g.out.failed)
	}
}

// applyClaimed applies the group's plan under the single-writer rule (docs/SYNC.md,
// scimapply.ApplyClaimed), as the sync worker does: each change of a member linked to an Okta
// user claims its mark before its PATCH and converges after it when a newer Okta event (or the
// user's deactivation) was recorded meanwhile. The sync containers run beside the reconciler, so
// deferToEvents' read alone leaves a window of one group's PATCHes in which an event applied by
// the worker would be undone by this run's older answer. Members not linked to an Okta user have
// no mark (no event can name them) and are applied as planned.
//
// Marked at the read time (less the skew), not now: an Okta event published after the read still
// wins, one published before it is already part of this run's answer and must not undo it when it
// arrives late. The finalize and the reads after the PATCHes use the invocation's context: the
// safety margin exists for them.
func (r *run) applyClaimed(ctx, work context.Context, g *groupRun, target scimapply.Target) {
	at := g.read.readAt.Add(-markSkew)
	var ws []scimapply.Write
	var unlinked scimapply.Plan
	for _, op := range []struct {
		kind    membership.Kind
		members []scimapply.Member
	}{{membership.KindRemove, g.plan.removes}, {membership.KindAdd, g.plan.adds}} {
		for _, m := range op.members {
			if m.UserID == "" {
				if op.kind == membership.KindAdd {
					unlinked.Adds = append(unlinked.Adds, m)
				} else {
					unlinked.Removes = append(unlinked.Removes, m)
				}
				continue
			}
			ws = append(ws, scimapply.Write{Target: target, Member: m, Op: op.kind, Mark: ledger.Record{
				Key:  membership.Key{GroupID: g.okta.ID, UserID: m.UserID},
				Mark: membership.Mark{Published: at, Kind: op.kind, EventUUID: ledger.ReconcilePrefix + r.runID},
			}})
		}
	}
	if unlinked.Len() > 0 {
		r.count(g, r.applier.Apply(work, target, unlinked))
	}
	var unclaimed scimapply.Plan
	var claimErr error
	for _, res := range r.applier.ApplyClaimed(work, ctx, r.cfg.Ledger, ws) {
		switch {
		case res.Unclaimed:
			// The ledger is unavailable: as without STATE_TABLE (deferToEvents degrades the same
			// way), loudly. The sync worker cannot apply anything meanwhile: it reads the ledger
			// before every change.
			claimErr = res.Err
			if res.Op == membership.KindAdd {
				unclaimed.Adds = append(unclaimed.Adds, res.Member)
			} else {
				unclaimed.Removes = append(unclaimed.Removes, res.Member)
			}
		case res.Stale || (len(res.Converged) > 0 && res.Converged[len(res.Converged)-1] != res.Op):
			// A newer Okta event decides this membership (claimed during this run): it wins.
			g.plan.deferred++
			r.log.DebugContext(ctx, "change deferred to a newer Okta event claimed during the run", "group", g.okta.Name,
				"group_id", g.okta.ID, "user", res.Member.Login, "user_id", res.Member.UserID, "op", string(res.Op))
		default:
			r.tally(g, res.Op, res.Err)
		}
	}
	if unclaimed.Len() > 0 {
		r.addErr("group %q: writing ordering marks failed, changes applied without them: %v", g.okta.Name, claimErr)
		r.log.ErrorContext(ctx, "writing ordering marks failed: applying the plan without them (an event applied meanwhile may be undone until the next run)",
			"group", g.okta.Name, "group_id", g.okta.ID, "changes", unclaimed.Len(), "error", claimErr.Error())
		r.count(g, r.applier.Apply(work, target, unclaimed))
	}
}

// count adds a plan's results to the group's outcome.
func (r *run) count(g *groupRun, results []scimapply.Result) {
	for _, res := range results {
		if !res.DryRun {
			r.tally(g, res.Op, res.Err)
		}
	}
}

// tally counts one applied change of the group: failed (err), added or removed.
func (r *run) tally(g *groupRun, op membership.Kind, err error) {
	switch {
	case err != nil:
		g.out.failed++
		r.noteSCIMErr(err)
	case op == membership.KindAdd:
		g.out.added++
	default:
		g.out.removed++
	}
}

// recordGroups notes the groups this run completed, so the next run starts with the others
// (STATE_TABLE only; a dry run changes nothing, so it records nothing either).
func (r *run) recordGroups(ctx context.Context) {
	if r.cfg.Ledger == nil || r.dryRun {
		return
	}
	var done []*groupRun
	for _, g := range r.groupsIn(stateDone) {
		if g.out.failed == 0 {
			done = append(done, g)
		}
	}
	if len(done) == 0 {
		return
	}
	if err := r.cfg.Ledger.Put(ctx, groupMarks(done, r.start, r.runID)); err != nil {
		r.log.WarnContext(ctx, "recording reconciled groups failed: the next run may repeat them first", "error", err.Error())
	}
}

// groupResultOf is a group's entry in Summary.Groups; false when it was in sync and nothing was
// done or planned for it.
func groupResultOf(g *groupRun) (GroupResult, bool) {
	gr := GroupResult{
		Group: g.okta.Name, GroupID: g.okta.ID, SCIMGroupID: g.read.scim.ID,
		Created: g.out.created, Adopted: g.out.adopted, RenamedFrom: g.out.renameFrom, RenamedTo: g.out.renameTo,
		Adds: len(g.plan.adds), Removes: len(g.plan.removes),
		AddLogins: logins(g.plan.adds, maxListedInLog), RemoveLogins: logins(g.plan.removes, maxListedInLog),
		RemovalsBlocked: g.plan.blocked, BlockedLogins: logins(g.plan.blockedMembers, maxListedInLog), BlockReason: g.plan.blockReason,
		Deferred: g.plan.deferred, UnknownUsers: len(g.plan.unknown),
		Added: g.out.added, Removed: g.out.removed, Failed: g.out.failed,
	}
	some := gr.Created || gr.Adopted || gr.RenamedTo != "" || gr.Adds+gr.Removes+gr.RemovalsBlocked+gr.Deferred+gr.UnknownUsers+gr.Failed > 0
	return gr, some
}

// report logs one line per group, the unprovisioned users, and the run's metrics.
func (r *run) report(ctx context.Context) {
	var drift, repaired, blocked, skipped int
	for _, g := range r.groups {
		switch g.state {
		case stateSkipped:
			skipped++
			continue
		case stateDone:
		default:
			continue
		}
		drift += g.plan.rawAdds + g.plan.rawRemoves
		repaired += g.out.added + g.out.removed
		blocked += g.plan.blocked
		for _, u := range g.plan.unknown {
			r.unknownUsers[u.ID] = u.Login
		}
		if g.plan.rawAdds+g.plan.rawRemoves+len(g.plan.unknown)+g.out.failed == 0 && !g.out.created && !g.out.adopted && g.out.renameTo == "" {
			continue
		}
		r.log.InfoContext(ctx, "group reconciled", "group", g.okta.Name, "group_id", g.okta.ID, "scim_group_id", g.read.scim.ID,
			"okta_members", len(g.read.members), "deprovisioned_members", g.read.deprovisioned, "scim_members", g.plan.actual,
			"adds", g.plan.rawAdds, "removes", g.plan.rawRemoves, "added", g.out.added, "removed", g.out.removed, "failed", g.out.failed,
			"deferred", g.plan.deferred, "removals_blocked", g.plan.blocked, "unknown_users", len(g.plan.unknown),
			"link_errors", g.plan.linkErrors, "created", g.out.created, "adopted", g.out.adopted, "renamed_to", g.out.renameTo, "dry_run", r.dryRun)
	}
	if n := len(r.unknownUsers); n > 0 {
		all := make([]string, 0, n)
		for _, l := range r.unknownUsers {
			all = append(all, l)
		}
		slices.Sort(all)
		r.log.InfoContext(ctx, "Okta group members not provisioned in SCIM: assign them to the AWS app in Okta",
			"count", n, "sample", all[:min(n, r.cfg.UnknownSample)])
		for start := 0; start < n; start += maxListedInLog {
			r.log.DebugContext(ctx, "Okta group members not provisioned in SCIM (all)", "users", all[start:min(n, start+maxListedInLog)])
		}
	}
	r.met.Count(telemetry.MetricDriftFound, float64(drift))
	r.met.Count(telemetry.MetricDriftRepaired, float64(repaired))
	r.met.Count(telemetry.MetricReconcileRemovalsBlocked, float64(blocked))
	r.met.Count(telemetry.MetricReconcileGroupsSkipped, float64(skipped))
	r.met.Count(telemetry.MetricOrphanGroups, float64(len(r.orphans)))
	r.met.Count(telemetry.MetricUnknownUsers, float64(len(r.unknownUsers)))
}

// summary builds the run's summary from the groups' final states.
func (r *run) summary() Summary {
	s := Summary{RunID: r.runID, Trigger: r.in.Trigger(), DryRun: r.dryRun, GroupsSelected: r.selected,
		OktaRequests: r.oktaRequests()}
	var reasons []string
	for _, g := range r.groups {
		switch g.state {
		case stateSkipped:
			s.Skipped = append(s.Skipped, SkippedGroup{Group: g.okta.Name, GroupID: g.okta.ID, Reason: g.skipReason})
			continue
		case stateNotReached, stateListed, stateRead:
			s.NotReached = append(s.NotReached, g.okta.Name)
			continue
		}
		s.GroupsChecked++
		if g.plan.rawAdds+g.plan.rawRemoves == 0 && !g.out.created {
			s.GroupsInSync++
		}
		if g.out.created {
			s.GroupsCreated++
		}
		if g.out.renamed {
			s.GroupsRenamed++
		}
		if g.out.adopted {
			s.GroupsAdopted++
		}
		if gr, ok := groupResultOf(g); ok {
			s.Groups = append(s.Groups, gr)
		}
		s.Adds += g.plan.rawAdds
		s.Removes += g.plan.rawRemoves
		s.Added += g.out.added
		s.Removed += g.out.removed
		s.Failed += g.out.failed
		s.Deferred += g.plan.deferred
		s.RemovalsBlocked += g.plan.blocked
		if g.plan.suspicious {
			s.SuspiciousGroups = append(s.SuspiciousGroups, g.okta.Name)
		}
		if g.plan.partial {
			s.PartialGroups = append(s.PartialGroups, PartialGroup{Group: g.okta.Name, GroupID: g.okta.ID,
				Listed: g.read.listed, Counted: g.okta.UsersCount, RemovalsWithheld: g.plan.blocked})
		}
		if g.plan.blockReason != "" && !slices.Contains(reasons, g.plan.blockReason) {
			reasons = append(reasons, g.plan.blockReason)
		}
	}
	s.Blocked = s.RemovalsBlocked > 0
	if r.verdict.OverCap {
		s.BlockedReason = fmt.Sprintf("run plans %d removals, more than MAX_REMOVALS=%d: removing none", r.verdict.Removals, r.cfg.MaxRemovals)
	} else if len(reasons) > 0 {
		s.BlockedReason = strings.Join(reasons, "; ")
	}
	s.Orphans = r.orphans
	r.conflictMu.Lock()
	s.IdentityConflicts = slices.Clone(r.conflicts)
	r.conflictMu.Unlock()
	slices.SortFunc(s.IdentityConflicts, func(a, b IdentityConflict) int { return strings.Compare(a.GroupID, b.GroupID) })
	for _, o := range r.orphans {
		s.Errors = append(s.Errors, fmt.Sprintf("orphan AWS group %q (%s, externalId %s): %s", o.Group, o.SCIMGroupID, o.ExternalID, o.Reason))
	}
	s.UnknownUsers = len(r.unknownUsers)
	if n := len(r.unknownUsers); n > 0 {
		all := make([]string, 0, n)
		for _, l := range r.unknownUsers {
			all = append(all, l)
		}
		slices.Sort(all)
		s.UnknownUsersSample = all[:min(n, r.cfg.UnknownSample)]
	}
	r.errMu.Lock()
	s.Errors = append(s.Errors, r.errs...)
	r.errMu.Unlock()
	for _, g := range s.Skipped {
		s.Errors = append(s.Errors, fmt.Sprintf("group %q skipped: %s", g.Group, g.Reason))
	}
	return s
}
