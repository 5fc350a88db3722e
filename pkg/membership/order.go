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

// Decision is the verdict of [Decide].
type Decision string

const (
	// DecisionApply: the change is not older than what was applied; apply it (or verify that it
	// is already true) and store its [MarkOf].
	DecisionApply Decision = "apply"
	// DecisionStale: a change that wins over this one was already applied; acknowledge it and
	// change nothing.
	DecisionStale Decision = "stale"
)

// Decide compares a winning membership change with the mark of the last change applied for its
// key, under the same order as [Collapse]:
//   - no mark (zero): apply;
//   - Published before the mark: stale; after: apply;
//   - equal Published: remove beats add, then the greater EventUUID wins; the change is stale
//     only when the mark strictly wins. The very change the mark records is applied again:
//     replaying it is idempotent (planning skips what is already true), and it covers a crash
//     between the mark write and the SQS acknowledgement.
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
	if compareMark(MarkOf(c), last) < 0 {
		return DecisionStale
	}
	return DecisionApply
}

func compareMark(a, b Mark) int {
	if c := a.Published.Compare(b.Published); c != 0 {
		return c
	}
	if c := cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.EventUUID, b.EventUUID)
}
