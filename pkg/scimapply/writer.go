package scimapply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// The single-writer rule's SCIM side (pkg/ledger's claim.go has the ledger side and the proof;
// docs/SYNC.md, "The single-writer rule"). The sync worker and the reconciler send every
// membership PATCH that has an ordering mark through [Applier.ApplyClaimed]:
//
//	claim (pending mark) → PATCH → finalize → read → [converge PATCH → read]…
//
// The read after the PATCH covers two writers the claim alone does not order:
//   - a newer membership change of the key claimed during the PATCH (the finalize fails): AWS must
//     hold what the newest mark says, and this writer's PATCH may have landed last;
//   - the user's lifecycle change (the status mark, another key): an add whose PATCH raced a
//     deactivation removes the user again. Every interleaving of the add's {claim, PATCH, read}
//     with the deactivation's {status claim, ListUserGroups, remove PATCH} (pkg/syncer's revoke)
//     ends with the user out: if the add's read comes after the status claim, it sees the
//     deactivation and removes the user itself; if it comes before, then the add's PATCH was
//     confirmed before the status claim, hence before ListUserGroups, which therefore lists the
//     group (SCIM answers a read after a confirmed write with that write: the emulator does,
//     and AWS documents no eventual consistency for its SCIM endpoint), and the revoke removes it.
//     The add's own removal is after its own add, and the revoke only removes, so no order of the
//     PATCHes leaves the user in.
//
// The reads are strongly consistent (ledger.Table.Get sets ConsistentRead; "By default,
// BatchGetItem performs eventually consistent reads ... set ConsistentRead to true", DynamoDB API
// Reference), so a read after a write sees it.

// Marks is what the single-writer rule needs from the ledger (ledger.Ledger has it).
type Marks interface {
	Get(ctx context.Context, keys []ledger.Key) (map[ledger.Key]membership.Mark, error)
	Claim(ctx context.Context, records []ledger.Record) ([]bool, error)
	Finalize(ctx context.Context, records []ledger.Record) ([]bool, error)
}

// Write is one membership PATCH with its ordering mark.
type Write struct {
	Target Target
	Member Member
	Op     membership.Kind // KindAdd or KindRemove
	// Mark is the change's mark; its Key is (Okta group id, Okta user id).
	Mark ledger.Record
}

// WriteResult is what became of a Write.
type WriteResult struct {
	Write
	// Stale: the claim lost, a change that wins is recorded (claimed or applied); nothing was
	// sent. Acknowledge the change as a no-op.
	Stale bool
	// Converged lists the PATCHes sent after the write's own to reach what the ledger says
	// (a newer change claimed meanwhile, or the user's status no longer permits membership).
	Converged []membership.Kind
	// Err: not applied, or applied but not settled (a ledger call failed, the marks kept
	// changing); retry the change. Its claim stays pending, so the retry does it again.
	Err error
	// Unclaimed: the claim itself failed (Err says why; the ledger is unavailable): nothing was
	// sent.
	Unclaimed bool
}

// maxConvergeRounds bounds the converge loop: each round needs yet another, newer change of the
// same (group, user) claimed during the previous round's PATCH.
const maxConvergeRounds = 4

// ApplyClaimed applies ws under the single-writer rule: claims (one Claim call), PATCHes per
// target (Apply: removes first, ≤100 values, audit records), finalizes what SCIM confirmed (one
// Finalize call), then reads and converges. Claims and the writes' own PATCHes use work; the
// finalize, the reads and converge PATCHes use settle (the invocation's context: the Lambda
// safety margin exists for them, as they finish what was sent). It returns one result per write,
// in order. A dry-run Applier must not be given claims: callers apply dry runs with Apply.
func (a *Applier) ApplyClaimed(work, settle context.Context, led Marks, ws []Write) []WriteResult {
	out := make([]WriteResult, len(ws))
	recs := make([]ledger.Record, len(ws))
	for i, w := range ws {
		out[i].Write = w
		recs[i] = w.Mark
	}
	if len(ws) == 0 {
		return out
	}
	if a.dryRun {
		for i := range out {
			out[i].Err = errors.New("scimapply: ApplyClaimed on a dry-run applier (a dry run writes no claims)")
		}
		return out
	}
	claimed, err := led.Claim(work, recs)
	if len(claimed) != len(recs) {
		claimed, err = make([]bool, len(recs)), cmp.Or(err, errors.New("ledger: claim answered for another number of records"))
	}
	var sent []int
	for i := range ws {
		switch {
		case claimed[i]:
			sent = append(sent, i)
		case err != nil:
			out[i].Err, out[i].Unclaimed = fmt.Errorf("claim the ledger mark: %w", err), true
		default:
			out[i].Stale = true
		}
	}
	a.patch(work, ws, sent, func(i int, err error) { out[i].Err = err })

	var confirmed []int
	for _, i := range sent {
		if out[i].Err == nil {
			confirmed = append(confirmed, i)
		}
	}
	if len(confirmed) == 0 {
		return out
	}
	fin := make([]ledger.Record, len(confirmed))
	for j, i := range confirmed {
		fin[j] = recs[i]
	}
	final, err := led.Finalize(settle, fin)
	if len(final) != len(fin) {
		final, err = make([]bool, len(fin)), cmp.Or(err, errors.New("ledger: finalize answered for another number of records"))
	}
	last := map[int]bool{} // what each write still to check last wrote: member or not
	for j, i := range confirmed {
		switch {
		case !final[j] && err != nil:
			// Retried (the claim stays pending); still converge now if the marks can be read: a
			// newer change claimed meanwhile would make the retry stale, with this PATCH perhaps
			// landed after that change's.
			out[i].Err = fmt.Errorf("finalize the ledger mark: %w", err)
			last[i] = ws[i].Op == membership.KindAdd
		case final[j] && ws[i].Op == membership.KindRemove:
			// Still the newest decision, and a remove is right whatever the user's status.
		default:
			last[i] = ws[i].Op == membership.KindAdd
		}
	}
	a.converge(settle, led, ws, out, last)
	return out
}

// Settle reads the marks of writes just sent outside the claim protocol (a revoke's removes,
// ordered by the user's status mark rather than by membership marks) and converges each to
// ledger.Target, as ApplyClaimed does after its finalize: a newer status recorded during the
// writes (a reactivation whose restore already ran) is not undone by them.
func (a *Applier) Settle(ctx context.Context, led Marks, ws []Write) []WriteResult {
	out := make([]WriteResult, len(ws))
	last := map[int]bool{}
	for i, w := range ws {
		out[i].Write = w
		last[i] = w.Op == membership.KindAdd
	}
	a.converge(ctx, led, ws, out, last)
	return out
}

// converge reads the marks of the writes in last and PATCHes what ledger.Target says until it is
// what each wrote last.
func (a *Applier) converge(ctx context.Context, led Marks, ws []Write, out []WriteResult, last map[int]bool) {
	for round := 0; len(last) > 0; round++ {
		idx := slices.Sorted(maps.Keys(last)) // a deterministic order of reads and PATCHes
		var keys []ledger.Key
		for _, i := range idx {
			keys = append(keys, ws[i].Mark.Key, ledger.StatusKey(ws[i].Mark.Key.UserID))
		}
		marks, err := led.Get(ctx, keys)
		if err != nil {
			for _, i := range idx {
				out[i].Err = fmt.Errorf("read the ledger marks after the PATCH: %w", err)
			}
			return
		}
		var again []int
		for _, i := range idx {
			was := last[i]
			k := ws[i].Mark.Key
			m, mf := marks[k]
			st, sf := marks[ledger.StatusKey(k.UserID)]
			want := ledger.Target(m, mf, st, sf)
			if want == was {
				delete(last, i)
				continue
			}
			if round == maxConvergeRounds {
				out[i].Err = fmt.Errorf("the ledger marks of %s kept changing during %d converge rounds", k, round)
				delete(last, i)
				continue
			}
			op := membership.KindRemove
			if want {
				op = membership.KindAdd
			}
			a.log.InfoContext(ctx, "single-writer rule: the ledger's newest decision differs from this write; converging",
				"group", ws[i].Target.SCIM.DisplayName, "group_id", k.GroupID, "user", ws[i].Member.Login, "user_id", k.UserID,
				"event_uuid", ws[i].Member.EventUUID, "wrote", string(ws[i].Op), "now", string(op),
				"mark_event_uuid", m.EventUUID, "mark_op", string(m.Kind), "mark_pending", m.Pending,
				"status_event_uuid", st.EventUUID, "status_op", string(st.Kind))
			a.metrics.Count(telemetry.MetricWritesConverged, 1)
			out[i].Converged = append(out[i].Converged, op)
			last[i] = want
			again = append(again, i)
		}
		conv := make([]Write, len(ws))
		copy(conv, ws)
		for _, i := range again {
			conv[i].Op = out[i].Converged[len(out[i].Converged)-1]
		}
		a.patch(ctx, conv, again, func(i int, err error) {
			out[i].Err = fmt.Errorf("converge: %w", err)
			delete(last, i)
		})
	}
}

// patch sends ws[idx] grouped by SCIM group (one Apply each, in first-seen order) and calls
// failed for each write SCIM did not confirm. A group that is gone confirms a remove.
func (a *Applier) patch(ctx context.Context, ws []Write, idx []int, failed func(i int, err error)) {
	var order []string
	by := map[string][]int{}
	for _, i := range idx {
		g := ws[i].Target.SCIM.ID
		if _, ok := by[g]; !ok {
			order = append(order, g)
		}
		by[g] = append(by[g], i)
	}
	for _, g := range order {
		var p Plan
		owner := map[[2]string]int{}
		for _, i := range by[g] {
			w := ws[i]
			owner[[2]string{string(w.Op), w.Member.SCIMID}] = i
			if w.Op == membership.KindAdd {
				p.Adds = append(p.Adds, w.Member)
			} else {
				p.Removes = append(p.Removes, w.Member)
			}
		}
		for _, res := range a.Apply(ctx, ws[by[g][0]].Target, p) {
			i, ok := owner[[2]string{string(res.Op), res.Member.SCIMID}]
			if !ok || res.Err == nil {
				continue
			}
			if res.Op == membership.KindRemove && errors.Is(res.Err, ErrGroupGone) {
				continue // nobody is in a group that does not exist
			}
			failed(i, res.Err)
		}
	}
}
