package scimapply

import (
	"context"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// The userName rule (rememberLocked): an Okta login links the SCIM user whose userName is the same
// string, case included. The emulator's userName filter ignores case, as AWS's may, so a client
// that trusted the filter would link the wrong user here.

// resolveBoth resolves refs in a fresh directory twice: by per-user lookups and by a listing.
func resolveBoth(t *testing.T, e *env, refs []UserRef) map[Strategy]Resolution {
	t.Helper()
	ctx := context.Background()
	out := map[Strategy]Resolution{}
	for _, d := range []*Directory{NewDirectory(e.client, WithColdListing(len(refs)+1, 50)), NewDirectory(e.client, WithColdListing(1, 50))} {
		res := d.ResolveUsers(ctx, refs)
		if len(res.Errors) != 0 {
			t.Fatalf("%s: errors %v", res.Strategy, res.Errors)
		}
		out[res.Strategy] = res
		// A second resolution answers from what the first one cached: the same.
		if again := d.ResolveUsers(ctx, refs); len(again.Users) != len(res.Users) || len(again.Missing) != len(res.Missing) {
			t.Fatalf("%s: second resolution found %d users, %d missing; first %d, %d", res.Strategy, len(again.Users), len(again.Missing), len(res.Users), len(res.Missing))
		}
	}
	if _, ok := out[StrategyLookup]; !ok {
		t.Fatalf("no lookup resolution: %v", out)
	}
	if _, ok := out[StrategyList]; !ok {
		t.Fatalf("no listing resolution: %v", out)
	}
	return out
}

func TestUserNameDifferingInCaseIsNotLinked(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	// Provisioned by another tool, without externalId, under a lower-case userName.
	e.srv.AddUser("ann@example.com", "")
	ann := UserRef{ID: "00uANN", Login: "Ann@example.com"}
	for strategy, res := range resolveBoth(t, e, []UserRef{ann}) {
		if u, ok := res.Users[ann.ID]; ok {
			t.Fatalf("%s: Okta login %q linked to SCIM user %q", strategy, ann.Login, u.UserName)
		}
		if len(res.Missing) != 1 || res.Missing[0] != ann {
			t.Fatalf("%s: missing %v, want %v (not provisioned: retried, then dead-lettered with that reason)", strategy, res.Missing, ann)
		}
	}
	// The emulator's filter did answer with ann@example.com: the Directory refused it.
	if _, err := e.client.FindUserByUserName(context.Background(), ann.Login); err != nil {
		t.Fatalf("the emulator's userName filter is meant to ignore case: %v", err)
	}
}

func TestUserNameExactMatchLinks(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	id := e.srv.AddUser("Ann@example.com", "")
	ann := UserRef{ID: "00uANN", Login: "Ann@example.com"}
	for strategy, res := range resolveBoth(t, e, []UserRef{ann}) {
		if res.Users[ann.ID].ID != id || len(res.Missing) != 0 {
			t.Fatalf("%s: users %v, missing %v; want %s linked", strategy, res.Users, res.Missing, id)
		}
	}
}

// Two SCIM users whose userNames differ only in case (AWS does not say it forbids them): each
// Okta login is linked to its own user or to none, never to the other one.
func TestUserNamesDifferingInCaseAreNeverSwapped(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	lower := e.srv.AddUser("ann@example.com", "")
	upper := e.srv.AddUser("Ann@example.com", "")
	okta := []UserRef{{ID: "00uLOWER", Login: "ann@example.com"}, {ID: "00uUPPER", Login: "Ann@example.com"}}
	want := map[string]string{"00uLOWER": lower, "00uUPPER": upper}
	for strategy, res := range resolveBoth(t, e, okta) {
		for _, r := range okta {
			u, ok := res.Users[r.ID]
			if ok && u.ID != want[r.ID] {
				t.Fatalf("%s: %q linked to SCIM user %q (%s)", strategy, r.Login, u.UserName, u.ID)
			}
			// A listing sees every user under its own userName and links both. A lookup gets the
			// filter's first answer (the client reads one); when that is the other case variant,
			// the user stays unlinked, which is safe.
			if !ok && strategy == StrategyList {
				t.Fatalf("listing did not link %q", r.Login)
			}
		}
	}
}

// The cache is keyed by the exact userName: a user learned from a group listing under
// "ann@example.com" is not served for the login "Ann@example.com".
func TestCacheKeyIsTheExactUserName(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := NewDirectory(e.client)
	d.Remember(scim.User{ID: "scim-ann", UserName: "ann@example.com"})
	res := d.ResolveUsers(context.Background(), []UserRef{{ID: "00uANN", Login: "Ann@example.com"}})
	if _, ok := res.Users["00uANN"]; ok || res.Strategy == StrategyCache {
		t.Fatalf("served from the cache: %+v", res)
	}
	res = d.ResolveUsers(context.Background(), []UserRef{{ID: "00uOTHER", Login: "ann@example.com"}})
	if res.Users["00uOTHER"].ID != "scim-ann" || res.Strategy != StrategyCache {
		t.Fatalf("exact login not served from the cache: %+v", res)
	}
}

// nearExternalID answers the externalId filter with a user whose externalId differs in case, as a
// case-insensitive AWS filter would (Okta user ids are case-sensitive: 00uAbC and 00uabc are two
// users).
type nearExternalID struct {
	SCIM
}

func (n nearExternalID) FindUserByExternalID(context.Context, string) (scim.User, error) {
	return scim.User{ID: "scim-other", UserName: "other@example.com", ExternalID: "00uabc"}, nil
}

func TestExternalIDDifferingInCaseIsNotLinked(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := NewDirectory(nearExternalID{e.client})
	ref := UserRef{ID: "00uAbC", Login: "abc@example.com"}
	res := d.ResolveUsers(context.Background(), []UserRef{ref})
	if u, ok := res.Users[ref.ID]; ok {
		t.Fatalf("Okta user %s linked to SCIM user with externalId %s", ref.ID, u.ExternalID)
	}
	if len(res.Missing) != 1 || len(res.Errors) != 0 {
		t.Fatalf("missing %v, errors %v; want the user not provisioned", res.Missing, res.Errors)
	}
}
