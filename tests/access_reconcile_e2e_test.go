package tests

// End-to-end test of issue 19 path 1 (docs/RECONCILE.md, "What a run does", step 7): the
// reconciler's empty-answer guard judges what Okta listed, not what it grants. A break-glass group
// whose only member was deactivated in Okta (Okta keeps the membership and lists the user with
// status DEPROVISIONED) while the deactivation event never reached the sync worker is emptied; a
// group Okta lists nobody in while AWS has members still removes nobody. The real reconcile
// bootstrap with the template's MAX_REMOVALS and ALLOW_EMPTY_GROUPS, the StateTable in moto, the
// SCIM and Okta API emulators.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// accessSummary is the part of the reconcile summary the path-1 and dry-run tests read, decoded
// independently of the function's own type, as an operator's tooling would.
type accessSummary struct {
	DryRun                                bool
	Adds, Removes, Added, Removed, Failed int
	RemovalsBlocked                       int
	SuspiciousGroups                      []string
	GroupsAdopted, GroupsRenamed          int
	WritesRefused                         int64
	Groups                                []accessGroup
	Errors                                []string
}

// accessGroup is one entry of the summary's groups[]: a group with anything done or planned.
type accessGroup struct {
	Group                   string
	Adopted                 bool
	RenamedFrom, RenamedTo  string
	Adds, Removes           int
	AddLogins, RemoveLogins []string
	RemovalsBlocked         int
	BlockedLogins           []string
	BlockReason             string
	Added, Removed, Failed  int
}

// group returns the summary's entry for name, or a zero entry.
func (s accessSummary) group(name string) accessGroup {
	for _, g := range s.Groups {
		if g.Group == name {
			return g
		}
	}
	return accessGroup{}
}

// reconcileInvoke starts the reconcile bootstrap with env, runs it once on payload and decodes its
// response into out. It returns the stopped process, whose logs stay readable. A failed run fails
// the test with its logs.
func reconcileInvoke(t testing.TB, ctx context.Context, env map[string]string, name, payload string, out any) *harness.Runtime {
	t.Helper()
	rt := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "reconcile"), env,
		harness.WithFunctionName(name), harness.WithTimeout(3*time.Minute))
	defer func() { _ = rt.Close() }()
	resp, err := rt.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatalf("reconcile: %v\n%s", err, rt.Logs())
	}
	if err := json.Unmarshal(resp, out); err != nil {
		t.Fatalf("summary %s: %v", resp, err)
	}
	return rt
}

// templateEnv is the environment template.yaml gives function id (parameter defaults, as
// deployed), restricted to names.
func templateEnv(t testing.TB, id string, names ...string) map[string]string {
	t.Helper()
	get := newStack(t, mustTemplate(t), deployParams()).envOf(t, id)
	out := map[string]string{}
	for _, n := range names {
		if out[n] = get(n); out[n] == "" {
			t.Fatalf("template.yaml sets no %s for %s", n, id)
		}
	}
	return out
}

func TestAccessReconcileEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	const ann, bob, cat = "ann@example.com", "bob@example.com", "cat@example.com"

	t.Run("path1_all_listed_members_deprovisioned", func(t *testing.T) {
		safety := templateEnv(t, "ReconcileFunction", "MAX_REMOVALS", "ALLOW_EMPTY_GROUPS")
		if safety["ALLOW_EMPTY_GROUPS"] != "false" {
			t.Fatalf("template ALLOW_EMPTY_GROUPS=%s: the guard under test is off", safety["ALLOW_EMPTY_GROUPS"])
		}
		w := newIDWorld(t, m, "breakglass", false, safety)
		annID := w.user(ann)
		w.user(bob)
		w.user(cat)
		// AWS_BreakGlass: Ann only, deactivated in Okta (her membership kept, listed DEPROVISIONED),
		// still in AWS (the deactivation event was lost). AWS_Vendors: Okta lists nobody, AWS has
		// Bob (an empty or failed answer looks like this). AWS_Admins: in sync.
		glass := w.oktaGroup("AWS_BreakGlass", ann)
		vendors := w.oktaGroup("AWS_Vendors")
		admins := w.oktaGroup("AWS_Admins", bob, cat)
		w.awsGroup("AWS_BreakGlass", glass, ann)
		w.awsGroup("AWS_Vendors", vendors, bob)
		w.awsGroup("AWS_Admins", admins, bob, cat)
		if err := w.okta.SetUserStatus(annID, "DEPROVISIONED"); err != nil {
			t.Fatal(err)
		}

		var s accessSummary
		rec := reconcileInvoke(t, w.ctx, w.recEnv, "reconcile-breakglass", "{}", &s)
		got := w.scim.Snapshot()
		if len(got["AWS_BreakGlass"]) != 0 {
			t.Errorf("AWS_BreakGlass %v: the deactivated member was not removed", got["AWS_BreakGlass"])
		}
		if want := []string{bob}; !slices.Equal(got["AWS_Vendors"], want) {
			t.Errorf("AWS_Vendors %v, want %v: an empty Okta answer removed members", got["AWS_Vendors"], want)
		}
		if want := []string{bob, cat}; !slices.Equal(got["AWS_Admins"], want) {
			t.Errorf("AWS_Admins %v, want %v", got["AWS_Admins"], want)
		}
		if g := s.group("AWS_BreakGlass"); g.Removed != 1 || !slices.Equal(g.RemoveLogins, []string{ann}) || g.RemovalsBlocked != 0 || g.BlockReason != "" {
			t.Errorf("summary for AWS_BreakGlass %+v, want Ann removed, nothing blocked", g)
		}
		if g := s.group("AWS_Vendors"); g.Removed != 0 || g.RemovalsBlocked != 1 || !slices.Equal(g.BlockedLogins, []string{bob}) || !strings.Contains(g.BlockReason, "suspicious") {
			t.Errorf("summary for AWS_Vendors %+v, want Bob's removal blocked as suspicious", g)
		}
		if s.Removed != 1 || s.Added != 0 || s.Failed != 0 || s.RemovalsBlocked != 1 || !slices.Equal(s.SuspiciousGroups, []string{"AWS_Vendors"}) {
			t.Errorf("summary %+v: want 1 removed (AWS_BreakGlass) and AWS_Vendors alone suspicious", s)
		}
		if !slices.ContainsFunc(strings.Split(rec.Logs(), "\n"), func(l string) bool {
			return strings.Contains(l, `"msg":"audit"`) && strings.Contains(l, `"op":"remove"`) &&
				strings.Contains(l, `"result":"applied"`) && strings.Contains(l, `"group":"AWS_BreakGlass"`)
		}) {
			t.Error("no audit record of the applied remove from AWS_BreakGlass")
		}
		w.checkWire()
	})
}
