package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/reconciler"
)

func noEnv(string) string { return "" }

func runPlan(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// The offline world has one of each kind of drift: the table shows them all and the plan exits 2.
func TestOfflinePlanShowsDrift(t *testing.T) {
	code, out, stderr := runPlan(t, "-offline")
	if code != reconciler.PlanExitDrift || stderr != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, stderr, out)
	}
	for _, want := range []string{
		"AWS_Admins      AWS_Admins          1    1       0        drift\n",
		"AWS_Developers  AWS_Developers      0    0       0        in sync\n",
		"AWS_Data        (would be created)  1    0       0        drift: create, 1 not provisioned\n",
		"AWS_Platform    AWS_Infra           0    0       0        drift: rename from AWS_Infra\n",
		"AWS_Audit       AWS_Audit           1    0       0        drift: adopt\n",
		"AWS_BreakGlass  AWS_BreakGlass      0    0       1        drift: removals blocked\n",
		"AWS_Finance     -                   -    -       -        identity conflict\n",
		"  + bob.ruiz@example.com\n  - carol.diaz@example.com\n",
		"  ! dave.kim@example.com\n",
		"  AWS_Retired (",
		"AWS_Security    -                   -    -       -        identity conflict\n",
		"totals: 8 groups selected, 1 in sync, 5 with drift; 3 adds, 1 remove, 1 removal blocked; 1 creation, 1 rename, 1 adoption; 1 orphan, 2 identity conflicts, 0 skipped, 0 errors\n",
		"result: drift (exit 2)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The offline world's emulators see reads only.
func TestOfflinePlanWritesNothing(t *testing.T) {
	w, err := startOffline()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := w.scim.Snapshot()
	cfg, err := w.config(flags{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := reconciler.RunPlan(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := w.writes(); n != 0 || w.scim.TotalRequests() == 0 {
		t.Errorf("%d writes in %d SCIM requests", n, w.scim.TotalRequests())
	}
	if rep.SCIMWritesRefused != 0 || rep.LedgerWritesRefused != 0 || !rep.LedgerRead {
		t.Errorf("refused SCIM %d, ledger %d; ledger read %v", rep.SCIMWritesRefused, rep.LedgerWritesRefused, rep.LedgerRead)
	}
	after := w.scim.Snapshot()
	for g, ms := range before {
		if strings.Join(after[g], ",") != strings.Join(ms, ",") {
			t.Errorf("%s changed: %v → %v", g, ms, after[g])
		}
	}
}

func TestPlanExitCodes(t *testing.T) {
	if code, out, _ := runPlan(t, "-offline", "-group", "AWS_Developers"); code != reconciler.PlanExitInSync || !strings.Contains(out, "result: in sync (exit 0)") {
		t.Errorf("in sync: exit %d\n%s", code, out)
	}
	// A mistyped group must not pass as "nothing to do".
	code, out, _ := runPlan(t, "-offline", "-group", "AWS_Developers,AWS_Devs")
	if code != reconciler.PlanExitError || !strings.Contains(out, `requested group "AWS_Devs" is not a selected Okta group`) {
		t.Errorf("mistyped group: exit %d\n%s", code, out)
	}
	// The cap is the plan's too: over it, every removal is blocked, none counted as a remove.
	code, out, _ = runPlan(t, "-offline", "-max-removals", "1")
	if code != reconciler.PlanExitDrift || !strings.Contains(out, "0 removes, 2 removals blocked") {
		t.Errorf("-max-removals 1: exit %d\n%s", code, out)
	}
	if code, _, stderr := runPlan(t, "-nope"); code != reconciler.PlanExitError || !strings.Contains(stderr, "-nope") {
		t.Errorf("unknown flag: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runPlan(t, "-offline", "-regex", "("); code != reconciler.PlanExitError || !strings.Contains(stderr, "GROUP_REGEX") {
		t.Errorf("bad regex: exit %d, %q", code, stderr)
	}
	// Online without a stack and nothing configured: every missing setting is named.
	code, _, stderr := runPlan(t, "-stack", "")
	if code != reconciler.PlanExitError || !strings.Contains(stderr, "SECRET_ID") || !strings.Contains(stderr, "SCIM_URL") || !strings.Contains(stderr, "-scim-url") {
		t.Errorf("nothing configured: exit %d, %q", code, stderr)
	}
}

func TestPlanJSON(t *testing.T) {
	code, out, _ := runPlan(t, "-offline", "-json", "-regex", "AWS_(Admins|Finance)")
	var rep reconciler.PlanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code != reconciler.PlanExitDrift || rep.Totals.Groups != 2 || rep.Totals.Conflicts != 1 || rep.Totals.Adds != 1 || rep.Totals.Removes != 1 ||
		rep.Selection != `regex "^(?:AWS_(Admins|Finance))$"` {
		t.Errorf("exit %d, report %+v", code, rep)
	}
}
