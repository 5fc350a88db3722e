package ledger

import (
	"context"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// The single-writer rule (docs/SYNC.md). With more than one sync container (MaximumConcurrency
// 2 in template.yaml) and the reconciler beside them, FIFO no longer gives one writer per
// (group, user): a membership change and the same user's lifecycle change travel in different
// message groups, and the reconciler is in none. So the ledger, not the queue, decides which
// write AWS must end with:
//
//  1. claim: a membership writer records its change as pending ([Ledger.Claim]) before its SCIM
//     PATCH, under the order of [membership.Decide] evaluated by DynamoDB itself (conditionOf).
//     A rejected claim means a change that wins is recorded: no PATCH (stale).
//  2. write: the PATCH.
//  3. finalize: [Ledger.Finalize] turns the claim into an applied mark only if the stored mark is
//     still exactly the claim. When it is not, a newer change claimed the key during the PATCH,
//     and this writer's PATCH may have landed after that change's: the writer reads the marks
//     and writes what [Target] says, and reads again after every such write until what it
//     wrote is what the marks say (pkg/scimapply's Writer).
//
// Why that converges: let m* be the key's last claim, by writer W*, and P the last PATCH any
// writer sends for the key. Every writer reads the key (finalize is a conditional write, i.e. a
// read) after each of its PATCHes. If P is W*'s own PATCH, it writes m*. If P is another writer's,
// its read after P comes after W*'s claim (W* claimed before its own PATCH, which is not after
// P), so it sees m*, which is not its claim, and writes Target(m*) — then P was not the last
// PATCH unless it already wrote Target(m*). Either way AWS ends with Target(m*).
//
// A claim that is never finalized (the container died, the PATCH failed) stays pending: the
// change's retry is decided Apply and does it again (membership.Decide); a later-processed older
// change is stale against it, as against an applied mark.

// writeMode is what a write does: put an applied mark, claim, or finalize a claim.
type writeMode int

const (
	writePut writeMode = iota
	writeClaim
	writeFinalize
)

func (m writeMode) String() string {
	switch m {
	case writeClaim:
		return "claim"
	case writeFinalize:
		return "finalize"
	}
	return "put"
}

// Claim implements Ledger: PutReport with the mark stored as pending.
func (t *Table) Claim(ctx context.Context, records []Record) ([]bool, error) {
	return t.writeAll(ctx, records, writeClaim)
}

// Finalize implements Ledger: each record is stored as applied if the stored mark is exactly its
// claim.
func (t *Table) Finalize(ctx context.Context, records []Record) ([]bool, error) {
	return t.writeAll(ctx, records, writeFinalize)
}

// conditionOf returns the ConditionExpression (and its values) of a write of m in mode.
//
// Membership marks (add, remove) are ordered as membership.Decide orders changes: newer
// published wins; at the same millisecond remove beats add, then the greater event uuid wins (the
// same change again passes, so a redelivery or a retry of a claim is written). DynamoDB compares
// numbers numerically and strings by character code ("String value comparisons for greater than,
// equals, or less than are based on ASCII character code values", DynamoDB API Reference,
// Condition), as Go's strings.Compare orders the ASCII event uuids and op names. Other marks
// (status, name, group) keep "newer or equal published wins".
//
// A finalize holds only while the item is the claim itself: a missing item or attribute makes
// the comparison false, so it fails too.
func conditionOf(m membership.Mark, mode writeMode) (string, map[string]types.AttributeValue) {
	p := &types.AttributeValueMemberN{Value: strconv.FormatInt(m.Published.UnixMilli(), 10)}
	op := &types.AttributeValueMemberS{Value: string(m.Kind)}
	u := &types.AttributeValueMemberS{Value: m.EventUUID}
	switch {
	case mode == writeFinalize:
		return "published = :p AND op = :op AND eventUuid = :u", map[string]types.AttributeValue{":p": p, ":op": op, ":u": u}
	case m.Kind == membership.KindRemove:
		return "attribute_not_exists(pk) OR published < :p OR (published = :p AND (op <> :op OR eventUuid <= :u))",
			map[string]types.AttributeValue{":p": p, ":op": op, ":u": u}
	case m.Kind == membership.KindAdd:
		return "attribute_not_exists(pk) OR published < :p OR (published = :p AND op = :op AND eventUuid <= :u)",
			map[string]types.AttributeValue{":p": p, ":op": op, ":u": u}
	}
	return "attribute_not_exists(pk) OR published <= :p", map[string]types.AttributeValue{":p": p}
}

// holds evaluates conditionOf in memory (Memory): whether writing r over old (found: an item
// exists) passes in mode.
func holds(r, old membership.Mark, found bool, mode writeMode) bool {
	p, q := r.Published.UnixMilli(), old.Published.UnixMilli()
	switch {
	case mode == writeFinalize:
		return found && q == p && old.Kind == r.Kind && old.EventUUID == r.EventUUID
	case !found:
		return true
	case r.Kind == membership.KindRemove:
		return q < p || (q == p && (old.Kind != r.Kind || old.EventUUID <= r.EventUUID))
	case r.Kind == membership.KindAdd:
		return q < p || (q == p && old.Kind == r.Kind && old.EventUUID <= r.EventUUID)
	}
	return q <= p
}

// ReconcilePrefix starts the event uuid of the marks the reconciler writes ("reconcile/<run id>").
const ReconcilePrefix = "reconcile/"

// Target is what AWS must hold for (group, user) by the ledger: member iff the key's newest
// membership mark (claimed or applied) is an add and the user's status mark permits membership
// (membership.StatusPermits; the user-status rule). A reconciler's add mark is Okta's listing at
// the run's read, the user's status included, so a status recorded before that mark does not
// override it (the reconciler defers its adds to statuses recorded after: pkg/reconciler's
// deferToEvents).
func Target(member membership.Mark, memberFound bool, status membership.Mark, statusFound bool) bool {
	if !memberFound || member.Kind != membership.KindAdd {
		return false
	}
	if membership.StatusPermits(status, statusFound) {
		return true
	}
	return strings.HasPrefix(member.EventUUID, ReconcilePrefix) && status.Published.Before(member.Published)
}
