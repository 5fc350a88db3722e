package scim

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// The groups of one user, with the members.value filter AWS documents, every page followed.
func TestListUserGroups(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, scimtest.Options{}, WithPageSize(40))
	uid := f.seedUsers(2)
	var want []string
	for i := range 90 {
		g := f.srv.AddGroup("AWS_G"+string(rune('A'+i/26))+string(rune('a'+i%26)), "00g"+string(rune('A'+i%26)))
		if i%3 != 0 {
			f.srv.AddMember(g, uid[0])
			want = append(want, g)
		} else {
			f.srv.AddMember(g, uid[1])
		}
	}
	groups, err := f.c.ListUserGroups(ctx, uid[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		got = append(got, g.ID)
		if g.DisplayName == "" || g.ExternalID == "" {
			t.Errorf("group %+v lacks its name or externalId", g)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	if n := f.c.Stats().Requests[OpListUserGroups]; n != 2 {
		t.Errorf("%d requests for 60 groups at 40 per page, want 2", n)
	}
	// A user in no group has none; a user AWS does not know is a 404 (ErrNotFound).
	none := f.srv.AddUser("nobody@example.com", "")
	if gs, err := f.c.ListUserGroups(ctx, none); err != nil || len(gs) != 0 {
		t.Errorf("user in no group: %v %v", gs, err)
	}
	if _, err := f.c.ListUserGroups(ctx, "no-such-user"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if _, err := f.c.ListUserGroups(ctx, ""); err == nil {
		t.Error("empty user id accepted")
	}
}

// The request as AWS documents it: filter members.value eq "<id>", JSON-quoted, cursor paging.
func TestListUserGroupsWire(t *testing.T) {
	srv := scimtest.New(scimtest.Options{Token: "test-token"})
	uid := srv.AddUser(`o"brien@example.com`, "00uOB")
	srv.AddMember(srv.AddGroup("AWS_A", ""), uid)
	var mu sync.Mutex
	var queries []url.Values
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	c, err := New(ts.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return "test-token", nil }, WithAdaptiveRate(false))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := c.ListUserGroups(context.Background(), uid)
	if err != nil || len(groups) != 1 || groups[0].DisplayName != "AWS_A" {
		t.Fatalf("groups %+v, err %v", groups, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 1 {
		t.Fatalf("%d requests", len(queries))
	}
	q := queries[0]
	if got := q.Get("filter"); got != `members.value eq "`+uid+`"` {
		t.Errorf("filter %q", got)
	}
	if !q.Has("cursor") || q.Get("count") != "100" {
		t.Errorf("query %v: want count=100 and a bare cursor", q)
	}
	if strings.Contains(q.Get("filter"), "brien") {
		t.Error("the filter names the userName, not the SCIM id")
	}
}
