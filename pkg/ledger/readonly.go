package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// ErrReadOnly is returned by every write of a [ReadOnly] ledger: nothing was written.
var ErrReadOnly = errors.New("ledger: write refused by the read-only ledger, nothing written")

// ReadOnly is the ledger of a plan (cmd/plan): Get reads the wrapped ledger, so the plan defers
// to the sync worker's newer events exactly as a run would, and every write (Put, PutReport,
// Claim, Finalize) is refused with [ErrReadOnly] and counted. Like scim.ReadOnly for SCIM, it makes "a plan writes
// nothing" a property of what the plan holds: a dry run records no marks, so Refused() stays 0
// unless a code path forgot to ask whether it is one.
//
// It is safe for concurrent use.
type ReadOnly struct {
	led     Ledger
	refused atomic.Int64 // records refused
	calls   atomic.Int64 // write calls refused
}

var _ Ledger = (*ReadOnly)(nil)

// ReadOnlyOf returns a read-only view of led (led itself when it already is one).
func ReadOnlyOf(led Ledger) *ReadOnly {
	if ro, ok := led.(*ReadOnly); ok {
		return ro
	}
	return &ReadOnly{led: led}
}

// Get implements Ledger: it reads the wrapped ledger.
func (r *ReadOnly) Get(ctx context.Context, keys []Key) (map[Key]membership.Mark, error) {
	return r.led.Get(ctx, keys)
}

// Put implements Ledger: it writes nothing and returns ErrReadOnly (nil for no records).
func (r *ReadOnly) Put(_ context.Context, records []Record) error {
	return r.refuse(records)
}

// PutReport implements Ledger: no record is written (all false) and the error is ErrReadOnly.
func (r *ReadOnly) PutReport(_ context.Context, records []Record) ([]bool, error) {
	return make([]bool, len(records)), r.refuse(records)
}

// Claim implements Ledger: nothing is claimed (all false) and the error is ErrReadOnly; a
// caller that plans never claims, since it writes nothing to SCIM.
func (r *ReadOnly) Claim(_ context.Context, records []Record) ([]bool, error) {
	return make([]bool, len(records)), r.refuse(records)
}

// Finalize implements Ledger: nothing is finalized (all false) and the error is ErrReadOnly.
func (r *ReadOnly) Finalize(_ context.Context, records []Record) ([]bool, error) {
	return make([]bool, len(records)), r.refuse(records)
}

func (r *ReadOnly) refuse(records []Record) error {
	if len(records) == 0 {
		return nil
	}
	r.calls.Add(1)
	r.refused.Add(int64(len(records)))
	return fmt.Errorf("put %d records: %w", len(records), ErrReadOnly)
}

// Refused returns the number of records whose write was refused so far.
func (r *ReadOnly) Refused() int64 { return r.refused.Load() }

// RefusedCalls returns the number of write calls refused so far.
func (r *ReadOnly) RefusedCalls() int64 { return r.calls.Load() }
