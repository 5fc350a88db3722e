package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// checkClaims is the claim contract (claim.go) every Ledger keeps.
func checkClaims(t *testing.T, l Ledger) {
	t.Helper()
	ctx := context.Background()
	k := Key{GroupID: "00gC", UserID: "00uC"}
	rec := func(kind membership.Kind, at time.Time, uuid string) Record {
		return Record{Key: k, Mark: membership.Mark{Published: at, Kind: kind, EventUUID: uuid}}
	}
	mark := func() (membership.Mark, bool) {
		t.Helper()
		got, err := l.Get(ctx, []Key{k})
		if err != nil {
			t.Fatal(err)
		}
		m, ok := got[k]
		return m, ok
	}
	one := func(what string, f func(context.Context, []Record) ([]bool, error), r Record, want bool) {
		t.Helper()
		w, err := f(ctx, []Record{r})
		if err != nil || len(w) != 1 || w[0] != want {
			t.Fatalf("%s %+v: %v, %v; want %v", what, r.Mark, w, err, want)
		}
	}
	addT0 := rec(membership.KindAdd, t0, "e-add")
	one("finalize without a claim", l.Finalize, addT0, false)
	if _, ok := mark(); ok {
		t.Fatal("a failed finalize wrote a mark")
	}
	one("claim", l.Claim, addT0, true)
	m, ok := mark()
	if !ok || !m.Pending || m.Kind != membership.KindAdd || !m.Published.Equal(t0) {
		t.Fatalf("claimed mark %+v, %v; want the add, pending", m, ok)
	}
	if v := membership.Decide(membership.Change{Published: t0, Kind: membership.KindAdd, EventUUID: "e-add"}, m); v != membership.DecisionApply {
		t.Fatalf("the change of a pending claim: %v, want apply (a retry redoes it)", v)
	}
	one("claim again (a retry)", l.Claim, addT0, true)
	one("older claim", l.Claim, rec(membership.KindRemove, t0.Add(-time.Second), "e-old"), false)
	// Same millisecond: remove beats add (membership.Decide), whatever the order of the claims.
	rmT0 := rec(membership.KindRemove, t0, "e-rm")
	one("remove at the add's time", l.Claim, rmT0, true)
	one("add at the remove's time", l.Claim, addT0, false)
	one("finalize of the overtaken add", l.Finalize, addT0, false)
	if m, _ := mark(); m.Kind != membership.KindRemove || !m.Pending {
		t.Fatalf("mark %+v; want the remove's claim", m)
	}
	// Same millisecond and op: the greater event uuid wins.
	one("remove, smaller uuid", l.Claim, rec(membership.KindRemove, t0, "e-ra"), false)
	one("finalize", l.Finalize, rmT0, true)
	m, _ = mark()
	if m.Pending || m.EventUUID != "e-rm" {
		t.Fatalf("finalized mark %+v", m)
	}
	if v := membership.Decide(membership.Change{Published: t0, Kind: membership.KindRemove, EventUUID: "e-rm"}, m); v != membership.DecisionApplied {
		t.Fatalf("the change of a finalized mark: %v, want already applied", v)
	}
	one("finalize twice", l.Finalize, rmT0, true)
	// Put (verified no-ops, the reconciler's repairs) keeps the same order.
	one("put older", l.PutReport, rec(membership.KindAdd, t0.Add(-time.Hour), "e-put-old"), false)
	one("put add at the remove's time", l.PutReport, rec(membership.KindAdd, t0, "e-zz"), false)
	one("put newer", l.PutReport, rec(membership.KindAdd, t0.Add(time.Hour), "e-put-new"), true)
	if m, _ := mark(); m.Pending || m.EventUUID != "e-put-new" {
		t.Fatalf("put mark %+v", m)
	}
	// A claim over a finalized newer-or-equal mark of another change loses; the finalize of a
	// claim overtaken by a newer one fails.
	newer := rec(membership.KindRemove, t0.Add(2*time.Hour), "e-newer")
	newest := rec(membership.KindAdd, t0.Add(3*time.Hour), "e-newest")
	one("claim newer", l.Claim, newer, true)
	one("claim newest", l.Claim, newest, true)
	one("finalize overtaken", l.Finalize, newer, false)
	one("finalize newest", l.Finalize, newest, true)
}

func TestClaimsMemory(t *testing.T) { checkClaims(t, NewMemory()) }

func TestClaimsTable(t *testing.T) {
	checkClaims(t, New(&fakeDynamo{items: map[string]map[string]types.AttributeValue{}, serve: 100}, "state"))
}

func TestTarget(t *testing.T) {
	add := membership.Mark{Published: t0, Kind: membership.KindAdd, EventUUID: "e1"}
	rm := membership.Mark{Published: t0, Kind: membership.KindRemove, EventUUID: "e1"}
	deact := membership.Mark{Published: t0.Add(-time.Hour), Kind: membership.KindUserDeactivate, EventUUID: "d"}
	react := membership.Mark{Published: t0.Add(time.Hour), Kind: membership.KindUserReactivate, EventUUID: "r"}
	rec := membership.Mark{Published: t0, Kind: membership.KindAdd, EventUUID: ReconcilePrefix + "run"}
	for _, tc := range []struct {
		name          string
		m             membership.Mark
		mFound        bool
		st            membership.Mark
		stFound, want bool
	}{
		{"add, no status", add, true, membership.Mark{}, false, true},
		{"remove", rm, true, membership.Mark{}, false, false},
		{"no mark", membership.Mark{}, false, membership.Mark{}, false, false},
		{"add, deactivated before (an admin added a deactivated user)", add, true, deact, true, false},
		{"add, deactivated after", add, true, membership.Mark{Published: t0.Add(time.Hour), Kind: membership.KindUserDeactivate}, true, false},
		{"add, reactivated", add, true, react, true, true},
		{"reconciler add, deactivated before its read", rec, true, deact, true, true},
		{"reconciler add, deactivated after its read", rec, true, membership.Mark{Published: t0.Add(time.Second), Kind: membership.KindUserDeactivate}, true, false},
	} {
		if got := Target(tc.m, tc.mFound, tc.st, tc.stFound); got != tc.want {
			t.Errorf("%s: Target = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The protocol of claim.go, modelled step by step over a real Ledger: writers of one (group,
// user) — membership changes that classify, claim, PATCH, finalize and converge, and
// deactivations that claim the status mark, list the user's groups and remove — interleaved at
// random (every ledger call and PATCH is one atomic step, in any order). After all writers are
// done, AWS must agree with the ledger (Target), a deactivated user must be out, and without
// deactivations AWS must hold the newest change. pkg/syncer's interleaving tests run the
// product code itself the same way.

// modelAWS is one membership in AWS.
type modelAWS struct{ member bool }

type modelWriter struct {
	c    membership.Change
	step int
	last bool // what this writer's last PATCH wrote
	done bool
}

func (w *modelWriter) run(t *testing.T, l Ledger, aws *modelAWS) {
	ctx := context.Background()
	key := Key{GroupID: w.c.GroupID, UserID: w.c.UserID}
	sk := StatusKey(w.c.UserID)
	must := func(b []bool, err error) bool {
		if err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	get := func() map[Key]membership.Mark {
		m, err := l.Get(ctx, []Key{key, sk})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if w.c.Kind.User() { // a deactivation: claim the status, list, remove
		switch w.step {
		case 0:
			if !must(l.PutReport(ctx, []Record{StatusRecord(w.c)})) {
				w.done = true
			}
		case 1:
			w.last = aws.member // ListUserGroups
		case 2:
			if w.last {
				aws.member = false
			}
			w.done = true
		}
		w.step++
		return
	}
	rec := RecordOf(w.c)
	switch w.step {
	case 0: // classify, with the status of the user
		m := get()
		mk := m[key]
		if v := membership.Decide(w.c, mk); v != membership.DecisionApply || (w.c.Kind == membership.KindAdd && !Permits(m, w.c.UserID)) {
			w.done = true
		}
	case 1:
		if !must(l.Claim(ctx, []Record{rec})) {
			w.done = true
		}
	case 2:
		aws.member = w.c.Kind == membership.KindAdd
		w.last = aws.member
	case 3:
		if must(l.Finalize(ctx, []Record{rec})) && w.c.Kind == membership.KindRemove {
			w.done = true // a remove that is still the newest decision needs no status check
		}
	default: // read; converge or stop
		if w.step%2 == 0 {
			m := get()
			mk, mf := m[key]
			st, sf := m[sk]
			target := Target(mk, mf, st, sf)
			if target == w.last {
				w.done = true
			}
			w.last = target
		} else {
			aws.member = w.last
		}
	}
	w.step++
}

func runModel(t *testing.T, seed uint64, l Ledger, key Key) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 19))
	aws := &modelAWS{member: rnd.IntN(2) == 0}
	n := 2 + rnd.IntN(3)
	var ws []*modelWriter
	deactivated := false
	var newest membership.Change
	for i := range n {
		at := t0.Add(time.Duration(rnd.IntN(4)) * time.Second)
		var c membership.Change
		switch rnd.IntN(5) {
		case 0:
			c = membership.Change{Kind: membership.KindUserDeactivate, UserID: key.UserID}
			deactivated = true
		case 1, 2:
			c = membership.Change{Kind: membership.KindRemove, GroupID: key.GroupID, UserID: key.UserID}
		default:
			c = membership.Change{Kind: membership.KindAdd, GroupID: key.GroupID, UserID: key.UserID}
		}
		c.Published, c.EventUUID = at, fmt.Sprintf("e%d-%d", seed, i)
		if c.Kind.Member() && (newest.Kind == "" || membership.Compare(c, newest) > 0) {
			newest = c
		}
		ws = append(ws, &modelWriter{c: c})
	}
	var trace []string
	for steps := 0; ; steps++ {
		var live []*modelWriter
		for _, w := range ws {
			if !w.done {
				live = append(live, w)
			}
		}
		if len(live) == 0 {
			break
		}
		if steps > 1000 {
			t.Fatalf("seed %d: no end after 1000 steps: %v", seed, trace)
		}
		w := live[rnd.IntN(len(live))]
		trace = append(trace, fmt.Sprintf("%s@%s#%d", w.c.Kind, w.c.Published.Format("05"), w.step))
		w.run(t, l, aws)
	}
	marks, err := l.Get(context.Background(), []Key{key, StatusKey(key.UserID)})
	if err != nil {
		t.Fatal(err)
	}
	mk, mf := marks[key]
	st, sf := marks[StatusKey(key.UserID)]
	if mf && mk.Pending && aws.member != Target(mk, mf, st, sf) {
		t.Fatalf("seed %d: mark %+v left pending and AWS disagrees", seed, mk)
	}
	switch {
	case mf && aws.member != Target(mk, mf, st, sf):
		t.Fatalf("seed %d: AWS member=%v, ledger says %v (mark %+v, status %+v); steps %v", seed, aws.member, !aws.member, mk, st, trace)
	case deactivated && aws.member:
		t.Fatalf("seed %d: a deactivated user is in AWS; steps %v", seed, trace)
	case !deactivated && newest.Kind != "" && aws.member != (newest.Kind == membership.KindAdd):
		t.Fatalf("seed %d: AWS member=%v, the newest change is %s; steps %v", seed, aws.member, newest.Kind, trace)
	}
}

func TestClaimProtocolInterleavingsMemory(t *testing.T) {
	for seed := range uint64(3000) {
		runModel(t, seed, NewMemory(), Key{GroupID: "00gM", UserID: "00uM"})
	}
}

func TestClaimProtocolInterleavingsTable(t *testing.T) {
	for seed := range uint64(500) {
		runModel(t, seed, New(&fakeDynamo{items: map[string]map[string]types.AttributeValue{}, serve: 100}, "state"), Key{GroupID: "00gM", UserID: "00uM"})
	}
}
