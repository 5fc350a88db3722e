package membership

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// Property tests: seeded loops, so a failure names the seed that reproduces it.
const propertyRounds = 2000

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func TestPropertyCollapseIgnoresOrderAndDuplicates(t *testing.T) {
	for seed := range uint64(propertyRounds) {
		r := rng(seed)
		cs := randomChanges(r, 1+r.IntN(30))
		want := Collapse(cs)
		got := Collapse(shuffleDup(r, cs))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: collapse of a permutation differs\n got  %+v\n want %+v", seed, got, want)
		}
		// The winner is the greatest valid membership change of its key, checked by brute force.
		for k, w := range want.Members {
			for _, c := range cs {
				if Validate(c) == nil && c.Kind.Member() && KeyOf(c) == k && Compare(normalize(c), w) > 0 {
					t.Fatalf("seed %d: %+v beats winner %+v", seed, c, w)
				}
			}
		}
		// Every input lands somewhere: winner or superseded, Others, or Invalid.
		for _, c := range cs {
			n := normalize(c)
			switch {
			case Validate(c) != nil:
				if !slices.Contains(want.Invalid, n) {
					t.Fatalf("seed %d: invalid %+v lost", seed, c)
				}
			case c.Kind.Member():
				if _, ok := want.Members[KeyOf(c)]; !ok {
					t.Fatalf("seed %d: key of %+v lost", seed, c)
				}
			default:
				if !slices.ContainsFunc(want.Others, func(o Change) bool {
					return o.EventUUID == c.EventUUID && o.Kind == c.Kind && o.GroupID == c.GroupID && o.UserID == c.UserID
				}) {
					t.Fatalf("seed %d: other %+v lost", seed, c)
				}
			}
		}
	}
}

// randomLinks links most users to SCIM ids, leaves one unprovisioned, and links two Okta users
// to one SCIM user; current state is known for some SCIM users only.
func randomLinks(r *rand.Rand) (map[string]string, map[string]bool) {
	resolved := map[string]string{}
	for i := range 5 {
		u := fmt.Sprintf("u%d", i+1)
		switch r.IntN(6) {
		case 0: // not provisioned
		case 1:
			resolved[u] = "s-shared"
		default:
			resolved[u] = "s-" + u
		}
	}
	current := map[string]bool{}
	for _, sid := range resolved {
		if r.IntN(3) > 0 {
			current[sid] = r.IntN(2) == 0
		}
	}
	return resolved, current
}

func groupMembers(cs []Change, group string) []Change {
	var out []Change
	for _, c := range cs {
		if Validate(c) == nil && c.Kind.Member() && c.GroupID == group {
			out = append(out, c)
		}
	}
	return out
}

func TestPropertyPlanIgnoresOrderAndDuplicates(t *testing.T) {
	for seed := range uint64(propertyRounds) {
		r := rng(seed)
		cs := randomChanges(r, 1+r.IntN(30))
		perm := shuffleDup(r, cs)
		resolved, current := randomLinks(r)
		winners := map[string][]Change{}
		for _, g := range Collapse(perm).ByGroup() {
			winners[g.GroupID] = g.Changes
		}
		for _, group := range []string{"g1", "g2", "g3"} {
			want, wantOut, err := PlanChanges(groupMembers(cs, group), resolved, current)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			got, gotOut, err := PlanChanges(groupMembers(perm, group), resolved, current)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			fromWinners, _, err := PlanChanges(winners[group], resolved, current)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(fromWinners, want) {
				t.Fatalf("seed %d group %s: plans differ: original %+v, permuted %+v, from collapse %+v", seed, group, want, got, fromWinners)
			}
			// A change's action depends on the change, not on where it sits in the batch.
			action := map[Change]Action{}
			for _, o := range wantOut {
				action[normalize(o.Change)] = o.Action
			}
			for _, o := range gotOut {
				if a := action[normalize(o.Change)]; a != o.Action {
					t.Fatalf("seed %d: %+v is %s in one order and %s in another", seed, o.Change, a, o.Action)
				}
			}
			assertPlanWellFormed(t, seed, want)
		}
	}
}

func assertPlanWellFormed(t *testing.T, seed uint64, p Plan) {
	t.Helper()
	for _, l := range [][]string{p.Adds, p.Removes} {
		if l != nil && len(l) == 0 {
			t.Fatalf("seed %d: empty non-nil list in %+v", seed, p)
		}
		if !slices.IsSorted(l) || len(slices.Compact(slices.Clone(l))) != len(l) || slices.Contains(l, "") {
			t.Fatalf("seed %d: list not sorted, unique, non-empty ids: %v", seed, l)
		}
	}
	for _, a := range p.Adds {
		if _, found := slices.BinarySearch(p.Removes, a); found {
			t.Fatalf("seed %d: %s both added and removed", seed, a)
		}
	}
}

// Splitting the changes into batches delivered in any order, each collapsed and applied through
// Decide and the stored marks, ends in the same membership as collapsing everything at once.
func TestPropertyBatchesWithMarksEqualOneCollapse(t *testing.T) {
	for seed := range uint64(propertyRounds) {
		r := rng(seed)
		cs := randomChanges(r, 1+r.IntN(30))
		want := map[Key]bool{}
		for k, w := range Collapse(cs).Members {
			want[k] = w.Kind == KindAdd
		}

		deliveries := shuffleDup(r, cs)
		state := map[Key]bool{}
		marks := map[Key]Mark{}
		for len(deliveries) > 0 {
			n := 1 + r.IntN(len(deliveries))
			batch := deliveries[:n]
			deliveries = deliveries[n:]
			for k, w := range Collapse(batch).Members {
				if Decide(w, marks[k]) == DecisionApply {
					state[k] = w.Kind == KindAdd
					marks[k] = MarkOf(w)
				}
			}
		}
		if !reflect.DeepEqual(state, want) {
			t.Fatalf("seed %d: batched state %v, want %v", seed, state, want)
		}
	}
}

func randomIDs(r *rand.Rand, n, universe int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%03d", r.IntN(universe))
	}
	return out
}

func TestPropertyPlanDiff(t *testing.T) {
	for seed := range uint64(propertyRounds) {
		r := rng(seed)
		desired := randomIDs(r, r.IntN(40), 50)
		actual := randomIDs(r, r.IntN(40), 50)
		p := PlanDiff(desired, actual)
		assertPlanWellFormed(t, seed, p)

		// Applying the plan to actual yields exactly desired, and it adds nothing present and
		// removes nothing absent (no redundant SCIM values).
		set := map[string]bool{}
		for _, id := range actual {
			set[id] = true
		}
		for _, id := range p.Adds {
			if set[id] {
				t.Fatalf("seed %d: adds present %s", seed, id)
			}
			set[id] = true
		}
		for _, id := range p.Removes {
			if !set[id] {
				t.Fatalf("seed %d: removes absent %s", seed, id)
			}
			delete(set, id)
		}
		want := map[string]bool{}
		for _, id := range desired {
			want[id] = true
		}
		if !reflect.DeepEqual(set, want) {
			t.Fatalf("seed %d: plan does not reach desired", seed)
		}

		d2, a2 := slices.Clone(desired), slices.Clone(actual)
		d2 = append(d2, desired[:r.IntN(len(desired)+1)]...)
		r.Shuffle(len(d2), func(i, j int) { d2[i], d2[j] = d2[j], d2[i] })
		r.Shuffle(len(a2), func(i, j int) { a2[i], a2[j] = a2[j], a2[i] })
		if got := PlanDiff(d2, a2); !reflect.DeepEqual(got, p) {
			t.Fatalf("seed %d: permuted diff %+v, want %+v", seed, got, p)
		}
	}
}

func TestPropertyChunk(t *testing.T) {
	for seed := range uint64(propertyRounds) {
		r := rng(seed)
		ids := randomIDs(r, r.IntN(350), 1000)
		size := r.IntN(150) - 10
		limit := size
		if limit < 1 {
			limit = MaxPatchValues
		}
		var joined []string
		for _, c := range Chunk(ids, size) {
			if len(c) == 0 || len(c) > limit {
				t.Fatalf("seed %d: chunk of %d with size %d", seed, len(c), size)
			}
			joined = append(joined, c...)
		}
		if !slices.Equal(joined, ids) {
			t.Fatalf("seed %d: chunks lost or reordered ids", seed)
		}
	}
}

func TestPropertyCheckRunRemovesNoneOverCap(t *testing.T) {
	for seed := range uint64(propertyRounds) {
		r := rng(seed)
		plans := map[string]GroupPlan{}
		for i := range r.IntN(6) {
			p := PlanDiff(randomIDs(r, r.IntN(8), 20), randomIDs(r, r.IntN(8), 20))
			plans[fmt.Sprintf("g%d", i)] = GroupPlan{Plan: p, Desired: r.IntN(3), Actual: r.IntN(3)}
		}
		l := Limits{MaxRemovals: r.IntN(20) - 2, AllowEmptyDesired: r.IntN(2) == 0}
		rv := CheckRun(plans, l)
		allowed := 0
		for id, gp := range plans {
			v := rv.Groups[id]
			if v.AllowRemovals {
				allowed += len(gp.Plan.Removes)
			}
			if gp.Desired == 0 && gp.Actual > 0 && !l.AllowEmptyDesired && len(gp.Plan.Removes) > 0 && v.AllowRemovals {
				t.Fatalf("seed %d: suspicious group %s may remove", seed, id)
			}
		}
		if l.MaxRemovals >= 0 && rv.Removals > l.MaxRemovals && allowed > 0 {
			t.Fatalf("seed %d: run over cap (%d > %d) still removes %d", seed, rv.Removals, l.MaxRemovals, allowed)
		}
		if l.MaxRemovals >= 0 && allowed > l.MaxRemovals {
			t.Fatalf("seed %d: %d removals allowed over cap %d", seed, allowed, l.MaxRemovals)
		}
	}
}
