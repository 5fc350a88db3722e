package reconciler

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// countingLedger counts every write that reaches it (none may: the plan's ledger is read-only).
type countingLedger struct {
	ledger.Ledger
	puts atomic.Int64
}

func (c *countingLedger) Put(ctx context.Context, rs []ledger.Record) error {
	c.puts.Add(1)
	return c.Ledger.Put(ctx, rs)
}

func (c *countingLedger) Claim(ctx context.Context, rs []ledger.Record) ([]bool, error) {
	c.puts.Add(1)
	return c.Ledger.Claim(ctx, rs)
}

func (c *countingLedger) Finalize(ctx context.Context, rs []ledger.Record) ([]bool, error) {
	c.puts.Add(1)
	return c.Ledger.Finalize(ctx, rs)
}

func (c *countingLedger) PutReport(ctx context.Context, rs []ledger.Record) ([]bool, error) {
	c.puts.Add(1)
	return c.Ledger.PutReport(ctx, rs)
}

// planWorld is one of each thing a plan reports: a group with adds and removes, one in sync, one
// to create (with a member not provisioned in AWS), one to rename, one to adopt, an emptied Okta
// group whose removals are blocked, two identity conflicts (the name held by another Okta group's
// AWS group, two AWS groups carrying one id), and an orphan.
func planWorld(f *fixture) {
	for _, l := range []string{"alice", "bob", "carol", "dave", "erin"} {
		f.user(l+"@example.com", true)
	}
	f.user("frank@example.com", false)
	f.oktaGroupOf("AWS_Admins", "alice@example.com", "bob@example.com")
	f.scimGroupOf("AWS_Admins", f.oktaGroup["AWS_Admins"], "alice@example.com", "carol@example.com")
	f.oktaGroupOf("AWS_Dev", "alice@example.com", "dave@example.com")
	f.scimGroupOf("AWS_Dev", f.oktaGroup["AWS_Dev"], "alice@example.com", "dave@example.com")
	f.oktaGroupOf("AWS_Data", "erin@example.com", "frank@example.com")
	f.oktaGroupOf("AWS_Ops", "dave@example.com")
	f.scimGroupOf("AWS_Operations", f.oktaGroup["AWS_Ops"], "dave@example.com")
	f.oktaGroupOf("AWS_Audit", "bob@example.com")
	f.scimGroupOf("AWS_Audit", "")
	f.oktaGroupOf("AWS_BreakGlass")
	f.scimGroupOf("AWS_BreakGlass", f.oktaGroup["AWS_BreakGlass"], "dave@example.com")
	f.oktaGroupOf("AWS_Finance", "carol@example.com")
	legacy := f.oktaGroupOf("Finance_Legacy", "carol@example.com")
	f.scimGroupOf("AWS_Finance", legacy, "carol@example.com")
	sec := f.oktaGroupOf("AWS_Security", "alice@example.com")
	f.scimGroupOf("AWS_Security", sec, "alice@example.com")
	f.scimGroupOf("AWS_Security_copy", sec) // a second AWS group given its id by hand
	gone := f.oktaGroupOf("AWS_Retired")
	if err := f.okta.DeleteGroup(gone); err != nil {
		f.t.Fatal(err)
	}
	f.scimGroupOf("AWS_Retired", gone, "erin@example.com")
}

// plan runs RunPlan over the fixture with a read-only view of a memory ledger and checks that
// nothing was written: no SCIM write reached the emulator, no ledger write reached the ledger,
// and neither read-only wrapper refused one.
func (f *fixture) plan(groups ...string) (PlanReport, error) {
	f.t.Helper()
	before := f.scim.Snapshot()
	led := &countingLedger{Ledger: ledger.NewMemory()}
	f.cfg.Ledger = led
	rep, err := RunPlan(testCtx(f.t), f.cfg, groups)
	if n := f.scim.Writes(); n != 0 {
		f.t.Errorf("plan sent %d SCIM writes: %v", n, f.scim.Requests())
	}
	if n := led.puts.Load(); n != 0 {
		f.t.Errorf("plan sent %d ledger writes", n)
	}
	if rep.SCIMWritesRefused != 0 || rep.LedgerWritesRefused != 0 {
		f.t.Errorf("writes refused: SCIM %d, ledger %d", rep.SCIMWritesRefused, rep.LedgerWritesRefused)
	}
	if after := f.scim.Snapshot(); !equalSnap(before, after) {
		f.t.Errorf("plan changed SCIM")
	}
	return rep, err
}

func equalSnap(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func groupOf(t *testing.T, rep PlanReport, name string) PlanGroup {
	t.Helper()
	i := slices.IndexFunc(rep.Groups, func(g PlanGroup) bool { return g.Group == name })
	if i < 0 {
		t.Fatalf("no group %s in the plan", name)
	}
	return rep.Groups[i]
}

func TestPlanReportsEveryKindOfDrift(t *testing.T) {
	f := newFixture(t)
	planWorld(f)
	rep, err := f.plan()
	if err != nil {
		t.Fatal(err)
	}
	want := PlanTotals{Groups: 8, InSync: 1, Drifted: 5, Adds: 3, Removes: 1, BlockedRemovals: 1, Renames: 1,
		Adoptions: 1, Creations: 1, Orphans: 1, Conflicts: 2, Unprovisioned: 1}
	if rep.Totals != want {
		t.Errorf("totals %+v\nwant   %+v", rep.Totals, want)
	}
	if code := rep.ExitCode(); code != PlanExitDrift {
		t.Errorf("exit %d, want 2; errors %v", code, rep.Errors)
	}
	for name, want := range map[string]PlanStatus{"AWS_Admins": PlanDrift, "AWS_Dev": PlanInSync, "AWS_Data": PlanDrift,
		"AWS_Ops": PlanDrift, "AWS_Audit": PlanDrift, "AWS_BreakGlass": PlanDrift, "AWS_Finance": PlanConflict, "AWS_Security": PlanConflict} {
		if g := groupOf(t, rep, name); g.Status != want {
			t.Errorf("%s: status %q, want %q (%s)", name, g.Status, want, g.Reason)
		}
	}
	adm := groupOf(t, rep, "AWS_Admins")
	if !slices.Equal(adm.AddLogins, []string{"bob@example.com"}) || !slices.Equal(adm.RemoveLogins, []string{"carol@example.com"}) {
		t.Errorf("AWS_Admins: +%v -%v", adm.AddLogins, adm.RemoveLogins)
	}
	if g := groupOf(t, rep, "AWS_Ops"); g.RenameFrom != "AWS_Operations" || g.AWSGroup != "AWS_Operations" {
		t.Errorf("AWS_Ops: %+v", g)
	}
	if g := groupOf(t, rep, "AWS_BreakGlass"); g.Removes != 0 || g.BlockedRemovals != 1 || !slices.Equal(g.BlockedLogins, []string{"dave@example.com"}) {
		t.Errorf("AWS_BreakGlass: %+v", g)
	}
	if len(rep.Orphans) != 1 || rep.Orphans[0].Group != "AWS_Retired" {
		t.Errorf("orphans %+v", rep.Orphans)
	}
	if !rep.LedgerRead || rep.OktaRequests == 0 || rep.ScimRequests == 0 {
		t.Errorf("report context %+v", rep)
	}

	var out bytes.Buffer
	if err := rep.Render(&out); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-drift.golden", out.String())
}

// With a cap below the run's removals every removal is blocked: the totals count them as
// blocked, never as removes, and a blocked run is a finding (2), not an error.
func TestPlanTotalsDoNotCountBlockedRemovals(t *testing.T) {
	f := newFixture(t)
	planWorld(f)
	f.cfg.MaxRemovals = 1 // the world plans 2 (carol from AWS_Admins, dave from AWS_BreakGlass)
	rep, err := f.plan()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Removes != 0 || rep.Totals.BlockedRemovals != 2 || rep.Totals.Adds != 3 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if g := groupOf(t, rep, "AWS_Admins"); g.Removes != 0 || g.BlockedRemovals != 1 || !strings.Contains(g.BlockReason, "cap of 1") {
		t.Errorf("AWS_Admins: %+v", g)
	}
	if !strings.Contains(rep.BlockedReason, "MAX_REMOVALS=1") || rep.ExitCode() != PlanExitDrift || len(rep.Errors) != 0 {
		t.Errorf("blocked %q, exit %d, errors %v", rep.BlockedReason, rep.ExitCode(), rep.Errors)
	}
	var out bytes.Buffer
	_ = rep.Render(&out)
	if !strings.Contains(out.String(), "0 removes, 2 removals blocked") || !strings.Contains(out.String(), "removals blocked for the whole run") {
		t.Errorf("render:\n%s", out.String())
	}
}

func TestPlanInSyncExitsZero(t *testing.T) {
	f := newFixture(t)
	for _, l := range []string{"alice", "bob"} {
		f.user(l+"@example.com", true)
	}
	f.oktaGroupOf("AWS_Admins", "alice@example.com", "bob@example.com")
	f.scimGroupOf("AWS_Admins", f.oktaGroup["AWS_Admins"], "alice@example.com", "bob@example.com")
	f.oktaGroupOf("AWS_Dev")
	f.scimGroupOf("AWS_Dev", f.oktaGroup["AWS_Dev"])
	rep, err := f.plan()
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != PlanExitInSync || rep.Totals != (PlanTotals{Groups: 2, InSync: 2}) {
		t.Errorf("exit %d, totals %+v, errors %v", rep.ExitCode(), rep.Totals, rep.Errors)
	}
	var out bytes.Buffer
	_ = rep.Render(&out)
	if !strings.Contains(out.String(), "result: in sync (exit 0)") {
		t.Errorf("render:\n%s", out.String())
	}
}

// A plan that could not see everything must not pass: a mistyped -group, a group whose Okta
// members could not be read, and an Okta that cannot list the groups each exit 1.
func TestPlanErrorsExitOne(t *testing.T) {
	t.Run("unknown group", func(t *testing.T) {
		f := newFixture(t)
		planWorld(f)
		rep, err := f.plan("AWS_Admins", "AWS_Admnis")
		if err != nil {
			t.Fatal(err)
		}
		if rep.ExitCode() != PlanExitError || len(rep.Groups) != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], `"AWS_Admnis" is not a selected Okta group`) {
			t.Errorf("exit %d, groups %d, errors %v", rep.ExitCode(), len(rep.Groups), rep.Errors)
		}
	})
	t.Run("group read fails", func(t *testing.T) {
		f := newFixture(t)
		planWorld(f)
		f.okta.FailGroupMembers(f.oktaGroup["AWS_Dev"], 500, 100)
		rep, err := f.plan()
		if err != nil {
			t.Fatal(err)
		}
		g := groupOf(t, rep, "AWS_Dev")
		if g.Status != PlanError || !strings.Contains(g.Reason, "Okta read failed") || rep.Totals.Errors != 1 || rep.ExitCode() != PlanExitError {
			t.Errorf("AWS_Dev %+v, totals %+v, exit %d", g, rep.Totals, rep.ExitCode())
		}
		var out bytes.Buffer
		_ = rep.Render(&out)
		if !strings.Contains(out.String(), "error: Okta read failed") || !strings.Contains(out.String(), "result: error, the plan is incomplete (exit 1)") {
			t.Errorf("render:\n%s", out.String())
		}
	})
	t.Run("group list fails", func(t *testing.T) {
		f := newFixture(t)
		planWorld(f)
		f.okta.FailListGroups(500, 100)
		rep, err := f.plan()
		if err == nil || rep.ExitCode() != PlanExitError || len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0], "list selected Okta groups") {
			t.Errorf("err %v, exit %d, errors %v", err, rep.ExitCode(), rep.Errors)
		}
	})
}

// The plan defers to the sync worker as a reconcile would: a change the ledger says a newer
// Okta event decided is left out of the plan (it reads the marks through the read-only view).
func TestPlanDefersToNewerEvents(t *testing.T) {
	f := newFixture(t)
	planWorld(f)
	mem := ledger.NewMemory()
	bob := f.oktaUser["bob@example.com"]
	if err := mem.Put(context.Background(), []ledger.Record{{Key: membership.Key{GroupID: f.oktaGroup["AWS_Admins"], UserID: bob},
		Mark: membership.Mark{Published: time.Now().Add(time.Hour), Kind: membership.KindRemove, EventUUID: "ev-newer"}}}); err != nil {
		t.Fatal(err)
	}
	f.cfg.Ledger = ledger.ReadOnlyOf(mem)
	rep, err := RunPlan(testCtx(t), f.cfg, []string{"AWS_Admins"})
	if err != nil {
		t.Fatal(err)
	}
	g := groupOf(t, rep, "AWS_Admins")
	if g.Adds != 0 || g.Deferred != 1 || g.Removes != 1 || mem.Len() != 1 || f.scim.Writes() != 0 ||
		rep.SCIMWritesRefused != 0 || rep.LedgerWritesRefused != 0 {
		t.Errorf("AWS_Admins %+v, ledger %d entries, SCIM writes %d, refused SCIM %d ledger %d",
			g, mem.Len(), f.scim.Writes(), rep.SCIMWritesRefused, rep.LedgerWritesRefused)
	}
}

func TestPlanExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  PlanReport
		want int
	}{
		{"empty selection", PlanReport{}, PlanExitInSync},
		{"in sync", PlanReport{Totals: PlanTotals{Groups: 3, InSync: 3}}, PlanExitInSync},
		{"unprovisioned only", PlanReport{Totals: PlanTotals{Groups: 1, InSync: 1, Unprovisioned: 4, Deferred: 1}}, PlanExitInSync},
		{"drift", PlanReport{Totals: PlanTotals{Groups: 1, Drifted: 1}}, PlanExitDrift},
		{"orphan", PlanReport{Totals: PlanTotals{Orphans: 1}}, PlanExitDrift},
		{"conflict", PlanReport{Totals: PlanTotals{Conflicts: 1}}, PlanExitDrift},
		{"skipped", PlanReport{Totals: PlanTotals{Skipped: 1}}, PlanExitDrift},
		{"group error", PlanReport{Totals: PlanTotals{Drifted: 1, Errors: 1}}, PlanExitError},
		{"run error", PlanReport{Errors: []string{"x"}}, PlanExitError},
		{"SCIM write refused", PlanReport{SCIMWritesRefused: 1}, PlanExitError},
		{"ledger write refused", PlanReport{LedgerWritesRefused: 1}, PlanExitError},
	} {
		if got := tc.rep.ExitCode(); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	if skipStatus(errors.New("boom")) != PlanError || skipStatus(nil) != PlanSkipped {
		t.Error("skipStatus")
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it)\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// A rejected SCIM token stops the plan: it fails (exit 1) and no group passes as in sync.
func TestPlanStopsOnRejectedToken(t *testing.T) {
	f := newFixture(t)
	planWorld(f)
	f.scim.ExpireToken(true)
	rep, err := f.plan()
	if err == nil || rep.ExitCode() != PlanExitError || !strings.Contains(rep.Errors[0], "SCIM rejected the bearer token") {
		t.Fatalf("err %v, exit %d, errors %v", err, rep.ExitCode(), rep.Errors)
	}
	for _, g := range rep.Groups {
		if g.Status == PlanInSync || g.Status == PlanDrift {
			t.Errorf("%s: %s after a rejected token", g.Group, g.Status)
		}
	}
	if rep.Totals.InSync != 0 || rep.Totals.Errors < len(rep.Groups) {
		t.Errorf("totals %+v", rep.Totals)
	}
}
