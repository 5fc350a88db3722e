package tests

// End-to-end test of DRY_RUN (docs/SYNC.md, "DRY_RUN"; docs/RECONCILE.md, "What a run does"; issue
// 19): a dry run writes nothing, by construction. The real hook, sync and reconcile bootstraps,
// the template's queue and StateTable in moto, the SCIM and Okta API emulators; the sync worker
// with DRY_RUN=true, the reconciler with DRY_RUN=true and with the manual payload
// events/reconcile-manual-dry-run.json. Every kind of write is on the table: a hand-made AWS group
// without externalId that would be adopted by name, an Okta group renamed, adds, removes and a
// deactivation. Not one SCIM request other than a GET, not one StateTable item, and an audit
// record with result dry_run for what would have been done.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// scimWrites returns the SCIM requests other than GET the emulator received, by route.
func (w *idWorld) scimWrites() map[string]int {
	out := map[string]int{}
	for route, n := range w.scim.Requests() {
		if !strings.HasPrefix(route, "GET ") {
			out[route] = n
		}
	}
	return out
}

// ledgerItems counts the items of the world's StateTable (a consistent scan).
func (w *idWorld) ledgerItems() int32 {
	w.t.Helper()
	out, err := dynamodb.NewFromConfig(w.moto.AWSConfig()).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(w.syncEnv["STATE_TABLE"]), Select: types.SelectCount, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Count
}

// dryRunAudits returns "op group user" of every audit record with result dry_run in logs.
func dryRunAudits(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"audit"`) || !strings.Contains(line, `"result":"dry_run"`) {
			continue
		}
		field := func(k string) string {
			_, v, _ := strings.Cut(line, `"`+k+`":"`)
			v, _, _ = strings.Cut(v, `"`)
			return v
		}
		out = append(out, strings.TrimSpace(field("op")+" "+field("group")+" "+field("user")))
	}
	return out
}

const dryAnn, dryBob, dryCat, dryDan = "ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"

// dryWorld is a world with every kind of write pending in Okta: AWS_Admins, Cat added and Dan
// removed; AWS_Dev, made by hand in AWS without externalId (found by name, it would be adopted);
// AWS_Ops, renamed AWS_Platform; Ann deactivated (memberships kept) and still in AWS_Admins and
// AWS_Ops.
type dryWorld struct {
	*idWorld
	annID, admins, dev, ops string
	before                  map[string][]string
	groupsBefore            string
}

func newDryWorld(t *testing.T, m *harness.Moto, name string) *dryWorld {
	t.Helper()
	w := &dryWorld{idWorld: newIDWorld(t, m, name, false, map[string]string{"DRY_RUN": "true"})}
	w.annID = w.user(dryAnn)
	w.user(dryBob)
	w.user(dryCat)
	w.user(dryDan)
	w.admins = w.oktaGroup("AWS_Admins", dryAnn, dryBob, dryCat)
	w.dev = w.oktaGroup("AWS_Dev", dryBob, dryCat)
	w.ops = w.oktaGroup("AWS_Ops", dryAnn, dryBob)
	w.awsGroup("AWS_Admins", w.admins, dryAnn, dryBob, dryDan)
	w.awsGroup("AWS_Dev", "", dryBob)
	w.awsGroup("AWS_Ops", w.ops, dryAnn, dryBob)
	if err := w.okta.SetGroupName(w.ops, "AWS_Platform"); err != nil {
		t.Fatal(err)
	}
	if err := w.okta.SetUserStatus(w.annID, "DEPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	w.before, w.groupsBefore = w.scim.Snapshot(), fmt.Sprint(w.scim.Groups())
	if n := w.ledgerItems(); n != 0 {
		t.Fatalf("StateTable holds %d items before the dry run", n)
	}
	return w
}

// nothingWritten asserts that no SCIM request other than a GET was sent, the StateTable is
// still empty and AWS's groups and members are as they were.
func (w *dryWorld) nothingWritten() {
	w.t.Helper()
	if writes := w.scimWrites(); len(writes) != 0 {
		w.t.Errorf("SCIM writes %v, want none", writes)
	}
	if n := w.ledgerItems(); n != 0 {
		w.t.Errorf("StateTable holds %d items, want 0", n)
	}
	if got := w.scim.Snapshot(); fmt.Sprint(got) != fmt.Sprint(w.before) {
		w.t.Errorf("AWS members %v → %v", w.before, got)
	}
	if got := fmt.Sprint(w.scim.Groups()); got != w.groupsBefore {
		w.t.Errorf("AWS groups %s → %s", w.groupsBefore, got)
	}
}

// dryMemberChanges are the membership changes of a dryWorld, as dryRunAudits reports them.
var dryMemberChanges = []string{"add AWS_Admins " + dryCat, "remove AWS_Admins " + dryDan, "add AWS_Dev " + dryCat,
	"remove AWS_Admins " + dryAnn, "remove AWS_Ops " + dryAnn}

// wantAudits asserts one dry_run audit record per change in want, and no other.
func wantAudits(t *testing.T, logs string, want []string) {
	t.Helper()
	got := dryRunAudits(logs)
	slices.Sort(got)
	if want = slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
		t.Errorf("dry_run audit records %q, want %q", got, want)
	}
}

func TestAccessDryRunEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)

	// The sync worker, DRY_RUN=true: the events of all of it, in one delivery. Its audit records
	// name the adoption and the rename too.
	t.Run("sync", func(t *testing.T) {
		w := newDryWorld(t, m, "dry-sync")
		w.deliver(
			w.member("add", "dry-add-admins", t0, dryCat, w.admins, "AWS_Admins"),
			w.member("remove", "dry-remove-admins", t0.Add(time.Millisecond), dryDan, w.admins, "AWS_Admins"),
			w.member("add", "dry-add-dev", t0.Add(2*time.Millisecond), dryCat, w.dev, "AWS_Dev"),
			groupEvent("group.profile.update", "dry-rename", t0.Add(time.Second), w.ops, "AWS_Ops"),
			lifecycleEvent("deactivate", "dry-deact", t0.Add(2*time.Second), w.annID, dryAnn),
		)
		w.pump()
		w.nothingWritten()
		wantAudits(t, w.sync.Logs(), append([]string{"adopt_group AWS_Dev", "rename AWS_Platform"}, dryMemberChanges...))
		if r := w.dlqReasons(); len(r) != 0 {
			t.Errorf("DLQ %v", r)
		}
		w.checkWire()
	})

	// The reconciler, dry by DRY_RUN=true, and by the payload {"dryRun": true} with DRY_RUN=false.
	for _, run := range []struct{ name, dryRun, payload string }{
		{"reconcile_env", "true", "{}"},
		{"reconcile_payload", "false", recEvent(t, "reconcile-manual-dry-run.json")},
	} {
		t.Run(run.name, func(t *testing.T) {
			w := newDryWorld(t, m, "dry-"+strings.ReplaceAll(run.name, "_", "-"))
			var s accessSummary
			rec := reconcileInvoke(t, w.ctx, harness.MergeEnv(w.recEnv, map[string]string{"DRY_RUN": run.dryRun}),
				"reconcile-"+w.name, run.payload, &s)
			w.nothingWritten()
			// Adds: Cat to AWS_Admins and AWS_Dev; removes: Dan and Ann from AWS_Admins, Ann from AWS_Ops.
			if !s.DryRun || s.Adds != 2 || s.Removes != 3 || s.Added+s.Removed+s.Failed != 0 || s.GroupsAdopted != 1 ||
				s.WritesRefused != 0 || len(s.Errors) != 0 {
				t.Errorf("summary %+v", s)
			}
			if g := s.group("AWS_Dev"); !g.Adopted {
				t.Errorf("AWS_Dev %+v, want a planned adoption", g)
			}
			if g := s.group("AWS_Platform"); g.RenamedFrom != "AWS_Ops" {
				t.Errorf("AWS_Platform %+v, want a planned rename from AWS_Ops", g)
			}
			wantAudits(t, rec.Logs(), dryMemberChanges)
			w.checkWire()
		})
	}
}
