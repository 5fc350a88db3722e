package membership

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// changesFromBytes decodes fuzz input, 5 bytes per change, into changes from a small universe so
// that ties on time, uuid and key are frequent. Strings come from the fuzzer too (uuid suffix) so
// arbitrary bytes reach the string comparisons.
func changesFromBytes(data []byte, uuidTail string) []Change {
	kinds := []Kind{KindAdd, KindRemove, KindAdd, KindRemove, KindRename, KindGroupDelete, KindUserDeactivate, "bogus"}
	var out []Change
	for len(data) >= 5 {
		b := data[:5]
		data = data[5:]
		uuid := string(rune('a' + b[0]%5))
		if b[0]&0x80 != 0 {
			uuid += uuidTail
		}
		c := Change{
			EventUUID: uuid,
			Published: t0.Add(time.Duration(b[1]%4) * time.Millisecond).In(zones[int(b[1]>>4)%len(zones)]),
			Kind:      kinds[int(b[2])%len(kinds)],
			GroupID:   []string{"g1", "g2", "", "g3"}[b[3]%4],
			UserID:    []string{"u1", "u2", "u3", ""}[b[4]%4],
			Login:     []string{"a@x", "b@x"}[b[4]>>7],
		}
		out = append(out, c)
	}
	return out
}

func FuzzCollapse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 1, 0, 0}, "", uint64(1))                               // add and remove, same time
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0}, "x", uint64(2))               // duplicate add, older remove
	f.Add([]byte{2, 3, 4, 1, 3, 3, 3, 5, 2, 0, 4, 2, 6, 2, 1, 5, 1, 7, 0, 0}, "", uint64(3)) // others and invalid
	f.Add([]byte{0x80, 2, 0, 0, 1, 0, 2, 0, 0, 1, 0x81, 0x12, 1, 0, 1}, "\xff\x00", uint64(4))
	f.Fuzz(func(t *testing.T, data []byte, uuidTail string, seed uint64) {
		cs := changesFromBytes(data, uuidTail)
		r := rand.New(rand.NewPCG(seed, seed+1))
		perm := shuffleDup(r, cs)

		want := Collapse(cs)
		if got := Collapse(perm); !reflect.DeepEqual(got, want) {
			t.Fatalf("collapse depends on order or duplication\n got  %+v\n want %+v", got, want)
		}

		for k, w := range want.Members {
			if KeyOf(w) != k || !w.Kind.Member() || Validate(w) != nil {
				t.Fatalf("bad winner %+v for %v", w, k)
			}
			if w.Published.Location() != time.UTC {
				t.Fatalf("winner not normalized: %v", w.Published)
			}
		}
		if !slices.IsSortedFunc(want.Others, Compare) || !slices.IsSortedFunc(want.Invalid, Compare) {
			t.Fatal("Others or Invalid not sorted")
		}
		for _, o := range want.Others {
			if o.Kind.Member() || Validate(o) != nil {
				t.Fatalf("%+v in Others", o)
			}
		}
		for _, c := range cs {
			if Validate(c) == nil && c.Kind.Member() {
				if w := want.Members[KeyOf(c)]; Compare(normalize(c), w) > 0 {
					t.Fatalf("%+v beats winner %+v", c, w)
				}
			}
		}

		resolved := map[string]string{"u1": "s1", "u2": "s1", "u3": "s3"}
		current := map[string]bool{"s3": true}
		for _, g := range want.ByGroup() {
			p1, _, err := PlanChanges(g.Changes, resolved, current)
			if err != nil {
				t.Fatal(err)
			}
			p2, _, err := PlanChanges(groupMembers(perm, g.GroupID), resolved, current)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p1, p2) {
				t.Fatalf("group %s: plan from winners %+v, from permuted raw changes %+v", g.GroupID, p1, p2)
			}
		}
	})
}
