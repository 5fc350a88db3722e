package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// A read-only ledger reads through and refuses (and counts) every write: the wrapped ledger is
// unchanged afterwards.
func TestReadOnlyReadsAndRefusesWrites(t *testing.T) {
	ctx := context.Background()
	mem := NewMemory()
	old := RecordOf(change(membership.KindAdd, t0))
	if err := mem.Put(ctx, []Record{old}); err != nil {
		t.Fatal(err)
	}
	ro := ReadOnlyOf(mem)
	if ReadOnlyOf(ro) != ro {
		t.Error("ReadOnlyOf of a ReadOnly wraps it again")
	}

	got, err := ro.Get(ctx, []Key{old.Key, {GroupID: "00g1", UserID: "00u2"}})
	if err != nil || len(got) != 1 || !got[old.Key].Published.Equal(old.Mark.Published) {
		t.Fatalf("Get = %v, %v; want the stored mark only", got, err)
	}

	newer := RecordOf(change(membership.KindRemove, t0.Add(1e9)))
	other := Record{Key: Key{GroupID: "00g2", UserID: "00u1"}, Mark: newer.Mark}
	if err := ro.Put(ctx, []Record{newer, other}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Put = %v, want ErrReadOnly", err)
	}
	written, err := ro.PutReport(ctx, []Record{newer})
	if !errors.Is(err, ErrReadOnly) || len(written) != 1 || written[0] {
		t.Errorf("PutReport = %v, %v; want [false], ErrReadOnly", written, err)
	}
	claimed, err := ro.Claim(ctx, []Record{newer})
	if !errors.Is(err, ErrReadOnly) || len(claimed) != 1 || claimed[0] {
		t.Errorf("Claim = %v, %v; want [false], ErrReadOnly", claimed, err)
	}
	final, err := ro.Finalize(ctx, []Record{newer})
	if !errors.Is(err, ErrReadOnly) || len(final) != 1 || final[0] {
		t.Errorf("Finalize = %v, %v; want [false], ErrReadOnly", final, err)
	}
	if err := ro.Put(ctx, nil); err != nil {
		t.Errorf("Put of nothing = %v", err)
	}
	if ro.Refused() != 5 || ro.RefusedCalls() != 4 {
		t.Errorf("refused %d records in %d calls, want 5 in 4", ro.Refused(), ro.RefusedCalls())
	}

	after, _ := mem.Get(ctx, []Key{old.Key, other.Key})
	if mem.Len() != 1 || after[old.Key].Kind != membership.KindAdd {
		t.Errorf("the wrapped ledger changed: %d entries, %v", mem.Len(), after)
	}
}
