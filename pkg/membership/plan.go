package membership

import (
	"fmt"
	"slices"
)

// MaxPatchValues is the most member values AWS SSO's SCIM accepts in one PATCH operation.
const MaxPatchValues = 100

// Plan is the SCIM work for one group: user ids to add and to remove, each sorted, without
// duplicates or empty ids, and never sharing an id. Empty lists are nil.
type Plan struct {
	Adds    []string `json:"adds,omitempty"`
	Removes []string `json:"removes,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Adds) == 0 && len(p.Removes) == 0 }

// Action is what [PlanChanges] decided for one change.
type Action string

const (
	// ActionAdd: the user is in Plan.Adds.
	ActionAdd Action = "add"
	// ActionRemove: the user is in Plan.Removes.
	ActionRemove Action = "remove"
	// ActionSkip: the current SCIM state already says what the change wants; nothing to send,
	// but the change counts as applied (store its mark, acknowledge it).
	ActionSkip Action = "skip"
	// ActionUnresolved: the Okta user has no SCIM user (not provisioned yet); the change must be
	// retried, not acknowledged.
	ActionUnresolved Action = "unresolved"
	// ActionSuperseded: another change in the input wins for the same Okta user, or for the same
	// SCIM user; acknowledge without applying.
	ActionSuperseded Action = "superseded"
)

// Outcome is the decision for one input change of [PlanChanges].
type Outcome struct {
	Change     Change
	SCIMUserID string // "" when unresolved
	Action     Action
}

// PlanChanges turns one group's membership changes (sync path) into a plan.
//
// resolved maps Okta user id → SCIM user id; a missing or empty entry means the user is not in
// SCIM. current maps SCIM user id → whether the user is a member of the group now, for the users
// the caller knows about; a user absent from current is planned, since the caller chose not to
// look it up and the PATCH settles it either way.
//
// The changes must be valid add or remove changes of a single group, else an error is returned.
// They need not be collapsed: PlanChanges applies the [Collapse] rule per Okta user and again per
// SCIM user (two Okta users linked to one SCIM user must not put it in both Adds and Removes),
// so the plan depends only on the set of changes. Outcomes follow the input order, one per
// input change; duplicates of the winner share its outcome.
func PlanChanges(changes []Change, resolved map[string]string, current map[string]bool) (Plan, []Outcome, error) {
	if len(changes) == 0 {
		return Plan{}, nil, nil
	}
	group := changes[0].GroupID
	norm := make([]Change, len(changes))
	byUser := make(map[string]Change, len(changes)) // Okta user id → winner
	for i, c := range changes {
		if err := Validate(c); err != nil {
			return Plan{}, nil, fmt.Errorf("plan change %d: %w", i, err)
		}
		if !c.Kind.Member() {
			return Plan{}, nil, fmt.Errorf("plan change %d: %s event %s is not a membership change", i, c.Kind, c.EventUUID)
		}
		if c.GroupID != group {
			return Plan{}, nil, fmt.Errorf("plan change %d: group %s in a plan for group %s", i, c.GroupID, group)
		}
		c = normalize(c)
		norm[i] = c
		if cur, ok := byUser[c.UserID]; !ok || Compare(c, cur) > 0 {
			byUser[c.UserID] = c
		}
	}
	bySCIM := make(map[string]Change, len(byUser)) // SCIM user id → winner
	for _, c := range byUser {
		sid := resolved[c.UserID]
		if sid == "" {
			continue
		}
		if cur, ok := bySCIM[sid]; !ok || Compare(c, cur) > 0 {
			bySCIM[sid] = c
		}
	}
	actions := make(map[string]Action, len(bySCIM))
	var p Plan
	for sid, c := range bySCIM {
		member, known := current[sid]
		switch {
		case c.Kind == KindAdd && known && member, c.Kind == KindRemove && known && !member:
			actions[sid] = ActionSkip
		case c.Kind == KindAdd:
			actions[sid] = ActionAdd
			p.Adds = append(p.Adds, sid)
		default:
			actions[sid] = ActionRemove
			p.Removes = append(p.Removes, sid)
		}
	}
	slices.Sort(p.Adds)
	slices.Sort(p.Removes)

	outcomes := make([]Outcome, len(norm))
	for i, c := range norm {
		sid := resolved[c.UserID]
		o := Outcome{Change: changes[i], SCIMUserID: sid}
		switch {
		case Compare(c, byUser[c.UserID]) != 0:
			o.Action = ActionSuperseded
		case sid == "":
			o.Action = ActionUnresolved
		case Compare(c, bySCIM[sid]) != 0:
			o.Action = ActionSuperseded
		default:
			o.Action = actions[sid]
		}
		outcomes[i] = o
	}
	return p, outcomes, nil
}

// PlanDiff turns desired and actual membership (SCIM user ids; reconcile path) into a plan:
// Adds = desired − actual, Removes = actual − desired. Inputs may be unsorted and hold
// duplicates; empty ids are ignored, so no empty member value is ever sent.
func PlanDiff(desired, actual []string) Plan {
	d, a := sortedSet(desired), sortedSet(actual)
	var p Plan
	i, j := 0, 0
	for i < len(d) && j < len(a) {
		switch {
		case d[i] == a[j]:
			i++
			j++
		case d[i] < a[j]:
			p.Adds = append(p.Adds, d[i])
			i++
		default:
			p.Removes = append(p.Removes, a[j])
			j++
		}
	}
	p.Adds = append(p.Adds, d[i:]...)
	p.Removes = append(p.Removes, a[j:]...)
	if len(p.Adds) == 0 {
		p.Adds = nil
	}
	if len(p.Removes) == 0 {
		p.Removes = nil
	}
	return p
}

// sortedSet returns a sorted copy of ids without duplicates or empty strings.
func sortedSet(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Chunk splits ids into consecutive batches of at most size ids (size < 1 means
// [MaxPatchValues]), for PATCH requests. It never returns an empty batch: no ids, no batches.
// The batches share ids' backing array but have capped capacity, so appending to one cannot
// overwrite the next.
func Chunk(ids []string, size int) [][]string {
	if size < 1 {
		size = MaxPatchValues
	}
	if len(ids) == 0 {
		return nil
	}
	out := make([][]string, 0, (len(ids)+size-1)/size)
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}
