package reconciler

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// groupMarkUser is the pseudo user id under which the ledger table (STATE_TABLE) keeps the time of
// a group's last complete reconcile: key "<oktaGroupId>#reconcile". Okta user ids start with 00u,
// so it never meets a membership mark, and the sync worker never asks for it.
const groupMarkUser = "reconcile"

// groupMarkKind is the op stored with a group mark (the ledger stores the kind as a plain string).
const groupMarkKind membership.Kind = "reconcile"

// rotate returns groups sorted by id and rotated to start at an index derived from the run's
// time, so that runs cut short by the deadline start at different places and none starves the
// tail. The time is hashed rather than stepped: for any schedule interval, successive runs start
// at independent, uniformly spread positions.
func rotate(groups []*groupRun, seed time.Time) []*groupRun {
	out := slices.Clone(groups)
	slices.SortFunc(out, func(a, b *groupRun) int { return strings.Compare(a.okta.ID, b.okta.ID) })
	if len(out) < 2 {
		return out
	}
	k := int(splitmix64(uint64(seed.Unix()/60)) % uint64(len(out)))
	return append(out[k:], out[:k]...)
}

// splitmix64 is a fixed, well-mixing 64-bit hash (Steele et al.); any change of input changes the
// whole output.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// oldestFirst orders groups by the time of their last complete reconcile (never first), keeping
// the rotated order among equals. With STATE_TABLE this guarantees that a run cut short by the
// deadline is continued by the next one from where it stopped.
func oldestFirst(ctx context.Context, led ledger.Ledger, groups []*groupRun) ([]*groupRun, error) {
	keys := make([]membership.Key, len(groups))
	for i, g := range groups {
		keys[i] = membership.Key{GroupID: g.okta.ID, UserID: groupMarkUser}
	}
	marks, err := led.Get(ctx, keys)
	if err != nil {
		return groups, err
	}
	out := slices.Clone(groups)
	for _, g := range out {
		g.lastReconciled = marks[membership.Key{GroupID: g.okta.ID, UserID: groupMarkUser}].Published
	}
	slices.SortStableFunc(out, func(a, b *groupRun) int { return a.lastReconciled.Compare(b.lastReconciled) })
	return out, nil
}

// groupMarks are the records that note groups as completely reconciled at t.
func groupMarks(groups []*groupRun, t time.Time, runID string) []ledger.Record {
	recs := make([]ledger.Record, 0, len(groups))
	for _, g := range groups {
		recs = append(recs, ledger.Record{
			Key:  membership.Key{GroupID: g.okta.ID, UserID: groupMarkUser},
			Mark: membership.Mark{Published: t, Kind: groupMarkKind, EventUUID: "reconcile/" + runID},
		})
	}
	return recs
}
