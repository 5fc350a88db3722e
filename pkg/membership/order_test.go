package membership

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	mark := func(ms int, k Kind, uuid string) Mark { return MarkOf(ch(uuid, ms, k, "g", "u")) }
	pending := func(m Mark) Mark { m.Pending = true; return m }
	tests := []struct {
		name string
		c    Change
		last Mark
		want Decision
	}{
		{"no mark", ch("e1", 0, KindAdd, "g", "u"), Mark{}, DecisionApply},
		{"older than mark", ch("e1", 4, KindAdd, "g", "u"), mark(5, KindAdd, "e0"), DecisionStale},
		{"older remove than an add mark", ch("e1", 4, KindRemove, "g", "u"), mark(5, KindAdd, "e0"), DecisionStale},
		{"newer than mark", ch("e1", 6, KindAdd, "g", "u"), mark(5, KindRemove, "zz"), DecisionApply},
		{"same change replayed", ch("e1", 5, KindAdd, "g", "u"), mark(5, KindAdd, "e1"), DecisionApplied},
		{"same change, its own unconfirmed claim", ch("e1", 5, KindAdd, "g", "u"), pending(mark(5, KindAdd, "e1")), DecisionApply},
		{"same time and op, another event", ch("e2", 5, KindRemove, "g", "u"), mark(5, KindRemove, "e1"), DecisionApplied},
		{"same time within the millisecond", Change{EventUUID: "e1", Published: t0.Add(5*time.Millisecond + 400*time.Microsecond), Kind: KindAdd, GroupID: "g", UserID: "u"}, mark(5, KindAdd, "e1"), DecisionApplied},
		{"older within the millisecond is not older", Change{EventUUID: "e9", Published: t0.Add(5*time.Millisecond - 400*time.Microsecond), Kind: KindRemove, GroupID: "g", UserID: "u"}, mark(4, KindAdd, "e1"), DecisionApply},
		{"a newer claim in flight", ch("e1", 4, KindAdd, "g", "u"), pending(mark(5, KindRemove, "e0")), DecisionStale},
		{"equal time: add after a remove mark", ch("zz", 5, KindAdd, "g", "u"), mark(5, KindRemove, "aa"), DecisionStale},
		{"equal time: remove after an add mark", ch("aa", 5, KindRemove, "g", "u"), mark(5, KindAdd, "zz"), DecisionApply},
		// Equal time and kind: the state the change wants is the one recorded (whichever uuid
		// wins the order, below), so there is nothing to write.
		{"equal time and kind: smaller uuid", ch("a", 5, KindAdd, "g", "u"), mark(5, KindAdd, "b"), DecisionApplied},
		{"equal time and kind: greater uuid", ch("c", 5, KindAdd, "g", "u"), mark(5, KindAdd, "b"), DecisionApplied},
		{"time-only mark, equal time", ch("a", 5, KindAdd, "g", "u"), Mark{Published: t0.Add(5 * time.Millisecond)}, DecisionApply},
		{"time-only mark, older", ch("a", 4, KindRemove, "g", "u"), Mark{Published: t0.Add(5 * time.Millisecond)}, DecisionStale},
		{"mark in another zone", ch("a", 4, KindAdd, "g", "u"), Mark{Published: t0.Add(5 * time.Millisecond).In(time.FixedZone("X", 7200)), Kind: KindAdd, EventUUID: "b"}, DecisionStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.c, tt.last); got != tt.want {
				t.Fatalf("Decide = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCompareMark: the order Decide and the ledger's conditions share; on equal time and kind the
// greater event uuid wins.
func TestCompareMark(t *testing.T) {
	mark := func(ms int, k Kind, uuid string) Mark { return MarkOf(ch(uuid, ms, k, "g", "u")) }
	for _, tt := range []struct {
		a, b Mark
		want int
	}{
		{mark(5, KindAdd, "a"), mark(5, KindAdd, "b"), -1},
		{mark(5, KindAdd, "c"), mark(5, KindAdd, "b"), 1},
		{mark(5, KindRemove, "a"), mark(5, KindAdd, "z"), 1},
		{mark(4, KindRemove, "z"), mark(5, KindAdd, "a"), -1},
		{mark(5, KindAdd, "b"), mark(5, KindAdd, "b"), 0},
	} {
		if got := compareMark(tt.a, tt.b); got != tt.want {
			t.Errorf("compareMark(%+v, %+v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMarkOf(t *testing.T) {
	c := ch("e1", 3, KindRemove, "g", "u")
	c.Published = c.Published.In(time.FixedZone("CET", 3600))
	m := MarkOf(c)
	if m.EventUUID != "e1" || m.Kind != KindRemove || !m.Published.Equal(c.Published) || m.Published.Location() != time.UTC {
		t.Fatalf("MarkOf = %+v", m)
	}
	if m.IsZero() || !(Mark{}).IsZero() {
		t.Fatal("IsZero wrong")
	}
}
