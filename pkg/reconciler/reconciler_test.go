package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// drift seeds the standard scenario: three selected Okta groups, one unselected; in SCIM one
// group misses members and has extras, one has one of each, one is missing, and the unselected
// group and a selected-looking group unknown to Okta differ from everything.
//
//	AWS_Admins  Okta u00-u19 + nosync (not provisioned)   SCIM u00-u14 + u50, u51
//	AWS_Dev     Okta u10-u39                              SCIM u10-u39 − u20 + u55
//	AWS_Ops     Okta u30-u49                              SCIM (missing)
//	GCP_Other   Okta u00-u09 (not selected)               SCIM u40-u45
//	AWS_Orphan  (no Okta group)                           SCIM u00-u02
func drift(f *fixture) {
	u := f.users("u", 60)
	f.user("nosync@example.com", false)
	f.oktaGroupOf("AWS_Admins", append(slices.Clone(u[0:20]), "nosync@example.com")...)
	f.oktaGroupOf("AWS_Dev", u[10:40]...)
	f.oktaGroupOf("AWS_Ops", u[30:50]...)
	f.oktaGroupOf("GCP_Other", u[0:10]...)

	f.scimGroupOf("AWS_Admins", f.oktaGroup["AWS_Admins"], append(slices.Clone(u[0:15]), u[50], u[51])...)
	dev := slices.Concat(u[10:20], u[21:40], []string{u[55]})
	f.scimGroupOf("AWS_Dev", f.oktaGroup["AWS_Dev"], dev...)
	f.scimGroupOf("GCP_Other", "", u[40:46]...)
	f.scimGroupOf("AWS_Orphan", "", u[0:3]...)
}

func TestReconcileRepairsDrift(t *testing.T) {
	f := newFixture(t)
	drift(f)
	before := f.scim.Snapshot()

	s, err := f.invoke(testCtx(t), readFixture(t, "reconcile-schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.wantInSync("AWS_Admins", "AWS_Dev", "AWS_Ops")
	after := f.scim.Snapshot()
	for _, g := range []string{"GCP_Other", "AWS_Orphan"} {
		if !slices.Equal(before[g], after[g]) {
			t.Errorf("%s changed: %v → %v", g, before[g], after[g])
		}
	}
	f.safeWire()

	if s.Trigger != "schedule" || s.DryRun || s.GroupsSelected != 3 || s.GroupsChecked != 3 || s.GroupsCreated != 1 ||
		s.Adds != 26 || s.Removes != 3 || s.Added != 26 || s.Removed != 3 || s.Failed != 0 || s.Blocked ||
		s.UnknownUsers != 1 || !slices.Equal(s.UnknownUsersSample, []string{"nosync@example.com"}) {
		t.Errorf("summary %+v", s)
	}
	if s.ScimRequests != int64(f.scim.TotalRequests()) || s.OktaRequests != f.okta.Stats().Requests {
		t.Errorf("summary requests scim %d okta %d; servers saw %d and %d", s.ScimRequests, s.OktaRequests, f.scim.TotalRequests(), f.okta.Stats().Requests)
	}
	// The unselected and orphan groups were never written to.
	for _, l := range f.logLines() {
		if l["msg"] == "audit" && (l["group"] == "GCP_Other" || l["group"] == "AWS_Orphan") {
			t.Errorf("audit record for an untouched group: %v", l)
		}
	}
	if got := len(f.audits()["applied"]); got != 29 {
		t.Errorf("%d applied audit records, want 29", got)
	}
	f.wantMetric("DriftFound", 29)
	f.wantMetric("DriftRepaired", 29)
	f.wantMetric("UnknownUsers", 1)
	f.wantMetric("ReconcileRemovalsBlocked", 0)
	f.wantMetric("ReconcileGroupsSkipped", 0)
	if strings.Contains(f.logs.String(), oktaToken) || strings.Contains(f.logs.String(), "scimtest-token") {
		t.Error("a token reached the log")
	}

	// A second run finds nothing to do and writes nothing.
	f.scim.ResetCounters()
	s, err = f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if s.Trigger != "manual" || s.Adds+s.Removes != 0 || s.GroupsInSync != 3 {
		t.Errorf("second run %+v", s)
	}
	for route, n := range f.scim.Requests() {
		if !strings.HasPrefix(route, "GET ") {
			t.Errorf("second run sent %d %s", n, route)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     bool
		payload string
	}{
		{"DRY_RUN=true", true, "{}"},
		{"payload", false, "reconcile-manual-dry-run.json"},
		// A payload cannot switch a configured dry run off.
		{"payload false", true, `{"dryRun": false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			drift(f)
			f.cfg.DryRun = tc.env
			before := f.scim.Snapshot()
			payload := tc.payload
			if strings.HasSuffix(payload, ".json") {
				payload = readFixture(t, payload)
			}
			s, err := f.invoke(testCtx(t), payload)
			if err != nil {
				t.Fatal(err)
			}
			if after := f.scim.Snapshot(); fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("dry run changed SCIM")
			}
			if n := f.scim.Writes(); n != 0 {
				t.Errorf("dry run sent %d SCIM writes: %v", n, f.scim.Requests())
			}
			if !s.DryRun || s.Adds != 26 || s.Removes != 3 || s.Added+s.Removed != 0 || s.GroupsCreated != 1 {
				t.Errorf("summary %+v", s)
			}
			// The full plan is in the log: one dry_run audit record per change.
			if got := len(f.audits()["dry_run"]); got != 29 {
				t.Errorf("%d dry_run audit records, want 29", got)
			}
			f.wantMetric("DriftFound", 29)
			f.wantMetric("DriftRepaired", 0)
		})
	}
}

func TestRemovalsOverCapRemoveNoneAndFail(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.cfg.MaxRemovals = 2 // the drift needs 3
	before := f.scim.Snapshot()

	s, err := f.invoke(testCtx(t), "{}")
	if !errors.Is(err, ErrRemovalsBlocked) && (err == nil || !strings.Contains(err.Error(), "MAX_REMOVALS")) {
		t.Fatalf("err = %v, want removals blocked", err)
	}
	after := f.scim.Snapshot()
	for _, g := range []string{"AWS_Admins", "AWS_Dev", "AWS_Ops"} {
		for _, m := range before[g] {
			if !slices.Contains(after[g], m) {
				t.Errorf("%s lost %s although removals were blocked", g, m)
			}
		}
	}
	// Adds ran: every Okta member is there now.
	for _, g := range []string{"AWS_Admins", "AWS_Dev", "AWS_Ops"} {
		for _, m := range f.oktaMembers(g) {
			if _, ok := f.scim.UserID(m); ok && !slices.Contains(after[g], m) {
				t.Errorf("%s misses %s: adds should run", g, m)
			}
		}
	}
	if f.scim.Count("PATCH /Groups/{id}") == 0 {
		t.Error("no PATCH: adds should run")
	}
	if !s.Blocked || s.RemovalsBlocked != 3 || s.Removed != 0 || s.Added != 26 || !strings.Contains(s.BlockedReason, "MAX_REMOVALS=2") {
		t.Errorf("summary %+v", s)
	}
	f.wantMetric("ReconcileRemovalsBlocked", 3)
	var warned int
	for _, l := range f.logLines() {
		if l["msg"] == "removals blocked" {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("%d 'removals blocked' lines, want one per group with removals (2)", warned)
	}
	f.safeWire()

	// At the cap exactly, the removals run.
	f.cfg.MaxRemovals = 3
	if s, err = f.invoke(testCtx(t), "{}"); err != nil || s.Removed != 3 {
		t.Fatalf("at the cap: %+v, %v", s, err)
	}
	f.wantInSync("AWS_Admins", "AWS_Dev", "AWS_Ops")
}

func TestEmptyOktaAnswerRemovesNothing(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.cfg.MaxRemovals = 1000
	f.okta.EmptyGroupMembers(f.oktaGroup["AWS_Dev"], -1)
	before := f.scim.Snapshot()

	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if after := f.scim.Snapshot(); !slices.Equal(before["AWS_Dev"], after["AWS_Dev"]) {
		t.Errorf("AWS_Dev changed on an empty Okta answer: %d → %d members", len(before["AWS_Dev"]), len(after["AWS_Dev"]))
	}
	f.wantInSync("AWS_Admins", "AWS_Ops")
	if !slices.Equal(s.SuspiciousGroups, []string{"AWS_Dev"}) || s.RemovalsBlocked != 30 || !s.Blocked {
		t.Errorf("summary %+v", s)
	}
	f.wantMetric("ReconcileRemovalsBlocked", 30)

	// ALLOW_EMPTY_GROUPS=true believes an empty group, not an empty answer: Okta still counts 30
	// members in AWS_Dev, so the listing is partial and nobody is removed.
	f.cfg.AllowEmptyGroups = true
	s, err = f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.scim.Snapshot()["AWS_Dev"]; !slices.Equal(before["AWS_Dev"], got) {
		t.Errorf("AWS_Dev changed on an empty answer for a group Okta counts 30 members in: %d → %d", len(before["AWS_Dev"]), len(got))
	}
	if len(s.PartialGroups) != 1 || s.PartialGroups[0].Listed != 0 || s.PartialGroups[0].Counted != 30 {
		t.Errorf("partial groups %+v, want AWS_Dev listed 0 of 30", s.PartialGroups)
	}

	// A group really emptied in Okta (count 0) is believed with ALLOW_EMPTY_GROUPS.
	f.okta.ClearFaults()
	for _, l := range f.oktaMembers("AWS_Dev") {
		if err := f.okta.RemoveMember(f.oktaGroup["AWS_Dev"], f.oktaUser[l]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.invoke(testCtx(t), "{}"); err != nil {
		t.Fatal(err)
	}
	if got := f.scim.Snapshot()["AWS_Dev"]; len(got) != 0 {
		t.Errorf("AWS_Dev kept %d members with ALLOW_EMPTY_GROUPS", len(got))
	}
	f.safeWire()
}

// An Okta member page that comes back empty without a next link truncates the listing so that it
// looks complete. Okta's count of the group (expand=stats) gives it away: whatever MAX_REMOVALS
// says, nobody is removed from that group, its adds still run, the other groups are repaired, and
// the next run with a whole answer repairs it too.
func TestTruncatedOktaListingRemovesNothing(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.cfg.MaxRemovals = 100000
	big := f.users("big", 450)
	f.user("extra@example.com", true)
	gid := f.oktaGroupOf("AWS_Big", big...)
	// SCIM misses big0000 (on Okta's first page) and has one member Okta does not.
	f.scimGroupOf("AWS_Big", gid, append(slices.Clone(big[1:]), "extra@example.com")...)
	// 200 members per page: page 2 answers [] without a next link, so Okta lists 200 of 450.
	f.okta.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Empty: true, Skip: 1, Times: -1})
	before := f.scim.Snapshot()

	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatalf("a partial listing must not fail the run: %v", err)
	}
	after := f.scim.Snapshot()
	for _, m := range before["AWS_Big"] {
		if !slices.Contains(after["AWS_Big"], m) {
			t.Errorf("AWS_Big lost %s on a truncated Okta listing", m)
		}
	}
	if !slices.Contains(after["AWS_Big"], big[0]) {
		t.Errorf("AWS_Big misses %s: adds of a partial group still run", big[0])
	}
	f.wantInSync("AWS_Admins", "AWS_Dev", "AWS_Ops")
	want := []PartialGroup{{Group: "AWS_Big", GroupID: gid, Listed: 200, Counted: 450, RemovalsWithheld: 251}}
	if !slices.Equal(s.PartialGroups, want) || s.Removed != 3 || s.RemovalsBlocked != 251 || !s.Blocked ||
		!strings.Contains(s.BlockedReason, "Okta listed 200 members of 450") || len(s.SuspiciousGroups) != 0 {
		t.Errorf("summary %+v", s)
	}
	f.wantMetric("ReconcileRemovalsBlocked", 251)
	var warned bool
	for _, l := range f.logLines() {
		if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "may be partial") {
			warned = l["group"] == "AWS_Big" && l["okta_listed"] == 200.0 && l["okta_count"] == 450.0
		}
	}
	if !warned {
		t.Error("no WARN naming AWS_Big with okta_listed 200 and okta_count 450")
	}
	f.safeWire()

	// Okta answers in full again: the next run removes what Okta no longer has.
	f.okta.ClearFaults()
	f.metrics.Reset()
	s, err = f.invoke(testCtx(t), "{}")
	if err != nil || s.Removed != 1 || len(s.PartialGroups) != 0 || s.Blocked {
		t.Fatalf("second run: %+v, %v", s, err)
	}
	f.wantInSync("AWS_Admins", "AWS_Dev", "AWS_Ops", "AWS_Big")
}

func TestOktaErrorSkipsGroup(t *testing.T) {
	for _, status := range []int{500, 429, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t)
			drift(f)
			f.okta.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: f.oktaGroup["AWS_Admins"], Status: status, Times: -1, ResetIn: -time.Second})
			before := f.scim.Snapshot()

			s, err := f.invoke(testCtx(t), "{}")
			if err != nil {
				t.Fatal(err)
			}
			if after := f.scim.Snapshot(); !slices.Equal(before["AWS_Admins"], after["AWS_Admins"]) {
				t.Errorf("AWS_Admins changed although Okta failed")
			}
			f.wantInSync("AWS_Dev", "AWS_Ops")
			if len(s.Skipped) != 1 || s.Skipped[0].Group != "AWS_Admins" || !strings.Contains(s.Skipped[0].Reason, fmt.Sprint(status)) ||
				s.GroupsChecked != 2 || len(s.Errors) == 0 {
				t.Errorf("summary %+v", s)
			}
			f.wantMetric("ReconcileGroupsSkipped", 1)
		})
	}
}

func TestOktaGroupListFailureChangesNothing(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.okta.FailListGroups(503, -1)
	if _, err := f.invoke(testCtx(t), "{}"); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err = %v", err)
	}
	if n := f.scim.TotalRequests(); n != 0 {
		t.Errorf("%d SCIM requests after the group list failed", n)
	}
}

func TestSCIMUnauthorizedFailsLoudly(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.scim.ExpireToken(true)
	_, err := f.invoke(testCtx(t), "{}")
	if err == nil || !strings.Contains(err.Error(), "aws_sso_scim_key") {
		t.Fatalf("err = %v", err)
	}
	f.wantMetric("ScimUnauthorized", 1)
	if n := f.scim.Count("PATCH /Groups/{id}") + f.scim.Count("POST /Groups"); n != 0 {
		t.Errorf("%d writes with a rejected token", n)
	}
	// It stops at the first rejection instead of trying every group.
	if n := f.scim.Unauthorized(); n > 4 {
		t.Errorf("%d requests answered 401", n)
	}
}

func TestRenamedGroupIsNotDuplicated(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 5)
	id := f.oktaGroupOf("AWS_New", u...)
	f.scimGroupOf("AWS_Old", id, u[:2]...) // created under the old name, rename event lost

	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	// The AWS group carrying the Okta id is this group's: renamed to the current name and
	// repaired, never duplicated.
	if n := f.scim.Count("POST /Groups"); n != 0 {
		t.Errorf("%d groups created", n)
	}
	if s.GroupsRenamed != 1 || s.Added != 3 || len(s.Skipped) != 0 {
		t.Errorf("summary %+v", s)
	}
	if _, ok := f.scim.GroupID("AWS_Old"); ok {
		t.Error("AWS_Old still there")
	}
	f.wantInSync("AWS_New")
}

func TestIdentityInTheReconciler(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 4)
	admins := f.oktaGroupOf("AWS_Admins", u[:2]...)
	f.scimGroupOf("AWS_Admins", admins, u[0])
	f.scimGroupOf("AWS_Admins_copy", admins, u[2:]...) // a second group given the id by hand
	gone := f.okta.AddGroup("AWS_Gone")
	if err := f.okta.DeleteGroup(gone); err != nil {
		t.Fatal(err)
	}
	orphan := f.scimGroupOf("AWS_Gone", gone, u[3])
	ops := f.oktaGroupOf("AWS_Ops", u[1:3]...)
	other := f.okta.AddGroupOfType("Legacy_Ops", "OKTA_GROUP") // not selected
	f.scimGroupOf("AWS_Ops", other, u[0])                      // AWS_Ops's name, another Okta group's id
	before := f.scim.Snapshot()

	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Orphans) != 1 || s.Orphans[0].SCIMGroupID != orphan || !strings.Contains(s.Orphans[0].Reason, "no longer has") {
		t.Errorf("orphans %+v", s.Orphans)
	}
	// Neither AWS group carrying AWS_Admins's id, the orphan, nor the other group's AWS group is
	// written.
	if after := f.scim.Snapshot(); fmt.Sprint(after) != fmt.Sprint(before) || f.scim.Writes() != 0 {
		t.Errorf("snapshot %v → %v, %d writes", before, after, f.scim.Writes())
	}
	skipped := map[string]string{}
	for _, g := range s.Skipped {
		skipped[g.GroupID] = g.Reason
	}
	if len(skipped) != 2 || !strings.Contains(skipped[ops], "carries Okta group "+other) || !strings.Contains(skipped[admins], "2 AWS groups carry Okta group "+admins) {
		t.Errorf("skipped %+v", s.Skipped)
	}
	if len(s.IdentityConflicts) != 2 {
		t.Fatalf("identity conflicts %+v", s.IdentityConflicts)
	}
	f.wantMetric("OrphanGroups", 1)
	f.wantMetric("GroupIdentityConflicts", 2)
}

// Two AWS groups carry one Okta group's id: whatever order SCIM lists them in, and whether the
// run finds them in its listing or one by one (the listing failed), the group is skipped as an
// identity conflict naming both, nothing is written to either (no add, no remove, no adoption,
// no rename), the conflict is counted, and the other groups are reconciled.
func TestDuplicateExternalIDSkipsTheGroupInAnyListingOrder(t *testing.T) {
	for _, listingFails := range []bool{false, true} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("listing_fails=%v/order=%d", listingFails, seed), func(t *testing.T) {
				f := newFixtureSCIM(t, scimtest.Options{Seed: 1, GroupOrderSeed: seed})
				u := f.users("u", 4)
				// Okta renamed the group too: a rename of either AWS group would be a guess.
				admins := f.oktaGroupOf("AWS_Admins_EU", u[0], u[1])
				a := f.scimGroupOf("AWS_Admins", admins, u[0], u[2])
				b := f.scimGroupOf("AWS_Team", admins, u[3])
				f.oktaGroupOf("AWS_Dev", u[0])
				f.scimGroupOf("AWS_Dev", f.oktaGroup["AWS_Dev"])
				if listingFails {
					var once sync.Once
					f.scim.SetFaultFunc(func(route string, r *http.Request) *scimtest.Fault {
						var fault *scimtest.Fault
						if route == "GET /Groups" && r.URL.Query().Get("filter") == "" {
							once.Do(func() { fault = &scimtest.Fault{Status: 400} })
						}
						return fault
					})
				}
				s, err := f.invoke(testCtx(t), "{}")
				if err != nil {
					t.Fatal(err)
				}
				snap := f.scim.Snapshot()
				if fmt.Sprint(snap["AWS_Admins"]) != fmt.Sprint([]string{u[0], u[2]}) || fmt.Sprint(snap["AWS_Team"]) != fmt.Sprint([]string{u[3]}) {
					t.Errorf("snapshot %v: a group carrying the duplicated id was written", snap)
				}
				if _, ok := snap["AWS_Admins_EU"]; ok {
					t.Errorf("snapshot %v: renamed or created", snap)
				}
				f.wantInSync("AWS_Dev")
				want := []string{a, b}
				slices.Sort(want)
				if len(s.IdentityConflicts) != 1 || s.IdentityConflicts[0].GroupID != admins || !slices.Equal(s.IdentityConflicts[0].SCIMGroupIDs, want) {
					t.Fatalf("identity conflicts %+v, want %s with %v", s.IdentityConflicts, admins, want)
				}
				if len(s.Skipped) != 1 || s.Skipped[0].GroupID != admins || !strings.Contains(s.Skipped[0].Reason, "2 AWS groups carry Okta group "+admins) {
					t.Errorf("skipped %+v", s.Skipped)
				}
				if !slices.ContainsFunc(s.Errors, func(e string) bool {
					return strings.Contains(e, "AWS_Admins_EU") && strings.Contains(e, "identity conflict")
				}) {
					t.Errorf("errors %v", s.Errors)
				}
				if len(s.Orphans) != 0 || s.Added != 1 || s.Removed != 0 {
					t.Errorf("summary %+v", s)
				}
				f.wantMetric("GroupIdentityConflicts", 1)
			})
		}
	}
}

func TestCreateGroupsFalse(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.cfg.CreateGroups = false
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.scim.GroupID("AWS_Ops"); ok {
		t.Error("AWS_Ops created with CREATE_GROUPS=false")
	}
	if len(s.Skipped) != 1 || s.Skipped[0].Group != "AWS_Ops" || !strings.Contains(s.Skipped[0].Reason, "CREATE_GROUPS=false") {
		t.Errorf("summary %+v", s)
	}
	f.wantInSync("AWS_Admins", "AWS_Dev")
}

func TestSelection(t *testing.T) {
	f := newFixture(t)
	drift(f)
	f.oktaGroupOf("aws_lower", f.users("l", 2)...) // Okta's search is case-insensitive; the selection is not
	t.Run("regex", func(t *testing.T) {
		f.cfg.Selection = config.Selection{Prefix: "AWS_", Regex: regexp.MustCompile(`^(AWS_Dev|GCP_Other)$`)}
		s, err := f.invoke(testCtx(t), "{}")
		if err != nil {
			t.Fatal(err)
		}
		if s.GroupsSelected != 2 || s.GroupsChecked != 2 {
			t.Errorf("summary %+v", s)
		}
		f.wantInSync("AWS_Dev", "GCP_Other")
	})
	t.Run("payload groups", func(t *testing.T) {
		f.cfg.Selection = config.Selection{Prefix: "AWS_"}
		before := f.scim.Snapshot()
		s, err := f.invoke(testCtx(t), `{"groups": ["AWS_Admins", "GCP_Other", "`+f.oktaGroup["AWS_Ops"]+`"]}`)
		if err != nil {
			t.Fatal(err)
		}
		if s.GroupsSelected != 2 || len(s.Errors) != 1 || !strings.Contains(s.Errors[0], `"GCP_Other" is not a selected`) {
			t.Errorf("summary %+v", s)
		}
		f.wantInSync("AWS_Admins", "AWS_Ops")
		if after := f.scim.Snapshot(); !slices.Equal(before["GCP_Other"], after["GCP_Other"]) {
			t.Error("GCP_Other changed")
		}
		if _, ok := f.scim.GroupID("aws_lower"); ok {
			t.Error("aws_lower is not selected by prefix AWS_")
		}
	})
}

func TestAmbiguousGroupNamesAreSkipped(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 4)
	f.oktaGroupOf("AWS_Twin", u[:2]...)
	f.okta.AddGroupOfType("AWS_Twin", oktatest.TypeAppGroup)
	f.scimGroupOf("AWS_Twin", "", u[2:]...)
	before := f.scim.Snapshot()
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Skipped) != 2 || fmt.Sprint(before) != fmt.Sprint(f.scim.Snapshot()) {
		t.Errorf("summary %+v", s)
	}
}

// Of two selected groups with one name, the one whose id its AWS group carries is identified and
// reconciled; the other is skipped and never touches that AWS group.
func TestSameNamedGroupWithItsOwnAWSGroup(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 4)
	twin := f.oktaGroupOf("AWS_Twin", u[:2]...)
	app := f.okta.AddGroupOfType("AWS_Twin", oktatest.TypeAppGroup)
	if err := f.okta.AddMember(app, f.oktaUser[u[3]]); err != nil {
		t.Fatal(err)
	}
	f.scimGroupOf("AWS_Twin", twin, u[2])
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.scim.Snapshot()["AWS_Twin"]; !slices.Equal(got, u[:2]) {
		t.Errorf("AWS_Twin = %v, want the OKTA_GROUP's members", got)
	}
	if len(s.Skipped) != 1 || s.Skipped[0].GroupID != app {
		t.Errorf("skipped %+v, want the APP_GROUP", s.Skipped)
	}
}

func TestDeprovisionedMembersAreNotGranted(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 3)
	f.oktaGroupOf("AWS_G", u...)
	f.scimGroupOf("AWS_G", "", u...)
	if err := f.okta.SetUserStatus(f.oktaUser[u[2]], "DEPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.scim.Snapshot()["AWS_G"]; !slices.Equal(got, u[:2]) || s.Removed != 1 {
		t.Errorf("members %v, summary %+v", got, s)
	}
}

// A break-glass group whose only member is deactivated in Okta: Okta lists the member (every
// status), none is granted, so the group is emptied; the empty-answer guard looks at what Okta
// listed, not at what it grants. An Okta group that lists nobody still removes none.
func TestAllDeprovisionedGroupIsEmptied(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 3)
	f.oktaGroupOf("AWS_BreakGlass", u[0])
	f.scimGroupOf("AWS_BreakGlass", f.oktaGroup["AWS_BreakGlass"], u[0])
	f.oktaGroupOf("AWS_Empty")
	f.scimGroupOf("AWS_Empty", f.oktaGroup["AWS_Empty"], u[1], u[2])
	if err := f.okta.Deactivate(f.oktaUser[u[0]]); err != nil {
		t.Fatal(err)
	}
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	snap := f.scim.Snapshot()
	if got := snap["AWS_BreakGlass"]; len(got) != 0 {
		t.Errorf("AWS_BreakGlass = %v: the deactivated member stayed", got)
	}
	if got := snap["AWS_Empty"]; !slices.Equal(got, []string{u[1], u[2]}) {
		t.Errorf("AWS_Empty = %v: an empty Okta answer removed members", got)
	}
	if s.Removed != 1 || s.RemovalsBlocked != 2 || !slices.Equal(s.SuspiciousGroups, []string{"AWS_Empty"}) {
		t.Errorf("summary %+v", s)
	}
}

// TestLinkingCost: 2,000 users in 4 groups cost a few dozen SCIM requests: member listings, one
// listing of the users that are not members yet, and the PATCHes.
func TestLinkingCost(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 2000)
	groups := map[string][]string{"AWS_A": u[0:1200], "AWS_B": u[1000:1500], "AWS_C": u[1400:1800], "AWS_D": u[1700:2000]}
	for name, ms := range groups {
		f.oktaGroupOf(name, ms...)
		// SCIM misses every 40th member (2.5 %) and has 3 extras.
		var have []string
		for i, m := range ms {
			if i%40 != 7 {
				have = append(have, m)
			}
		}
		f.scimGroupOf(name, f.oktaGroup[name], append(have, u[1990:1993]...)...)
	}
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	f.wantInSync("AWS_A", "AWS_B", "AWS_C", "AWS_D")
	f.safeWire()
	t.Logf("SCIM requests %d %v, Okta requests %d", s.ScimRequests, f.scim.Requests(), s.OktaRequests)
	if s.ScimRequests > 60 {
		t.Errorf("%d SCIM requests for 2,000 users in 4 groups, want a few dozen", s.ScimRequests)
	}
}

func TestDeadlineStopsStartingGroupsAndNextRunContinues(t *testing.T) {
	for _, withLedger := range []bool{false, true} {
		t.Run(fmt.Sprintf("ledger=%v", withLedger), func(t *testing.T) {
			f := newFixture(t)
			u := f.users("u", 40)
			var names []string
			for i := range 8 {
				name := fmt.Sprintf("AWS_G%d", i)
				names = append(names, name)
				f.oktaGroupOf(name, u[i*5:i*5+5]...)
				f.scimGroupOf(name, f.oktaGroup[name], u[i*5:i*5+3]...) // two adds each
			}
			var led *ledger.Memory
			if withLedger {
				led = ledger.NewMemory()
				f.cfg.Ledger = led
			}
			clk := &clock{t: time.Now()}
			slow := &slowOkta{Okta: f.reader, clock: clk, step: 10 * time.Minute}
			f.cfg.Okta = func(context.Context, bool) (Okta, error) { return slow, nil }
			f.cfg.Now = clk.Now
			f.cfg.Concurrency = 1
			f.cfg.ReadShare = 0.5

			// One hour until the deadline: reads may start for 30 minutes, and each takes 10.
			ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(time.Hour+DefaultSafetyMargin))
			defer cancel()
			s, err := f.invoke(ctx, "{}")
			if err != nil {
				t.Fatal(err)
			}
			if s.GroupsChecked != 3 || len(s.NotReached) != 5 {
				t.Fatalf("first run: %d checked, not reached %v", s.GroupsChecked, s.NotReached)
			}
			snap := f.scim.Snapshot()
			for _, n := range s.NotReached {
				if len(snap[n]) != 3 {
					t.Errorf("%s not reached but changed", n)
				}
			}

			if !withLedger {
				return
			}
			// Oldest first: the next run starts with the five groups the first did not reach.
			slow.read = nil
			ctx2, cancel2 := context.WithDeadline(context.Background(), clk.Now().Add(2*time.Hour+DefaultSafetyMargin))
			defer cancel2()
			s2, err := f.invoke(ctx2, "{}")
			if err != nil {
				t.Fatal(err)
			}
			if s2.GroupsChecked != 6 || s2.Added != 10 {
				t.Fatalf("second run %+v", s2)
			}
			var first []string
			for _, id := range slow.read[:5] {
				for n, gid := range f.oktaGroup {
					if gid == id {
						first = append(first, n)
					}
				}
			}
			slices.Sort(first)
			want := slices.Clone(s.NotReached)
			slices.Sort(want)
			if !slices.Equal(first, want) {
				t.Errorf("second run read %v first, want %v", first, want)
			}
			f.wantInSync(names...)
		})
	}
}

func TestOrderingMarks(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 6)
	gid := f.oktaGroupOf("AWS_G", u[0], u[1], u[2])
	f.scimGroupOf("AWS_G", gid, u[0], u[3], u[4]) // plan: add u1 u2, remove u3 u4
	led := ledger.NewMemory()
	f.cfg.Ledger = led
	now := time.Date(2025, 11, 25, 13, 0, 0, 0, time.UTC)
	f.cfg.Now = func() time.Time { return now }
	// The sync worker applied an add of u3 published after this run's read: keep u3. An older
	// mark for u4 (before the read, beyond the skew) does not stop its removal.
	key := func(l string) membership.Key { return membership.Key{GroupID: gid, UserID: f.oktaUser[l]} }
	if err := led.Put(context.Background(), []ledger.Record{
		{Key: key(u[3]), Mark: membership.Mark{Published: now.Add(30 * time.Second), Kind: membership.KindAdd, EventUUID: "e3"}},
		{Key: key(u[4]), Mark: membership.Mark{Published: now.Add(-2 * time.Minute), Kind: membership.KindAdd, EventUUID: "e4"}},
	}); err != nil {
		t.Fatal(err)
	}
	s, err := f.invoke(testCtx(t), "{}")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.scim.Snapshot()["AWS_G"]; !slices.Equal(got, []string{u[0], u[1], u[2], u[3]}) || s.Deferred != 1 {
		t.Errorf("members %v, summary %+v", got, s)
	}
	marks, _ := led.Get(context.Background(), []membership.Key{key(u[1]), key(u[2]), key(u[3]), key(u[4]), {GroupID: gid, UserID: groupMarkUser}})
	at := now.Add(-markSkew)
	for _, c := range []struct {
		l    string
		kind membership.Kind
		at   time.Time
	}{{u[1], membership.KindAdd, at}, {u[2], membership.KindAdd, at}, {u[3], membership.KindAdd, now.Add(30 * time.Second)}, {u[4], membership.KindRemove, at}} {
		m := marks[key(c.l)]
		if m.Kind != c.kind || !m.Published.Equal(c.at) {
			t.Errorf("mark of %s = %+v, want %s at %s", c.l, m, c.kind, c.at)
		}
	}
	// A queued event published before the read, delivered now, is stale against the mark.
	late := membership.Change{EventUUID: "old", Published: now.Add(-5 * time.Minute), Kind: membership.KindRemove, UserID: f.oktaUser[u[1]], GroupID: gid}
	if v := membership.Decide(late, marks[key(u[1])]); v != membership.DecisionStale {
		t.Errorf("older event vs reconcile mark: %v, want stale", v)
	}
	// One published after the read wins.
	newer := late
	newer.Published = now.Add(time.Second)
	if v := membership.Decide(newer, marks[key(u[1])]); v != membership.DecisionApply {
		t.Errorf("newer event vs reconcile mark: %v, want apply", v)
	}
	if m := marks[membership.Key{GroupID: gid, UserID: groupMarkUser}]; !m.Published.Equal(now) {
		t.Errorf("group mark %+v", m)
	}
}

func TestPayloads(t *testing.T) {
	f := newFixture(t)
	u := f.users("u", 2)
	f.oktaGroupOf("AWS_G", u...)
	for _, p := range []string{"", "  ", "null", "{}", readFixture(t, "reconcile-schedule.json"), readFixture(t, "reconcile-manual-groups.json")} {
		if _, err := f.invoke(testCtx(t), p); err != nil {
			t.Errorf("payload %q: %v", p, err)
		}
	}
	for _, p := range []string{"[1]", `{"dryRun": "yes"}`, `{"time": 5}`, "{"} {
		if _, err := lambdaInvoke(f, p); err == nil {
			t.Errorf("payload %q accepted", p)
		}
	}
}

func lambdaInvoke(f *fixture, p string) ([]byte, error) {
	return f.handler().Invoke(context.Background(), []byte(p))
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
