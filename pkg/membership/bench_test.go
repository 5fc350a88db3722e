package membership

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// burst builds n changes shaped like a real burst: 90% membership changes over 50 groups and
// 2,000 users (so keys repeat), the rest renames and deactivations, ~5% redeliveries.
func burst(n int) []Change {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]Change, 0, n)
	for i := range n {
		if i > 0 && r.IntN(20) == 0 {
			out = append(out, out[r.IntN(len(out))])
			continue
		}
		c := Change{
			EventUUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), i),
			Published: t0.Add(time.Duration(r.IntN(60_000)) * time.Millisecond),
			GroupID:   fmt.Sprintf("00g%017d", r.IntN(50)),
			UserID:    fmt.Sprintf("00u%017d", r.IntN(2000)),
		}
		c.GroupName = "AWS_" + c.GroupID
		c.Login = c.UserID + "@example.com"
		switch v := r.IntN(100); {
		case v < 50:
			c.Kind = KindAdd
		case v < 90:
			c.Kind = KindRemove
		case v < 95:
			c.Kind, c.UserID, c.Login = KindRename, "", ""
		default:
			c.Kind, c.GroupID, c.GroupName = KindUserDeactivate, "", ""
		}
		out = append(out, c)
	}
	return out
}

func BenchmarkCollapse(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		cs := burst(n)
		b.Run(fmt.Sprintf("changes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := Collapse(cs)
				_ = r.ByGroup()
			}
		})
	}
}

func BenchmarkPlanChanges(b *testing.B) {
	// One group's share of a 10,000-change burst into a single group: 2,000 distinct users.
	cs := burst(10_000)
	resolved := map[string]string{}
	current := map[string]bool{}
	var group []Change
	for i := range cs {
		if !cs[i].Kind.Member() {
			continue
		}
		c := cs[i]
		c.GroupID = "00g-one"
		group = append(group, c)
		resolved[c.UserID] = "scim-" + c.UserID
		current["scim-"+c.UserID] = len(c.UserID)%2 == 0
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := PlanChanges(group, resolved, current); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlanDiff(b *testing.B) {
	// 10k members with 1% drift each way, both lists unsorted as SCIM and Okta return them.
	const n = 10_000
	r := rand.New(rand.NewPCG(3, 4))
	desired := make([]string, 0, n)
	actual := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("%08x-%08d", r.Uint32(), i)
		switch {
		case i%100 == 0:
			desired = append(desired, id) // missing in SCIM
		case i%100 == 1:
			actual = append(actual, id) // extra in SCIM
		default:
			desired = append(desired, id)
			actual = append(actual, id)
		}
	}
	r.Shuffle(len(actual), func(i, j int) { actual[i], actual[j] = actual[j], actual[i] })
	b.Run("ids=10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := PlanDiff(desired, actual)
			if len(p.Adds) != n/100 || len(p.Removes) != n/100 {
				b.Fatalf("plan %d/%d", len(p.Adds), len(p.Removes))
			}
		}
	})
}

func BenchmarkChunk(b *testing.B) {
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Chunk(ids, MaxPatchValues)
	}
}
