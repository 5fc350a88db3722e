package okta_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
)

// A user in 450 groups: three pages of Okta's default 200 (the SDK's ListUserGroups sends no
// limit), every group once, names included; a deactivated user's memberships are still listed.
func TestUserGroupsPaging(t *testing.T) {
	s, base := newFake(t)
	uid := s.AddUser("ann@example.com")
	other := s.AddUser("bob@example.com")
	want := map[string]string{}
	for i := range 450 {
		name := fmt.Sprintf("AWS_G%03d", i)
		gid := s.AddGroup(name)
		if err := s.AddMember(gid, uid); err != nil {
			t.Fatal(err)
		}
		want[gid] = name
	}
	if err := s.AddMember(s.AddGroup("AWS_OnlyBob"), other); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserStatus(uid, "DEPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	r := newReader(t, base)

	groups, err := r.UserGroups(ctx(t), uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(want) {
		t.Fatalf("got %d groups, want %d", len(groups), len(want))
	}
	for _, g := range groups {
		if want[g.ID] != g.Name {
			t.Fatalf("group %+v not one of the user's", g)
		}
	}
	if got := r.Requests(); got != 3 {
		t.Fatalf("Requests() = %d, want 3", got)
	}
	log := s.RequestLog()
	if len(log) != 3 || log[0].Path != "/api/v1/users/"+uid+"/groups" || strings.Contains(log[0].RawQuery, "after=") || !strings.Contains(log[2].RawQuery, "after=") {
		t.Fatalf("request log %+v", log)
	}
	if st := s.Stats(); st.UserGroups != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUserGroupsNotFoundAndErrors(t *testing.T) {
	s, base := newFake(t)
	uid := s.AddUser("ann@example.com")
	r := newReader(t, base)

	_, err := r.UserGroups(ctx(t), "00uNoSuchUser0000000")
	re := asReadError(t, err)
	if !errors.Is(err, okta.ErrNotFound) || re.UserID != "00uNoSuchUser0000000" || re.GroupID != "" || re.Op != "list user groups" {
		t.Fatalf("unknown user: %+v", re)
	}
	if !strings.Contains(err.Error(), "okta list user groups 00uNoSuchUser0000000: HTTP 404") {
		t.Fatalf("error text %q", err)
	}

	s.FailUserGroups(uid, 503, 1)
	if _, err := r.UserGroups(ctx(t), uid); asReadError(t, err).Status != 503 || errors.Is(err, okta.ErrNotFound) {
		t.Fatalf("503: %v", err)
	}
	groups, err := r.UserGroups(ctx(t), uid)
	if err != nil || len(groups) != 0 {
		t.Fatalf("after the fault: %v, %v", groups, err)
	}
	if _, err := r.UserGroups(ctx(t), ""); err == nil {
		t.Fatal("empty user id accepted")
	}
}

// 429s are retried by the SDK with the Reader's settings, as for the other reads.
func TestUserGroupsRetries429(t *testing.T) {
	s, base := newFake(t)
	uid := s.AddUser("ann@example.com")
	if err := s.AddMember(s.AddGroup("AWS_A"), uid); err != nil {
		t.Fatal(err)
	}
	s.Inject(oktatest.Fault{Route: oktatest.RouteUserGroups, GroupID: uid, Status: 429, Times: 1, ResetIn: -1e9})
	r := newReader(t, base)
	groups, err := r.UserGroups(ctx(t), uid)
	if err != nil || len(groups) != 1 || groups[0].Name != "AWS_A" {
		t.Fatalf("groups %+v, err %v", groups, err)
	}
	if r.Requests() != 2 {
		t.Fatalf("Requests() = %d, want 2 (one 429, one retry)", r.Requests())
	}
}
