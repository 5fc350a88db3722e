package membership

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func removes(n int) Plan {
	p := Plan{Adds: []string{"new"}}
	for i := range n {
		p.Removes = append(p.Removes, string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	return p
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name            string
		plan            Plan
		desired, actual int
		limits          Limits
		allow           bool
		reason          string
	}{
		{"no removals, zero limits", Plan{Adds: []string{"a"}}, 1, 0, Limits{}, true, ""},
		{"under cap", removes(3), 10, 12, Limits{MaxRemovals: 5}, true, ""},
		{"at cap", removes(5), 10, 14, Limits{MaxRemovals: 5}, true, ""},
		{"over cap", removes(6), 10, 15, Limits{MaxRemovals: 5}, false, "more than the cap of 5"},
		{"zero cap allows no removal", removes(1), 1, 2, Limits{}, false, "more than the cap of 0"},
		{"negative cap disables the cap", removes(500), 10, 509, Limits{MaxRemovals: -1}, true, ""},
		{"empty desired with members is suspicious", removes(3), 0, 3, Limits{MaxRemovals: 100}, false, "suspicious"},
		{"empty desired, even with no cap", removes(3), 0, 3, Limits{MaxRemovals: -1}, false, "suspicious"},
		{"empty desired allowed", removes(3), 0, 3, Limits{MaxRemovals: 100, AllowEmptyDesired: true}, true, ""},
		{"empty desired allowed but over cap", removes(3), 0, 3, Limits{MaxRemovals: 2, AllowEmptyDesired: true}, false, "cap of 2"},
		{"empty desired, empty group", Plan{}, 0, 0, Limits{}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Check(tt.plan, tt.desired, tt.actual, tt.limits)
			if v.AllowRemovals != tt.allow {
				t.Fatalf("AllowRemovals = %v, want %v (%s)", v.AllowRemovals, tt.allow, v.Reason)
			}
			if tt.reason == "" && v.Reason != "" || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("Reason = %q, want it to contain %q", v.Reason, tt.reason)
			}
			f := v.Filter(tt.plan)
			if !reflect.DeepEqual(f.Adds, tt.plan.Adds) {
				t.Fatalf("Filter changed adds: %v", f.Adds)
			}
			if tt.allow != reflect.DeepEqual(f.Removes, tt.plan.Removes) && len(tt.plan.Removes) > 0 {
				t.Fatalf("Filter removes = %v with allow=%v", f.Removes, tt.allow)
			}
			if !tt.allow && f.Removes != nil {
				t.Fatalf("blocked verdict kept removals %v", f.Removes)
			}
		})
	}
}

func TestCheckRun(t *testing.T) {
	tests := []struct {
		name     string
		plans    map[string]GroupPlan
		limits   Limits
		removals int
		blocked  []string
	}{
		{
			name: "under the run cap",
			plans: map[string]GroupPlan{
				"g1": {removes(2), 5, 7, 0, 0, 0}, "g2": {removes(3), 5, 8, 0, 0, 0}, "g3": {Plan{Adds: []string{"x"}}, 1, 0, 0, 0, 0},
			},
			limits: Limits{MaxRemovals: 5}, removals: 5,
		},
		{
			name: "each group under the cap, the run over it: no group removes",
			plans: map[string]GroupPlan{
				"g1": {removes(4), 5, 9, 0, 0, 0}, "g2": {removes(4), 5, 9, 0, 0, 0}, "g3": {Plan{Adds: []string{"x"}}, 1, 0, 0, 0, 0},
			},
			limits: Limits{MaxRemovals: 5}, removals: 8, blocked: []string{"g1", "g2"},
		},
		{
			name: "a suspicious group is blocked alone when the run is under the cap",
			plans: map[string]GroupPlan{
				"g1": {removes(2), 0, 2, 0, 0, 0}, "g2": {removes(2), 5, 7, 0, 0, 0},
			},
			limits: Limits{MaxRemovals: 10}, removals: 4, blocked: []string{"g1"},
		},
		{
			name: "a suspicious group's removals count toward the run cap",
			plans: map[string]GroupPlan{
				"big": {removes(50), 0, 50, 0, 0, 0}, "g2": {removes(2), 5, 7, 0, 0, 0},
			},
			limits: Limits{MaxRemovals: 10}, removals: 52, blocked: []string{"big", "g2"},
		},
		{
			name: "empty allowed",
			plans: map[string]GroupPlan{
				"g1": {removes(2), 0, 2, 0, 0, 0},
			},
			limits: Limits{MaxRemovals: 10, AllowEmptyDesired: true}, removals: 2,
		},
		{
			name: "no cap",
			plans: map[string]GroupPlan{
				"g1": {removes(200), 10, 210, 0, 0, 0},
			},
			limits: Limits{MaxRemovals: -1}, removals: 200,
		},
		{
			// Okta listed the group's one member, deactivated (not granted): desired is empty
			// because of its status, not because Okta answered nothing.
			name: "every listed member revoked: emptied",
			plans: map[string]GroupPlan{
				"breakglass": {Plan: removes(1), Desired: 0, Actual: 1, Listed: 1, Revoked: 1},
			},
			limits: Limits{MaxRemovals: 10}, removals: 1,
		},
		{
			name: "Okta listed nobody: blocked",
			plans: map[string]GroupPlan{
				"g1": {Plan: removes(1), Desired: 0, Actual: 1, Listed: 0, Revoked: 0},
			},
			limits: Limits{MaxRemovals: 10}, removals: 1, blocked: []string{"g1"},
		},
		{
			// One granted member listed but not linked (desired 0 after linking): the link may
			// have failed, so the empty desired set is still suspicious.
			name: "a granted member listed, none desired: blocked",
			plans: map[string]GroupPlan{
				"g1": {Plan: removes(2), Desired: 0, Actual: 2, Listed: 2, Revoked: 1},
			},
			limits: Limits{MaxRemovals: 10}, removals: 2, blocked: []string{"g1"},
		},
		{
			name: "every listed member revoked, the run over the cap: blocked by the cap",
			plans: map[string]GroupPlan{
				"g1": {Plan: removes(3), Desired: 0, Actual: 3, Listed: 3, Revoked: 3},
			},
			limits: Limits{MaxRemovals: 2}, removals: 3, blocked: []string{"g1"},
		},
		{name: "no groups", limits: Limits{MaxRemovals: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := CheckRun(tt.plans, tt.limits)
			if rv.Removals != tt.removals {
				t.Fatalf("Removals = %d, want %d", rv.Removals, tt.removals)
			}
			if !reflect.DeepEqual(rv.Blocked, tt.blocked) {
				t.Fatalf("Blocked = %v, want %v", rv.Blocked, tt.blocked)
			}
			if len(rv.Groups) != len(tt.plans) {
				t.Fatalf("%d verdicts for %d groups", len(rv.Groups), len(tt.plans))
			}
			for id, v := range rv.Groups {
				blocked := slices.Contains(tt.blocked, id)
				if v.AllowRemovals == blocked || blocked == (v.Reason == "") {
					t.Errorf("group %s: verdict %+v, blocked=%v", id, v, blocked)
				}
			}
		})
	}
}

// A listing longer than the count (a member added between the two reads) is complete enough; a
// shorter one may be partial, so the group removes nobody (a member removed in Okta between the
// reads only delays that group's removals by one run). Counted 0 is an unknown count.
func TestPartialListingBlocksRemovals(t *testing.T) {
	for _, c := range []struct {
		listed, counted int
		removes         int
		partial, allow  bool
	}{{10, 10, 1, false, true}, {11, 10, 1, false, true}, {9, 10, 1, true, false}, {0, 10, 1, true, false},
		{0, 0, 1, false, false}, {9, 10, 0, true, true}, {5, 0, 1, false, true}} {
		gp := GroupPlan{Plan: removes(c.removes), Desired: max(c.listed-c.removes, 0), Actual: max(c.listed, c.removes), Listed: c.listed, Counted: c.counted}
		v := CheckGroup(gp, Limits{MaxRemovals: -1})
		if v.Partial != c.partial || v.AllowRemovals != c.allow {
			t.Errorf("listed %d counted %d, %d removes: %+v, want partial %v allow %v", c.listed, c.counted, c.removes, v, c.partial, c.allow)
		}
		if c.partial && c.removes > 0 && !strings.Contains(v.Reason, "may be partial") {
			t.Errorf("listed %d counted %d: reason %q", c.listed, c.counted, v.Reason)
		}
	}
	// Partial and over the group cap: both reasons are given, and the cap does not hide the other.
	v := CheckGroup(GroupPlan{Plan: removes(3), Desired: 5, Actual: 8, Listed: 8, Counted: 9}, Limits{MaxRemovals: 1})
	if v.AllowRemovals || !strings.Contains(v.Reason, "may be partial") || !strings.Contains(v.Reason, "cap of 1") {
		t.Errorf("partial over the cap: %+v", v)
	}
}
