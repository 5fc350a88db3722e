package scimapply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

func TestUniqueGroup(t *testing.T) {
	a := scim.Group{ID: "g-b", DisplayName: "AWS_Admins", ExternalID: "00gA"}
	b := scim.Group{ID: "g-a", DisplayName: "AWS_Team", ExternalID: "00gA"}
	other := scim.Group{ID: "g-c", DisplayName: "AWS_Other", ExternalID: "00ga"} // not an exact match

	if _, err := UniqueGroup("00gA", nil); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("none: %v", err)
	}
	if g, err := UniqueGroup("00gA", []scim.Group{other, a, a}); err != nil || g != a {
		t.Errorf("one (a listing that repeats it, a loose match beside it): %+v, %v", g, err)
	}
	var msgs []string
	for _, order := range [][]scim.Group{{a, b}, {b, a}, {b, other, a}} {
		_, err := UniqueGroup("00gA", order)
		var dup *DuplicateExternalID
		if !errors.As(err, &dup) || !errors.Is(err, ErrDuplicateExternalID) || !errors.Is(err, ErrIdentityConflict) {
			t.Fatalf("%v: %v, want a DuplicateExternalID", order, err)
		}
		if !slices.Equal(dup.SCIMGroupIDs(), []string{"g-a", "g-b"}) {
			t.Errorf("ids %v, want sorted", dup.SCIMGroupIDs())
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Errorf("the answer depends on the listing order:\n%s", strings.Join(msgs, "\n"))
	}
	for _, want := range []string{"2 AWS groups carry Okta group 00gA", `"AWS_Team" (g-a), "AWS_Admins" (g-b)`} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("%q lacks %q", msgs[0], want)
		}
	}
}

// Two AWS groups carry one Okta group's id (one named as the Okta group, one given the id by
// hand): every way the directory resolves the group refuses with the duplicate, whatever order
// SCIM lists them in, cold or with the group cached from before the second one was tagged, and
// nothing is written (no adoption, no creation).
func TestResolveRefusesADuplicatedExternalID(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(6) {
		t.Run(fmt.Sprintf("order=%d", seed), func(t *testing.T) {
			e := newEnv(t, scimtest.Options{Seed: 1, GroupOrderSeed: seed})
			mine := e.srv.AddGroup("AWS_Admins", "00gA")
			okta := &fakeOkta{names: map[string]string{"00gA": "AWS_Admins"}}
			d := NewDirectory(e.client, WithSelection(selectedAWS), WithOktaGroups(okta.lookup))
			ref := GroupRef{ID: "00gA", Name: "AWS_Admins"}
			epoch := time.Now()
			// Warm: the group is cached before an administrator tags a second one.
			if res, err := d.Resolve(ctx, ref, GroupQuery{FreshSince: epoch}); err != nil || res.Group.ID != mine {
				t.Fatalf("before the duplicate: %+v, %v", res, err)
			}
			copyID := e.srv.AddGroup("AWS_Team", "00gA")
			want := []string{mine, copyID}
			slices.Sort(want)
			e.srv.ResetCounters()
			for _, q := range []GroupQuery{
				{FreshSince: time.Now().Add(time.Second)}, // the next invocation: re-read
				{Create: true},
				{ExternalIDOnly: true},
				{},
			} {
				_, err := d.Resolve(ctx, ref, q)
				var dup *DuplicateExternalID
				if !errors.As(err, &dup) || !slices.Equal(dup.SCIMGroupIDs(), want) {
					t.Fatalf("%+v: %v, want the duplicate naming %v", q, err, want)
				}
				if strings.Contains(err.Error(), scimtest.DefaultToken) {
					t.Fatalf("the error carries the token: %v", err)
				}
				if _, ok := d.CachedGroup("00gA"); ok {
					t.Fatal("a group of a duplicated id stays cached")
				}
			}
			if n := e.srv.Writes(); n != 0 {
				t.Fatalf("%d SCIM writes: %v", n, e.srv.Requests())
			}
			if n := len(e.srv.Groups()); n != 2 {
				t.Fatalf("%d groups: %v", n, e.srv.Groups())
			}
		})
	}
}
