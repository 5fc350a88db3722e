package oktatest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
)

func TestUserGroupsRoute(t *testing.T) {
	s := oktatest.New(oktatest.Options{Everyone: true})
	uid := s.AddUser("ann@example.com")
	var mine []string
	for i := range 250 {
		gid := s.AddGroup(fmt.Sprintf("AWS_%03d", i))
		if i%2 == 0 {
			if err := s.AddMember(gid, uid); err != nil {
				t.Fatal(err)
			}
			mine = append(mine, gid)
		}
	}
	if err := s.SetUserStatus(uid, "DEPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	c := start(t, s)

	// Okta's default and maximum page is 200; the Everyone group counts.
	path := "/api/v1/users/" + uid + "/groups?limit=500"
	var got []string
	var sizes []int
	for path != "" {
		var page []struct {
			ID, Type string
			Profile  struct{ Name string }
		}
		resp := c.get(path, &page)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		sizes = append(sizes, len(page))
		for _, g := range page {
			got = append(got, g.ID)
		}
		path = ""
		if next := links(t, resp)["next"]; next != "" {
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			path = u.RequestURI()
		}
	}
	if fmt.Sprint(sizes) != "[126]" {
		t.Fatalf("page sizes %v, want one page of 126 (125 groups and Everyone)", sizes)
	}
	if len(got) != len(mine)+1 {
		t.Fatalf("%d groups, want %d", len(got), len(mine)+1)
	}

	var big []struct{ ID string }
	for i := range 300 {
		if err := s.AddMember(s.AddGroup(fmt.Sprintf("AWS_More%03d", i)), uid); err != nil {
			t.Fatal(err)
		}
	}
	resp := c.get("/api/v1/users/"+uid+"/groups", &big)
	if len(big) != 200 || links(t, resp)["next"] == "" {
		t.Fatalf("default page: %d groups, next %q; want 200 and a next link", len(big), links(t, resp)["next"])
	}

	var e apiError
	if resp := c.get("/api/v1/users/00uNope/groups", &e); resp.StatusCode != http.StatusNotFound || e.ErrorCode != "E0000007" {
		t.Fatalf("unknown user: %d %+v", resp.StatusCode, e)
	}
	s.FailUserGroups(uid, 500, 1)
	if resp := c.get("/api/v1/users/"+uid+"/groups", &e); resp.StatusCode != 500 {
		t.Fatalf("injected fault: %d", resp.StatusCode)
	}
	if st := s.Stats(); st.UserGroups != 2 || s.GroupRequests(uid) != 3 {
		t.Fatalf("stats %+v, requests naming the user %d", st, s.GroupRequests(uid))
	}
}
