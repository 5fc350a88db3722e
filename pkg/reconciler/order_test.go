package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

func groupRuns(n int) []*groupRun {
	out := make([]*groupRun, n)
	for i := range out {
		out[i] = &groupRun{okta: okta.Group{ID: fmt.Sprintf("00g%04d", i)}}
	}
	return out
}

func TestRotateIsDeterministicAndSpreadsStarts(t *testing.T) {
	gs := groupRuns(10)
	t0 := time.Date(2025, 11, 25, 13, 0, 0, 0, time.UTC)
	a, b := rotate(gs, t0), rotate(gs, t0.Add(30*time.Second)) // same minute
	if !slices.Equal(a, b) || len(a) != 10 {
		t.Fatal("same minute, different order")
	}
	// Every run visits every group once, in id order from its start.
	for i := range a {
		if a[i].okta.ID != gs[(slices.Index(gs, a[0])+i)%10].okta.ID {
			t.Fatalf("not a rotation: %v", ids(a))
		}
	}
	// Over a day of hourly runs every group is the first at least once, and no start dominates.
	for _, every := range []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour} {
		firsts := map[string]int{}
		for i := range 240 {
			firsts[rotate(gs, t0.Add(time.Duration(i)*every))[0].okta.ID]++
		}
		if len(firsts) != 10 {
			t.Errorf("every %s: only %d distinct starts in 240 runs", every, len(firsts))
		}
		for id, n := range firsts {
			if n > 48 { // 24 expected
				t.Errorf("every %s: %s first in %d of 240 runs", every, id, n)
			}
		}
	}
}

func ids(gs []*groupRun) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.okta.ID
	}
	return out
}

func TestOldestFirst(t *testing.T) {
	gs := groupRuns(4)
	led := ledger.NewMemory()
	t0 := time.Date(2025, 11, 25, 13, 0, 0, 0, time.UTC)
	if err := led.Put(context.Background(), append(groupMarks(gs[0:1], t0.Add(time.Hour), "r2"), groupMarks(gs[1:2], t0, "r1")...)); err != nil {
		t.Fatal(err)
	}
	out, err := oldestFirst(context.Background(), led, gs)
	if err != nil {
		t.Fatal(err)
	}
	// Never reconciled first (in the given order), then oldest.
	if got, want := ids(out), []string{gs[2].okta.ID, gs[3].okta.ID, gs[1].okta.ID, gs[0].okta.ID}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

type failingLedger struct{ ledger.Ledger }

func (failingLedger) Get(context.Context, []membership.Key) (map[membership.Key]membership.Mark, error) {
	return nil, errors.New("dynamodb down")
}

func (failingLedger) Put(context.Context, []ledger.Record) error { return errors.New("dynamodb down") }

func (failingLedger) Claim(context.Context, []ledger.Record) ([]bool, error) {
	return nil, errors.New("dynamodb down")
}

func (failingLedger) Finalize(context.Context, []ledger.Record) ([]bool, error) {
	return nil, errors.New("dynamodb down")
}

// An unavailable ordering table degrades to the behaviour without STATE_TABLE, loudly.
func TestLedgerUnavailable(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.cfg.Ledger = failingLedger{}
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	f.wantInSync("AWS_Admins", "AWS_Dev", "AWS_Ops")
	joined := strings.Join(s.Errors, "\n")
	if !strings.Contains(joined, "ordering marks failed") || !strings.Contains(joined, "writing ordering marks failed") {
		t.Errorf("errors %q", joined)
	}
}

// Many SCIM groups: the listing stops at its budget (one page per selected group) and the groups it
// did not reach are looked up by name; a missing group is still found missing and created.
func TestGroupListingBudget(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 4)
	for i := range 250 {
		f.scim.AddGroup(fmt.Sprintf("Other%03d", i), "")
	}
	f.oktaGroupOf("AWS_A", u[0], u[1])
	f.oktaGroupOf("AWS_B", u[2])
	f.scimGroupOf("AWS_A", "", u[0]) // listed after the 250 others: beyond a 2-page budget
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	f.wantInSync("AWS_A", "AWS_B")
	if s.GroupsCreated != 1 || f.scim.Count("POST /Groups") != 1 {
		t.Errorf("summary %+v, %d creates", s, f.scim.Count("POST /Groups"))
	}
}

// A SCIM failure while listing one group's members skips that group only.
func TestSCIMMemberListingFailureSkipsGroup(t *testing.T) {
	f := newFixture(t)
	drift(f)
	devID, _ := f.scim.GroupID("AWS_Dev")
	f.scim.SetFaultFunc(func(route string, r *http.Request) *scimtest.Fault {
		if route == "GET /Users" && strings.Contains(r.URL.Query().Get("filter"), devID) {
			return &scimtest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	before := f.scim.Snapshot()
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before["AWS_Dev"], f.scim.Snapshot()["AWS_Dev"]) {
		t.Error("AWS_Dev changed")
	}
	f.wantInSync("AWS_Admins", "AWS_Ops")
	if len(s.Skipped) != 1 || s.Skipped[0].Group != "AWS_Dev" || !strings.Contains(s.Skipped[0].Reason, "SCIM member listing failed") {
		t.Errorf("summary %+v", s)
	}
}

func TestOktaSourceFollowsTheSecret(t *testing.T) {
	sec := &fakeSecrets{}
	src := OktaSourceOf(okta.NewSource("https://example.okta.com", config.Token(sec, config.KeyOktaAPIToken)))
	ctx := context.Background()
	if o, err := src(ctx, false); !errors.Is(err, config.ErrMissingSecretKey) || o != nil {
		t.Fatalf("no token: %v, %v", o, err)
	}
	sec.s.OktaAPIToken = "00first"
	a, err := src(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := src(ctx, false); b != a {
		t.Error("same token, new reader")
	}
	sec.s.OktaAPIToken = "00rotated"
	c, err := src(ctx, true)
	if err != nil || c == a || sec.refreshes != 1 {
		t.Errorf("rotated token: same reader %v, refreshes %d, err %v", c == a, sec.refreshes, err)
	}
}

// fakeSecrets serves a settable secret and counts refreshes.
type fakeSecrets struct {
	s         config.Secrets
	refreshes int
}

func (f *fakeSecrets) Get(context.Context) (config.Secrets, error) { return f.s, nil }
func (f *fakeSecrets) Refresh(context.Context) (config.Secrets, error) {
	f.refreshes++
	return f.s, nil
}

// A rotated Okta token: the first listing gets 401, the run re-reads the secret once and goes on.
func TestOktaTokenRefreshedOnce(t *testing.T) {
	f := newFixture(t)
	drift(f)
	calls := 0
	stale := &staleOkta{}
	f.cfg.Okta = func(ctx context.Context, refresh bool) (Okta, error) {
		calls++
		if refresh {
			return f.reader, nil
		}
		return stale, nil
	}
	if _, err := f.invoke(testCtx(t), "{}"); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("%d reader requests, want 2 (one refresh)", calls)
	}
	f.wantInSync("AWS_Admins", "AWS_Dev", "AWS_Ops")
}

// staleOkta answers like Okta does to a revoked token.
type staleOkta struct{}

func (staleOkta) Groups(context.Context, string, func(string) bool) ([]okta.Group, error) {
	return nil, &okta.ReadError{Op: "list groups", Status: http.StatusUnauthorized, Code: "E0000011"}
}

func (staleOkta) GroupMembers(context.Context, string) ([]okta.User, error) {
	return nil, &okta.ReadError{Op: "list group members", Status: http.StatusUnauthorized}
}

func (staleOkta) Group(context.Context, string) (okta.Group, error) {
	return okta.Group{}, &okta.ReadError{Op: "get group", Status: http.StatusUnauthorized}
}

func (staleOkta) Requests() int64 { return 1 }

// A remove the sync worker applies while the run is patching earlier groups must not be undone by
// the run's plan for a later group: the marks are read right before each group's plan is applied.
func TestMarksReadRightBeforeEachGroup(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 2)
	oktaA := f.oktaGroupOf("AWS_A", u[0])
	f.scimGroupOf("AWS_A", oktaA) // plan: add u0
	oktaB := f.oktaGroupOf("AWS_B", u[1])
	scimB := f.scimGroupOf("AWS_B", oktaB) // plan: add u1
	led := ledger.NewMemory()
	f.cfg.Ledger = led
	f.cfg.Concurrency = 1
	var mu sync.Mutex
	done := false
	f.scim.SetFaultFunc(func(route string, r *http.Request) *scimtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if route != "PATCH /Groups/{id}" || done {
			return nil
		}
		done = true
		// While the first group is patched, the sync worker applies a remove, published now, of
		// the other group's planned member.
		other, user := oktaB, u[1]
		if strings.HasSuffix(r.URL.Path, scimB) {
			other, user = oktaA, u[0]
		}
		_ = led.Put(context.Background(), []ledger.Record{{
			Key:  membership.Key{GroupID: other, UserID: f.oktaUser[user]},
			Mark: membership.Mark{Published: time.Now(), Kind: membership.KindRemove, EventUUID: "e-remove"},
		}})
		return nil
	})
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	snap := f.scim.Snapshot()
	if s.Deferred != 1 || len(snap["AWS_A"])+len(snap["AWS_B"]) != 1 {
		t.Fatalf("deferred %d, snapshot %v: the change published during the apply phase must win", s.Deferred, snap)
	}
}

// An add planned from an Okta answer that listed the user as active waits when the sync worker
// recorded a deactivation of the user after the read (the user's status mark); a deactivation
// recorded before the read (beyond the skew) is already part of the answer: Okta listed the user
// as active again, so the add goes ahead.
func TestStatusMarksDeferAdds(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 3)
	gid := f.oktaGroupOf("AWS_G", u[0], u[1], u[2])
	f.scimGroupOf("AWS_G", gid, u[0]) // plan: add u1 u2
	led := ledger.NewMemory()
	f.cfg.Ledger = led
	now := time.Date(2025, 11, 25, 13, 0, 0, 0, time.UTC)
	f.cfg.Now = func() time.Time { return now }
	deact := func(l string, at time.Time) ledger.Record {
		return ledger.StatusRecord(membership.Change{EventUUID: "d-" + l, Published: at, Kind: membership.KindUserDeactivate, UserID: f.oktaUser[l]})
	}
	if err := led.Put(context.Background(), []ledger.Record{deact(u[1], now.Add(30*time.Second)), deact(u[2], now.Add(-2*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.scim.Snapshot()["AWS_G"]; !slices.Equal(got, []string{u[0], u[2]}) || s.Deferred != 1 {
		t.Fatalf("members %v, deferred %d: the add of the user deactivated after the read must wait", got, s.Deferred)
	}
}
