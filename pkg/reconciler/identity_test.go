package reconciler

import (
	"slices"
	"strings"
	"testing"
)

// A dry run (DRY_RUN, or the payload's dryRun) with a hand-made AWS group to adopt and a group
// renamed in Okta: the summary's per-group plan shows the adoption, the rename and the member
// changes, and the emulator sees no write (externalId and displayName untouched).
func TestDryRunPlansAdoptionAndRenameWritingNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     bool
		payload string
	}{{"DRY_RUN=true", true, "{}"}, {"payload", false, `{"dryRun": true}`}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.DryRun = tc.env
			u := f.users("u", 4)
			f.oktaGroupOf("AWS_Hand", u[0], u[1])
			f.scimGroupOf("AWS_Hand", "", u[2]) // made by hand in AWS: no externalId yet
			renamed := f.oktaGroupOf("AWS_New", u[3])
			f.scimGroupOf("AWS_Old", renamed)
			before := f.scim.Groups()

			s, err := f.invoke(testCtx(t), tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if n := f.scim.Writes(); n != 0 {
				t.Fatalf("dry run sent %d SCIM writes: %v", n, f.scim.Requests())
			}
			if after := f.scim.Groups(); !slices.Equal(before, after) {
				t.Fatalf("groups changed: %v → %v", before, after)
			}
			if !s.DryRun || s.GroupsAdopted != 1 || s.WritesRefused != 0 || s.Adds != 3 || s.Removes != 1 || s.Added+s.Removed != 0 {
				t.Fatalf("summary %+v", s)
			}
			byName := map[string]GroupResult{}
			for _, g := range s.Groups {
				byName[g.Group] = g
			}
			hand, ren := byName["AWS_Hand"], byName["AWS_New"]
			if !hand.Adopted || hand.Adds != 2 || hand.Removes != 1 || !slices.Equal(hand.RemoveLogins, []string{u[2]}) ||
				!slices.Equal(slices.Sorted(slices.Values(hand.AddLogins)), []string{u[0], u[1]}) {
				t.Errorf("AWS_Hand plan %+v", hand)
			}
			if ren.RenamedFrom != "AWS_Old" || ren.RenamedTo != "AWS_New" || ren.Adds != 1 || ren.Adopted {
				t.Errorf("AWS_New plan %+v", ren)
			}
			logs := f.logs.String()
			for _, want := range []string{"dry run: AWS group would be adopted", "dry run: AWS group would be renamed"} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q", want)
				}
			}
			if got := len(f.audits()["dry_run"]); got != 4 {
				t.Errorf("%d dry_run audit records, want 4", got)
			}
		})
	}
}
