package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
)

// The single-writer rule (docs/SYNC.md; pkg/ledger/claim.go, pkg/scimapply/writer.go): two sync
// containers at once (MaximumConcurrency 2) apply changes of one (group, user) concurrently, the
// membership change in the Okta group's message group and the user's lifecycle change in
// user:<id>. The ledger makes the outcome converge.

// container is another sync container on the fixture's SCIM server and ledger: its own caches.
func (f *fixture) container() Config {
	cfg := f.cfg
	cfg.Dir = scimapply.NewDirectory(f.client, scimapply.WithSelection(selected))
	return cfg
}

// invokeWith is invoke through another container's configuration.
func (f *fixture) invokeWith(cfg Config, payload []byte) (failed []string, err error) {
	out, err := lambda.NewHandler(NewHandler(cfg).Handle).Invoke(context.Background(), payload)
	if err != nil {
		return nil, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, err
	}
	for _, it := range resp.BatchItemFailures {
		failed = append(failed, it.ItemIdentifier)
	}
	return failed, nil
}

// agree asserts that AWS holds what the ledger says for (group, user) (ledger.Target) and that no
// mark is left pending; it returns whether the user is a member.
func (f *fixture) agree(groupID, userID, group, login string) bool {
	f.t.Helper()
	member, problem := f.agreement(groupID, userID, group, login)
	if problem != "" {
		f.t.Fatal(problem)
	}
	return member
}

func (f *fixture) agreement(groupID, userID, group, login string) (bool, string) {
	f.t.Helper()
	k := membership.Key{GroupID: groupID, UserID: userID}
	marks, err := f.cfg.Ledger.Get(context.Background(), []ledger.Key{k, ledger.StatusKey(userID)})
	if err != nil {
		f.t.Fatal(err)
	}
	m, mf := marks[k]
	st, sf := marks[ledger.StatusKey(userID)]
	member := false
	for _, l := range f.members(group) {
		member = member || l == login
	}
	if mf && m.Pending {
		return member, fmt.Sprintf("mark %+v left pending", m)
	}
	if mf && member != ledger.Target(m, mf, st, sf) {
		return member, fmt.Sprintf("AWS member=%v, the ledger says %v (mark %+v, status %+v)", member, !member, m, st)
	}
	return member, ""
}

// Issue 19 path 6: the add's PATCH is slow; the deactivation, in the other container, claims the
// status mark and lists the user's AWS groups while the add is in flight (the group is not listed
// yet). The add, once confirmed, reads the status mark and removes the user again.
func TestWriterAddRacingADeactivationEndsOut(t *testing.T) {
	addRacingDeactivation(t, ledger.NewMemory())
}

// addRacingDeactivation is the path-6 race on the ledger led.
func addRacingDeactivation(t *testing.T, led ledger.Ledger) {
	f := newFixture(t, func(c *Config) { c.Okta, c.Ledger = nil, led })
	ann := f.user("ann@example.com", "00uAnn")
	f.srv.AddGroup("AWS_Admins", "00gA")
	h := f.srv.Hold(func(q scimtest.Request) bool { return q.MemberPatch("add", ann) })
	a, b := f.container(), f.container()
	done := make(chan []string)
	go func() {
		failed, err := f.invokeWith(a, f.event(add("a1", t0, "00uAnn", "ann@example.com")))
		if err != nil {
			t.Error(err)
		}
		done <- failed
	}()
	<-h.Reached()
	deact := lifecycle(membership.KindUserDeactivate, "d1", t0.Add(time.Second), "00uAnn", "ann@example.com")
	if failed, err := f.invokeWith(b, f.event(deact)); err != nil || len(failed) != 0 {
		t.Fatalf("deactivation: failed %v, %v", failed, err)
	}
	if got := f.members("AWS_Admins"); len(got) != 0 {
		t.Fatalf("members %v before the add lands", got)
	}
	h.Release()
	if failed := <-done; len(failed) != 0 {
		t.Fatalf("add: failed %v\n%s", failed, f.logs.String())
	}
	if f.agree("00gA", "00uAnn", "AWS_Admins", "ann@example.com") {
		t.Fatalf("a deactivated user is in AWS_Admins: %v", f.srv.Snapshot())
	}
	if !strings.Contains(f.logs.String(), "single-writer rule: the ledger's newest decision differs") {
		t.Fatalf("no converge log line:\n%s", f.logs.String())
	}
}

// A newer membership change claimed during a slow PATCH of an older one wins, in both directions:
// the older writer's finalize fails and it converges to the newer mark.
func TestWriterSlowOlderChangeConvergesToTheNewer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		slow, fast membership.Kind
		member     bool // ann in the group before
		want       bool
	}{
		{"slow add, newer remove", membership.KindAdd, membership.KindRemove, false, false},
		{"slow remove, newer add", membership.KindRemove, membership.KindAdd, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ann := f.user("ann@example.com", "00uAnn")
			g := f.srv.AddGroup("AWS_Admins", "00gA")
			if tc.member {
				f.srv.AddMember(g, ann)
			}
			h := f.srv.Hold(func(q scimtest.Request) bool { return q.MemberPatch(string(tc.slow), ann) })
			done := make(chan []string)
			go func() {
				failed, err := f.invokeWith(f.container(), f.event(change(tc.slow, "slow", t0, "00uAnn", "ann@example.com", "00gA", "AWS_Admins")))
				if err != nil {
					t.Error(err)
				}
				done <- failed
			}()
			<-h.Reached()
			if failed, err := f.invokeWith(f.container(), f.event(change(tc.fast, "fast", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gA", "AWS_Admins"))); err != nil || len(failed) != 0 {
				t.Fatalf("newer change: failed %v, %v", failed, err)
			}
			h.Release()
			if failed := <-done; len(failed) != 0 {
				t.Fatalf("slow change: failed %v", failed)
			}
			if got := f.agree("00gA", "00uAnn", "AWS_Admins", "ann@example.com"); got != tc.want {
				t.Fatalf("member=%v, want %v (the newer change)", got, tc.want)
			}
			marks, _ := f.ledger.Get(context.Background(), []ledger.Key{{GroupID: "00gA", UserID: "00uAnn"}})
			if m := marks[ledger.Key{GroupID: "00gA", UserID: "00uAnn"}]; m.EventUUID != "fast" {
				t.Fatalf("mark %+v, want the newer change's", m)
			}
		})
	}
}

// A claim whose PATCH failed stays pending; the retry of the change applies it (membership.Decide: a
// pending mark of the same change is Apply, not already applied).
func TestWriterPendingClaimIsRedoneOnRetry(t *testing.T) {
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.srv.AddGroup("AWS_Admins", "00gA")
	f.srv.SetFaultFunc(func(route string, _ *http.Request) *scimtest.Fault {
		if route == "PATCH /Groups/{id}" {
			return &scimtest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	ev := f.event(add("a1", t0, "00uAnn", "ann@example.com"))
	if failed := f.invoke(context.Background(), ev); len(failed) != 1 {
		t.Fatalf("failed %v, want the add retried", failed)
	}
	k := ledger.Key{GroupID: "00gA", UserID: "00uAnn"}
	if marks, _ := f.ledger.Get(context.Background(), []ledger.Key{k}); !marks[k].Pending {
		t.Fatalf("mark %+v, want the claim pending", marks[k])
	}
	f.srv.SetFaultFunc(nil)
	if failed := f.invoke(context.Background(), ev); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	if !f.agree("00gA", "00uAnn", "AWS_Admins", "ann@example.com") {
		t.Fatal("the retried add was not applied")
	}
}

// countingLedger counts the ledger writes.
type countingLedger struct {
	ledger.Ledger
	writes atomic.Int64
}

func (c *countingLedger) Put(ctx context.Context, r []ledger.Record) error {
	c.writes.Add(1)
	return c.Ledger.Put(ctx, r)
}

func (c *countingLedger) PutReport(ctx context.Context, r []ledger.Record) ([]bool, error) {
	c.writes.Add(1)
	return c.Ledger.PutReport(ctx, r)
}

func (c *countingLedger) Claim(ctx context.Context, r []ledger.Record) ([]bool, error) {
	c.writes.Add(1)
	return c.Ledger.Claim(ctx, r)
}

func (c *countingLedger) Finalize(ctx context.Context, r []ledger.Record) ([]bool, error) {
	c.writes.Add(1)
	return c.Ledger.Finalize(ctx, r)
}

// A dry run claims nothing, finalizes nothing and sends no SCIM write.
func TestWriterDryRunClaimsNothing(t *testing.T) {
	cl := &countingLedger{}
	f := newFixture(t, func(c *Config) {
		c.DryRun = true
		cl.Ledger = c.Ledger
		c.Ledger = cl
	})
	ann := f.user("ann@example.com", "00uAnn")
	g := f.srv.AddGroup("AWS_Admins", "00gA")
	f.srv.AddGroup("AWS_Dev", "00gB")
	f.srv.AddMember(g, ann)
	failed := f.invoke(context.Background(), f.event(
		change(membership.KindAdd, "a1", t0, "00uAnn", "ann@example.com", "00gB", "AWS_Dev"),
		remove("r1", t0, "00uAnn", "ann@example.com"),
	))
	if len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if n := cl.writes.Load(); n != 0 || f.ledger.Len() != 0 {
		t.Fatalf("dry run: %d ledger writes, %d marks", n, f.ledger.Len())
	}
	if n := f.srv.Writes(); n != 0 {
		t.Fatalf("dry run: %d SCIM writes", n)
	}
}

// scheduler interleaves workers at random: every SCIM request and every ledger call is a step
// that waits until all workers wait, then one step, drawn from the seed, proceeds. A run is a
// pure function of the seed (each worker is sequential between its steps).
type scheduler struct {
	mu       sync.Mutex
	cond     *sync.Cond
	waiting  []chan struct{}
	workers  int
	finished int
	rnd      *rand.Rand
	steps    int
}

func newScheduler(seed uint64, workers int) *scheduler {
	s := &scheduler{workers: workers, rnd: rand.New(rand.NewPCG(seed, 6))}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// gate blocks the calling step until the scheduler lets it run.
func (s *scheduler) gate() {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiting = append(s.waiting, ch)
	s.cond.Broadcast()
	s.mu.Unlock()
	<-ch
}

func (s *scheduler) done() {
	s.mu.Lock()
	s.finished++
	s.cond.Broadcast()
	s.mu.Unlock()
}

// run releases steps until every worker finished.
func (s *scheduler) run() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for s.finished < s.workers && len(s.waiting) < s.workers-s.finished {
			s.cond.Wait()
		}
		if s.finished == s.workers {
			return
		}
		i := s.rnd.IntN(len(s.waiting))
		ch := s.waiting[i]
		s.waiting = append(s.waiting[:i:i], s.waiting[i+1:]...)
		s.steps++
		close(ch)
	}
}

// gatedLedger makes every ledger call a scheduler step.
type gatedLedger struct {
	ledger.Ledger
	s *scheduler
}

func (g *gatedLedger) Get(ctx context.Context, k []ledger.Key) (map[ledger.Key]membership.Mark, error) {
	g.s.gate()
	return g.Ledger.Get(ctx, k)
}

func (g *gatedLedger) Put(ctx context.Context, r []ledger.Record) error {
	g.s.gate()
	return g.Ledger.Put(ctx, r)
}

func (g *gatedLedger) PutReport(ctx context.Context, r []ledger.Record) ([]bool, error) {
	g.s.gate()
	return g.Ledger.PutReport(ctx, r)
}

func (g *gatedLedger) Claim(ctx context.Context, r []ledger.Record) ([]bool, error) {
	g.s.gate()
	return g.Ledger.Claim(ctx, r)
}

func (g *gatedLedger) Finalize(ctx context.Context, r []ledger.Record) ([]bool, error) {
	g.s.gate()
	return g.Ledger.Finalize(ctx, r)
}

// Generative: 2 to 4 changes of Ann in AWS_Admins (adds, removes, a deactivation), each in its
// own container, all at once, every step interleaved at random. After the queue drains (the
// failed ones redelivered), AWS agrees with the ledger, a deactivated Ann is out, and without a
// deactivation AWS holds the newest change. Reproduce a failure with its seed.
func TestWriterRandomInterleavings(t *testing.T) {
	seeds := uint64(120)
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		runInterleaving(t, seed, ledger.NewMemory())
	}
}

func runInterleaving(t *testing.T, seed uint64, led ledger.Ledger) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 19))
	f := newFixture(t, func(c *Config) { c.Okta, c.Ledger = nil, led })
	ann := f.user("ann@example.com", "00uAnn")
	g := f.srv.AddGroup("AWS_Admins", "00gA")
	if rnd.IntN(2) == 0 {
		f.srv.AddMember(g, ann)
	}
	n := 2 + rnd.IntN(3)
	var changes []membership.Change
	deactivated := false
	var newest membership.Change
	for i := range n {
		at := t0.Add(time.Duration(rnd.IntN(3)) * time.Second)
		uuid := fmt.Sprintf("s%d-%d", seed, i)
		var c membership.Change
		switch rnd.IntN(5) {
		case 0:
			c = lifecycle(membership.KindUserDeactivate, uuid, at, "00uAnn", "ann@example.com")
			deactivated = true
		case 1, 2:
			c = remove(uuid, at, "00uAnn", "ann@example.com")
		default:
			c = add(uuid, at, "00uAnn", "ann@example.com")
		}
		if c.Kind.Member() && (newest.Kind == "" || membership.Compare(c, newest) > 0) {
			newest = c
		}
		changes = append(changes, c)
	}
	s := newScheduler(seed, n)
	f.srv.SetFaultFunc(func(string, *http.Request) *scimtest.Fault { s.gate(); return nil })
	var failedMu sync.Mutex
	var retry []membership.Change
	var wg sync.WaitGroup
	for _, c := range changes {
		cfg := f.container()
		cfg.Ledger = &gatedLedger{Ledger: led, s: s}
		payload := f.event(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.done()
			failed, err := f.invokeWith(cfg, payload)
			if err != nil {
				t.Error(err)
			}
			if len(failed) > 0 {
				failedMu.Lock()
				retry = append(retry, c)
				failedMu.Unlock()
			}
		}()
	}
	s.run()
	wg.Wait()
	f.srv.SetFaultFunc(nil)
	// Redelivery of what failed, one at a time, as SQS does after the visibility timeout.
	for _, c := range retry {
		if failed := f.invoke(context.Background(), f.event(c)); len(failed) != 0 {
			t.Fatalf("seed %d: %s failed again on redelivery\n%s", seed, c.EventUUID, f.logs.String())
		}
	}
	desc := fmt.Sprintf("seed %d: changes %s, %d steps", seed, describe(changes), s.steps)
	member, problem := f.agreement("00gA", "00uAnn", "AWS_Admins", "ann@example.com")
	switch {
	case problem != "":
		t.Fatalf("%s: %s\n%s", desc, problem, f.logs.String())
	case deactivated && member:
		t.Fatalf("%s: a deactivated user is in AWS_Admins\n%s", desc, f.logs.String())
	case !deactivated && member != (newest.Kind == membership.KindAdd):
		t.Fatalf("%s: member=%v, the newest change is %s %s\n%s", desc, member, newest.Kind, newest.EventUUID, f.logs.String())
	}
}

func describe(cs []membership.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s@%s ", c.Kind, c.Published.Format("05"))
	}
	return b.String()
}

// The reverse race: a deactivation's remove PATCH is slow, and the user's reactivation (newer),
// in the other container, restores the groups Okta lists while it is in flight. The remove lands
// last; the deactivation then reads the marks, finds the newer status and the restore's add
// marks, and adds the user back.
func TestWriterSlowRevokeDoesNotUndoANewerRestore(t *testing.T) {
	w := newLifecycleWorld(t, true)
	h := w.srv.Hold(func(q scimtest.Request) bool { return q.MemberPatch("remove", w.ann) })
	done := make(chan []string)
	deact := lifecycle(membership.KindUserDeactivate, "d1", t0, "00uAnn", "ann@example.com")
	go func() {
		failed, err := w.invokeWith(w.container(), w.event(deact))
		if err != nil {
			t.Error(err)
		}
		done <- failed
	}()
	<-h.Reached()
	react := lifecycle(membership.KindUserReactivate, "r1", t0.Add(time.Minute), "00uAnn", "ann@example.com")
	if failed, err := w.invokeWith(w.container(), w.event(react)); err != nil || len(failed) != 0 {
		t.Fatalf("reactivation: failed %v, %v", failed, err)
	}
	h.Release()
	if failed := <-done; len(failed) != 0 {
		t.Fatalf("deactivation: failed %v\n%s", failed, w.logs.String())
	}
	w.expect(map[string][]string{"AWS_Admins": {"ann@example.com", "bob@example.com"}, "AWS_Dev": {"ann@example.com"}})
	w.agree("00gA", "00uAnn", "AWS_Admins", "ann@example.com")
	w.agree("00gB", "00uAnn", "AWS_Dev", "ann@example.com")
}
