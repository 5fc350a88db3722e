package membership

import (
	"fmt"
	"slices"
	"strings"
)

// Limits guard removals against bad input: an Okta outage, a wrong filter or a partial read must
// never empty AWS groups (a peer wiped groups after its IdP answered 503).
type Limits struct {
	// MaxRemovals caps the removals one group ([Check]) or one run ([CheckRun]) may make; a plan
	// over the cap removes none. 0 allows no removal at all (the safe zero value); a negative
	// value disables the cap.
	MaxRemovals int
	// AllowEmptyDesired lets an empty desired set remove every member of a group. Without it an
	// empty desired set for a group that has members is treated as a suspicious answer.
	AllowEmptyDesired bool
}

// Verdict says whether a plan's removals may run. Adds always may.
type Verdict struct {
	AllowRemovals bool
	Reason        string // why removals are blocked; "" when allowed
	// Suspicious: blocked because the desired set is empty while the group has members (an
	// empty or failed answer), not because of the cap.
	Suspicious bool
	// Partial: the source listed fewer members than its own count of the group (GroupPlan's
	// Listed < Counted), so the listing may be incomplete; such a group removes nobody. Set
	// whether or not the plan has removals.
	Partial bool
}

// Filter returns p without its removals when v blocks them.
func (v Verdict) Filter(p Plan) Plan {
	if !v.AllowRemovals {
		p.Removes = nil
	}
	return p
}

// Check decides whether one group's plan may remove. desiredCount and actualCount are the sizes
// of the desired and actual member sets the plan was made from; pass the desired count after
// linking to SCIM users, so that a failed or partial link is caught too. A plan without removals
// is always allowed.
func Check(p Plan, desiredCount, actualCount int, l Limits) Verdict {
	return CheckGroup(GroupPlan{Plan: p, Desired: desiredCount, Actual: actualCount}, l)
}

// CheckGroup is [Check] with what the source listed: an empty desired set is suspicious when the
// source's answer was empty (Listed 0) or members it granted could not be linked, but not when
// the source listed members and every one of them is revoked by its status (Listed > 0 and
// Revoked == Listed: a break-glass group whose only member was deactivated must be emptied).
//
// A group whose source listed fewer members than its own count (Counted > Listed) removes nobody
// either: the listing may be partial ([Verdict.Partial]).
func CheckGroup(gp GroupPlan, l Limits) Verdict {
	v := Verdict{AllowRemovals: true, Partial: gp.Counted > gp.Listed}
	n := len(gp.Plan.Removes)
	if n == 0 {
		return v
	}
	var reasons []string
	if v.Partial {
		reasons = append(reasons, fmt.Sprintf("Okta listed %d members of %d: the member listing may be partial, removing none from this group", gp.Listed, gp.Counted))
	}
	allRevoked := gp.Listed > 0 && gp.Revoked == gp.Listed
	if gp.Desired == 0 && gp.Actual > 0 && !l.AllowEmptyDesired && !allRevoked {
		v.Suspicious = true
		reasons = append(reasons, fmt.Sprintf("desired membership is empty but the group has %d members: suspicious answer, removing none (allow empty groups to permit)", gp.Actual))
	} else if l.MaxRemovals >= 0 && n > l.MaxRemovals {
		reasons = append(reasons, fmt.Sprintf("plan removes %d members, more than the cap of %d: removing none", n, l.MaxRemovals))
	}
	if len(reasons) > 0 {
		v.AllowRemovals, v.Reason = false, strings.Join(reasons, "; ")
	}
	return v
}

// GroupPlan is one group's plan with the set sizes it was made from (see [Check]).
type GroupPlan struct {
	Plan    Plan
	Desired int
	Actual  int
	// Listed is how many members the source (Okta) listed, every status included; Revoked is how
	// many of them a status grants no membership ([Granted] false), so they are not desired.
	// Zero values (unknown) keep the empty-desired rule as strict as [Check].
	Listed  int
	Revoked int
	// Counted is the source's own count of the group's members (Okta's usersCount), 0 when
	// unknown; a listing shorter than it may be partial.
	Counted int
}

// RunVerdict is the result of [CheckRun].
type RunVerdict struct {
	// Groups holds a verdict for every group given.
	Groups map[string]Verdict
	// Removals is the total planned removals of the run, blocked ones included.
	Removals int
	// OverCap: Removals exceeds MaxRemovals, so the run removes none.
	OverCap bool
	// Blocked lists, sorted, the groups that planned removals and may not make them.
	Blocked []string
}

// CheckRun applies the limits to a whole reconcile run. Each group first gets the empty-desired
// rule of [Check]. Then, if the run plans more removals in total than MaxRemovals, every group's
// removals are blocked: the run removes none and the caller fails loudly, while adds still run.
// The total counts removals already blocked as suspicious, because such a group is itself a sign
// that this run's input is bad.
func CheckRun(plans map[string]GroupPlan, l Limits) RunVerdict {
	rv := RunVerdict{Groups: make(map[string]Verdict, len(plans))}
	perGroup := Limits{MaxRemovals: -1, AllowEmptyDesired: l.AllowEmptyDesired}
	for id, gp := range plans {
		rv.Groups[id] = CheckGroup(gp, perGroup)
		rv.Removals += len(gp.Plan.Removes)
	}
	rv.OverCap = l.MaxRemovals >= 0 && rv.Removals > l.MaxRemovals
	for id, gp := range plans {
		if len(gp.Plan.Removes) == 0 {
			continue
		}
		v := rv.Groups[id]
		if v.AllowRemovals && rv.OverCap {
			v = Verdict{Reason: fmt.Sprintf("run plans %d removals, more than the cap of %d: removing none", rv.Removals, l.MaxRemovals)}
			rv.Groups[id] = v
		}
		if !v.AllowRemovals {
			rv.Blocked = append(rv.Blocked, id)
		}
	}
	slices.Sort(rv.Blocked)
	return rv
}
