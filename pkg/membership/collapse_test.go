package membership

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Change
		ok   bool
	}{
		{"add", ch("e1", 0, KindAdd, "g", "u"), true},
		{"remove", ch("e1", 0, KindRemove, "g", "u"), true},
		{"rename needs no user", ch("e1", 0, KindRename, "g", ""), true},
		{"group delete needs no user", ch("e1", 0, KindGroupDelete, "g", ""), true},
		{"deactivate needs no group", ch("e1", 0, KindUserDeactivate, "", "u"), true},
		{"unknown kind", ch("e1", 0, "bogus", "g", "u"), false},
		{"empty kind", ch("e1", 0, "", "g", "u"), false},
		{"no uuid", ch("", 0, KindAdd, "g", "u"), false},
		{"no time", Change{EventUUID: "e1", Kind: KindAdd, GroupID: "g", UserID: "u"}, false},
		{"add without user", ch("e1", 0, KindAdd, "g", ""), false},
		{"add without group", ch("e1", 0, KindAdd, "", "u"), false},
		{"remove without user", ch("e1", 0, KindRemove, "g", ""), false},
		{"rename without group", ch("e1", 0, KindRename, "", ""), false},
		{"deactivate without user", ch("e1", 0, KindUserDeactivate, "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.c)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("error %v does not wrap ErrInvalidChange", err)
			}
		})
	}
}

func TestCollapseWinner(t *testing.T) {
	nanoLater := ch("a", 1, KindAdd, "g", "u")
	nanoLater.Published = nanoLater.Published.Add(time.Nanosecond)
	tests := []struct {
		name string
		in   []Change
		want Change
	}{
		{
			name: "newest wins, add after remove",
			in:   []Change{ch("e1", 0, KindRemove, "g", "u"), ch("e2", 5, KindAdd, "g", "u")},
			want: ch("e2", 5, KindAdd, "g", "u"),
		},
		{
			name: "newest wins when delivered first",
			in:   []Change{ch("e2", 5, KindRemove, "g", "u"), ch("e1", 0, KindAdd, "g", "u")},
			want: ch("e2", 5, KindRemove, "g", "u"),
		},
		{
			name: "equal time: remove beats add even with a smaller uuid",
			in:   []Change{ch("zz", 3, KindAdd, "g", "u"), ch("aa", 3, KindRemove, "g", "u")},
			want: ch("aa", 3, KindRemove, "g", "u"),
		},
		{
			name: "equal time and kind: greater uuid wins",
			in:   []Change{ch("b", 3, KindAdd, "g", "u"), ch("c", 3, KindAdd, "g", "u"), ch("a", 3, KindAdd, "g", "u")},
			want: ch("c", 3, KindAdd, "g", "u"),
		},
		{
			name: "exact duplicates are one change",
			in:   []Change{ch("e1", 1, KindAdd, "g", "u"), ch("e1", 1, KindAdd, "g", "u"), ch("e1", 1, KindAdd, "g", "u")},
			want: ch("e1", 1, KindAdd, "g", "u"),
		},
		{
			name: "nanoseconds count",
			in:   []Change{ch("b", 1, KindRemove, "g", "u"), nanoLater},
			want: nanoLater,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collapse(tt.in)
			if len(got.Members) != 1 {
				t.Fatalf("Members = %v, want one key", got.Members)
			}
			if w := got.Members[Key{"g", "u"}]; w != tt.want {
				t.Fatalf("winner = %+v, want %+v", w, tt.want)
			}
			if len(got.Others) != 0 || len(got.Invalid) != 0 {
				t.Fatalf("Others %v Invalid %v, want none", got.Others, got.Invalid)
			}
		})
	}
}

func TestCollapseKeysAreIndependent(t *testing.T) {
	in := []Change{
		ch("e1", 9, KindRemove, "g1", "u1"),
		ch("e2", 1, KindAdd, "g1", "u2"),
		ch("e3", 1, KindAdd, "g2", "u1"),
		ch("e4", 0, KindAdd, "g1", "u1"),
	}
	got := Collapse(in)
	want := map[Key]Change{
		{"g1", "u1"}: in[0],
		{"g1", "u2"}: in[1],
		{"g2", "u1"}: in[2],
	}
	if !reflect.DeepEqual(got.Members, want) {
		t.Fatalf("Members = %v, want %v", got.Members, want)
	}
	if keys := got.Keys(); !reflect.DeepEqual(keys, []Key{{"g1", "u1"}, {"g1", "u2"}, {"g2", "u1"}}) {
		t.Fatalf("Keys = %v", keys)
	}
	groups := got.ByGroup()
	wantGroups := []GroupChanges{
		{GroupID: "g1", Changes: []Change{in[0], in[1]}},
		{GroupID: "g2", Changes: []Change{in[2]}},
	}
	if !reflect.DeepEqual(groups, wantGroups) {
		t.Fatalf("ByGroup = %v, want %v", groups, wantGroups)
	}
}

func TestCollapseOthersAndInvalid(t *testing.T) {
	rename := ch("r1", 5, KindRename, "g1", "")
	del := ch("d1", 1, KindGroupDelete, "g2", "")
	deact := ch("x1", 3, KindUserDeactivate, "", "u1")
	bad := ch("b1", 2, "bogus", "g1", "u1")
	noUser := ch("n1", 2, KindAdd, "g1", "")
	in := []Change{rename, deact, del, rename, bad, noUser, bad, deact, ch("a1", 0, KindAdd, "g1", "u1")}

	got := Collapse(in)
	if want := []Change{del, deact, rename}; !reflect.DeepEqual(got.Others, want) {
		t.Fatalf("Others = %v, want %v (deduped, oldest first)", got.Others, want)
	}
	if want := []Change{bad, noUser}; !reflect.DeepEqual(got.Invalid, want) {
		t.Fatalf("Invalid = %v, want %v", got.Invalid, want)
	}
	if len(got.Members) != 1 {
		t.Fatalf("Members = %v, want only g1/u1", got.Members)
	}
}

func TestCollapseOneEventSeveralTargets(t *testing.T) {
	// One System Log event can carry several groups; each target is its own change.
	a := ch("e1", 0, KindAdd, "g1", "u1")
	b := ch("e1", 0, KindAdd, "g2", "u1")
	r1 := ch("e2", 0, KindRename, "g1", "")
	r2 := ch("e2", 0, KindRename, "g2", "")
	got := Collapse([]Change{a, b, r1, r2, r2})
	if len(got.Members) != 2 || len(got.Others) != 2 {
		t.Fatalf("Members %v Others %v, want 2 and 2", got.Members, got.Others)
	}
}

func TestCollapseNormalizesZone(t *testing.T) {
	utc := ch("e1", 7, KindAdd, "g", "u")
	cet := utc
	cet.Published = cet.Published.In(time.FixedZone("CET", 3600))
	// A time read from the clock carries a monotonic reading; it must not leak into results.
	mono := time.Now()
	withMono := ch("e2", 0, KindRemove, "g", "v")
	withMono.Published = mono

	got := Collapse([]Change{cet, utc, withMono})
	if w := got.Members[Key{"g", "u"}]; w != utc {
		t.Fatalf("winner = %+v (loc %v), want the UTC form %+v", w, w.Published.Location(), utc)
	}
	if w := got.Members[Key{"g", "v"}]; w.Published != mono.UTC() || w.Published.Location() != time.UTC {
		t.Fatalf("Published = %v, want %v in UTC without monotonic reading", w.Published, mono.UTC())
	}
}

func TestCollapseEmpty(t *testing.T) {
	got := Collapse(nil)
	if got.Members == nil || len(got.Members) != 0 || got.Others != nil || got.Invalid != nil {
		t.Fatalf("Collapse(nil) = %+v, want empty non-nil Members", got)
	}
	if got.ByGroup() != nil || len(got.Keys()) != 0 {
		t.Fatal("empty result has groups or keys")
	}
}

func TestSuperseded(t *testing.T) {
	old := ch("e1", 0, KindAdd, "g", "u")
	win := ch("e2", 1, KindRemove, "g", "u")
	winCET := win
	winCET.Published = win.Published.In(time.FixedZone("CET", 3600))
	rename := ch("e3", 0, KindRename, "g", "")
	r := Collapse([]Change{old, win, rename})
	tests := []struct {
		name string
		c    Change
		want bool
	}{
		{"older change", old, true},
		{"winner", win, false},
		{"winner in another zone", winCET, false},
		{"not a membership change", rename, false},
		{"key not in batch", ch("e4", 0, KindAdd, "g", "other"), false},
		{"invalid change", ch("", 0, KindAdd, "g", "u"), false},
	}
	for _, tt := range tests {
		if got := r.Superseded(tt.c); got != tt.want {
			t.Errorf("%s: Superseded = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCompareIsTotal(t *testing.T) {
	base := ch("e1", 0, KindAdd, "g", "u")
	variants := []Change{base}
	for _, mut := range []func(*Change){
		func(c *Change) { c.Published = c.Published.Add(1) },
		func(c *Change) { c.Kind = KindRemove },
		func(c *Change) { c.EventUUID = "e2" },
		func(c *Change) { c.GroupID = "h" },
		func(c *Change) { c.UserID = "v" },
		func(c *Change) { c.Login = "other" },
		func(c *Change) { c.GroupName = "other" },
		func(c *Change) { c.Kind = KindRename },
	} {
		c := base
		mut(&c)
		variants = append(variants, c)
	}
	for i, a := range variants {
		for j, b := range variants {
			ab, ba := Compare(a, b), Compare(b, a)
			if ab != -ba {
				t.Errorf("Compare not antisymmetric for %d,%d: %d %d", i, j, ab, ba)
			}
			if (ab == 0) != (i == j) {
				t.Errorf("Compare(%d,%d) = %d: distinct changes must not compare equal", i, j, ab)
			}
		}
	}
}

func TestByGroupAppendIsSafe(t *testing.T) {
	r := Collapse([]Change{ch("e1", 0, KindAdd, "g1", "u1"), ch("e2", 0, KindAdd, "g2", "u1")})
	groups := r.ByGroup()
	_ = append(groups[0].Changes, ch("x", 0, KindAdd, "g1", "u9"))
	if groups[1].Changes[0].EventUUID != "e2" {
		t.Fatalf("append to one group overwrote the next: %+v", groups[1])
	}
}
