package membership

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	mark := func(ms int, k Kind, uuid string) Mark { return MarkOf(ch(uuid, ms, k, "g", "u")) }
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
		{"same change replayed", ch("e1", 5, KindAdd, "g", "u"), mark(5, KindAdd, "e1"), DecisionApply},
		{"equal time: add after a remove mark", ch("zz", 5, KindAdd, "g", "u"), mark(5, KindRemove, "aa"), DecisionStale},
		{"equal time: remove after an add mark", ch("aa", 5, KindRemove, "g", "u"), mark(5, KindAdd, "zz"), DecisionApply},
		{"equal time and kind: smaller uuid", ch("a", 5, KindAdd, "g", "u"), mark(5, KindAdd, "b"), DecisionStale},
		{"equal time and kind: greater uuid", ch("c", 5, KindAdd, "g", "u"), mark(5, KindAdd, "b"), DecisionApply},
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
