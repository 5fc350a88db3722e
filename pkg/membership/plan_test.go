package membership

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func TestPlanChanges(t *testing.T) {
	resolved := map[string]string{"u1": "s1", "u2": "s2", "u3": "s3", "u4": "s4", "twinA": "sT", "twinB": "sT"}
	tests := []struct {
		name     string
		in       []Change
		current  map[string]bool
		want     Plan
		outcomes []Action
	}{
		{
			name:     "adds and removes, state unknown",
			in:       []Change{ch("e1", 0, KindAdd, "g", "u2"), ch("e2", 0, KindRemove, "g", "u1"), ch("e3", 0, KindAdd, "g", "u3")},
			want:     Plan{Adds: []string{"s2", "s3"}, Removes: []string{"s1"}},
			outcomes: []Action{ActionAdd, ActionRemove, ActionAdd},
		},
		{
			name:     "already true is skipped",
			in:       []Change{ch("e1", 0, KindAdd, "g", "u1"), ch("e2", 0, KindRemove, "g", "u2"), ch("e3", 0, KindAdd, "g", "u3"), ch("e4", 0, KindRemove, "g", "u4")},
			current:  map[string]bool{"s1": true, "s2": false, "s3": false, "s4": true},
			want:     Plan{Adds: []string{"s3"}, Removes: []string{"s4"}},
			outcomes: []Action{ActionSkip, ActionSkip, ActionAdd, ActionRemove},
		},
		{
			name:     "unresolved user",
			in:       []Change{ch("e1", 0, KindAdd, "g", "ghost"), ch("e2", 0, KindAdd, "g", "u1")},
			want:     Plan{Adds: []string{"s1"}},
			outcomes: []Action{ActionUnresolved, ActionAdd},
		},
		{
			name:     "uncollapsed input: newest wins, older superseded, duplicates share the outcome",
			in:       []Change{ch("e1", 0, KindAdd, "g", "u1"), ch("e2", 9, KindRemove, "g", "u1"), ch("e2", 9, KindRemove, "g", "u1")},
			current:  map[string]bool{"s1": true},
			want:     Plan{Removes: []string{"s1"}},
			outcomes: []Action{ActionSuperseded, ActionRemove, ActionRemove},
		},
		{
			name:     "superseded change of an unresolved user stays superseded",
			in:       []Change{ch("e1", 0, KindAdd, "g", "ghost"), ch("e2", 1, KindRemove, "g", "ghost")},
			outcomes: []Action{ActionSuperseded, ActionUnresolved},
		},
		{
			name:     "two Okta users linked to one SCIM user: the rule decides, never both lists",
			in:       []Change{ch("e1", 5, KindAdd, "g", "twinA"), ch("e2", 5, KindRemove, "g", "twinB")},
			want:     Plan{Removes: []string{"sT"}},
			outcomes: []Action{ActionSuperseded, ActionRemove},
		},
		{
			name: "empty input",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, err := PlanChanges(tt.in, resolved, tt.current)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("plan = %+v, want %+v", p, tt.want)
			}
			if len(out) != len(tt.in) {
				t.Fatalf("%d outcomes for %d changes", len(out), len(tt.in))
			}
			for i, o := range out {
				if o.Change != tt.in[i] {
					t.Errorf("outcome %d is for %+v, want input order", i, o.Change)
				}
				if o.Action != tt.outcomes[i] {
					t.Errorf("outcome %d = %s, want %s", i, o.Action, tt.outcomes[i])
				}
				if want := resolved[o.Change.UserID]; o.SCIMUserID != want {
					t.Errorf("outcome %d SCIM id %q, want %q", i, o.SCIMUserID, want)
				}
			}
		})
	}
}

func TestPlanChangesRejectsMisuse(t *testing.T) {
	tests := []struct {
		name string
		in   []Change
	}{
		{"two groups", []Change{ch("e1", 0, KindAdd, "g1", "u"), ch("e2", 0, KindAdd, "g2", "u")}},
		{"not a membership change", []Change{ch("e1", 0, KindAdd, "g", "u"), ch("e2", 0, KindRename, "g", "")}},
		{"invalid change", []Change{ch("", 0, KindAdd, "g", "u")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, err := PlanChanges(tt.in, map[string]string{"u": "s"}, nil)
			if err == nil {
				t.Fatalf("no error; plan %+v outcomes %v", p, out)
			}
			if !p.Empty() || out != nil {
				t.Fatalf("error %v came with a plan %+v / outcomes %v", err, p, out)
			}
		})
	}
}

func TestPlanDiff(t *testing.T) {
	tests := []struct {
		name            string
		desired, actual []string
		want            Plan
	}{
		{"both empty", nil, nil, Plan{}},
		{"equal sets, different order and duplicates", []string{"b", "a", "a"}, []string{"a", "b", "b"}, Plan{}},
		{"only adds", []string{"c", "a", "b"}, []string{"b"}, Plan{Adds: []string{"a", "c"}}},
		{"only removes", []string{"b"}, []string{"c", "b", "a"}, Plan{Removes: []string{"a", "c"}}},
		{"both", []string{"a", "b", "x"}, []string{"b", "c", "z"}, Plan{Adds: []string{"a", "x"}, Removes: []string{"c", "z"}}},
		{"empty desired removes all (Check decides whether that may run)", nil, []string{"b", "a"}, Plan{Removes: []string{"a", "b"}}},
		{"empty ids ignored", []string{"", "a"}, []string{""}, Plan{Adds: []string{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d0, a0 := slices.Clone(tt.desired), slices.Clone(tt.actual)
			if got := PlanDiff(tt.desired, tt.actual); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("PlanDiff = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(d0, tt.desired) || !slices.Equal(a0, tt.actual) {
				t.Fatal("PlanDiff modified its inputs")
			}
		})
	}
}

func TestChunk(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("s%04d", i)
		}
		return out
	}
	tests := []struct {
		n, size int
		sizes   []int
	}{
		{0, 100, nil},
		{1, 100, []int{1}},
		{99, 100, []int{99}},
		{100, 100, []int{100}},
		{101, 100, []int{100, 1}},
		{250, 100, []int{100, 100, 50}},
		{5, 2, []int{2, 2, 1}},
		{250, 0, []int{100, 100, 50}},
		{3, -1, []int{3}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d by %d", tt.n, tt.size), func(t *testing.T) {
			in := ids(tt.n)
			got := Chunk(in, tt.size)
			var sizes []int
			var joined []string
			for _, c := range got {
				sizes = append(sizes, len(c))
				joined = append(joined, c...)
			}
			if !slices.Equal(sizes, tt.sizes) {
				t.Fatalf("chunk sizes %v, want %v", sizes, tt.sizes)
			}
			if !slices.Equal(joined, in) {
				t.Fatal("chunks do not concatenate to the input")
			}
		})
	}
	t.Run("append to a chunk does not clobber the next", func(t *testing.T) {
		in := ids(4)
		got := Chunk(in, 2)
		_ = append(got[0], "x")
		if got[1][0] != "s0002" || in[2] != "s0002" {
			t.Fatalf("append overwrote the next chunk: %v", got)
		}
	})
	t.Run("empty ids slice", func(t *testing.T) {
		if got := Chunk([]string{}, 100); got != nil {
			t.Fatalf("Chunk(empty) = %v, want nil", got)
		}
	})
}

func TestPlanEmpty(t *testing.T) {
	if !(Plan{}).Empty() || (Plan{Adds: []string{"a"}}).Empty() || (Plan{Removes: []string{"a"}}).Empty() {
		t.Fatal("Empty wrong")
	}
}
