package membership

import (
	"cmp"
	"strings"
	"time"
)

// Mark is what the worker remembers per [Key] about the last membership change it applied, so
// that an older change delivered later cannot undo a newer one. Store all three fields: with
// only the time, two changes of the same millisecond cannot be ordered (see [Decide]).
type Mark struct {
	Published time.Time
	Kind      Kind
	EventUUID string
	// Name is the Okta group name a group's name mark records (see pkg/syncer's renames); empty
	// in membership marks.
	Name string
	// Pending marks a membership change claimed before its SCIM write and not confirmed yet
	// (pkg/ledger's Claim and Finalize, the single-writer rule): the change decides the key's
	// order, but AWS may not reflect it.
	Pending bool
}

// MarkOf returns the mark to store after c was applied (or found already true).
func MarkOf(c Change) Mark {
	return Mark{Published: c.Published.UTC(), Kind: c.Kind, EventUUID: c.EventUUID}
}

// IsZero reports whether m records nothing (no change applied yet for its key).
func (m Mark) IsZero() bool {
	return m.Published.IsZero() && m.Kind == "" && m.EventUUID == "" && m.Name == ""
}

// Decision is the verdict of [Decide]: the one ordering verdict, for the sync worker and the
// reconciler against the ledger's marks (pkg/ledger stores the marks and evaluates the same
// order in its conditional writes).
type Decision string

const (
	// DecisionApply: no mark, or the change wins over the mark (or the mark is this change's
	// own claim, not confirmed: a crashed or failed earlier attempt); apply it and record its
	// [MarkOf].
	DecisionApply Decision = "apply"
	// DecisionStale: a change that wins over this one is recorded (applied, or claimed and being
	// applied); acknowledge it and change nothing.
	DecisionStale Decision = "stale"
	// DecisionApplied: the mark records a confirmed change of the same time and op (a redelivery
	// of this very change, typically): the state it wants is already true, so acknowledge it
	// without a SCIM request.
	DecisionApplied Decision = "already_applied"
)

// Decide compares a winning membership change with the mark recorded for its key (zero: none),
// under the same order as [Collapse], at millisecond precision (the precision of Okta's published
// and of the ledger table):
//   - no mark (zero): apply;
//   - the same time and op as the mark: already applied, or apply when the mark is Pending (a
//     claim whose SCIM write was not confirmed: do it again);
//   - Published before the mark: stale; after: apply;
//   - equal Published: remove beats add, then the greater EventUUID wins; the change is stale
//     only when the mark strictly wins.
//   - a mark holding only a time (no kind) ranks below every change of that time, so an
//     equal-time change is applied: without the kind we cannot tell which one won, and the
//     reconciler repairs the rare wrong guess.
//
// Applying every batch's winners through Decide, in any split of the changes into batches and any
// batch order, ends in the same membership as collapsing all changes at once.
func Decide(c Change, last Mark) Decision {
	if last.IsZero() {
		return DecisionApply
	}
	if c.Published.UnixMilli() == last.Published.UnixMilli() && c.Kind == last.Kind {
		if last.Pending {
			return DecisionApply
		}
		return DecisionApplied
	}
	if compareMark(MarkOf(c), last) < 0 {
		return DecisionStale
	}
	return DecisionApply
}

func compareMark(a, b Mark) int {
	if c := cmp.Compare(a.Published.UnixMilli(), b.Published.UnixMilli()); c != 0 {
		return c
	}
	if c := cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.EventUUID, b.EventUUID)
}
