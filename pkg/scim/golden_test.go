package scim

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files from the current client")

// wireLog records requests as they arrive at the server: request target exactly as sent
// (path and raw query), the content headers, and the body.
type wireLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *wireLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		l.mu.Lock()
		fmt.Fprintf(&l.buf, "%s %s\nAccept: %s\n", r.Method, r.RequestURI, r.Header.Get("Accept"))
		if ct := r.Header.Get("Content-Type"); ct != "" {
			fmt.Fprintf(&l.buf, "Content-Type: %s\n", ct)
		}
		if len(body) > 0 {
			fmt.Fprintf(&l.buf, "%s\n", body)
		}
		l.buf.WriteString("\n")
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// goldenCase seeds an emulator and calls the client; the requests it sends are compared with
// testdata/golden/<name>.txt. Seeding is deterministic (fixed seed), so ids are stable.
type goldenCase struct {
	name string
	opts []Option
	run  func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client)
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestGoldenRequests(t *testing.T) {
	users := func(srv *scimtest.Server, n int) []string {
		ids := make([]string, n)
		for i := range n {
			ids[i] = srv.AddUser(fmt.Sprintf("user%03d@example.com", i), fmt.Sprintf("00u%03d", i))
		}
		return ids
	}
	cases := []goldenCase{
		{name: "get_user", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			must[User](t)(c.GetUser(ctx, users(srv, 1)[0]))
		}},
		{name: "find_user_quoting", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			for _, n := range []string{`o"brien@example.com`, `back\slash@example.com`, "zoë@example.com", "a+b&c=d <x>@example.com"} {
				srv.AddUser(n, "")
				must[User](t)(c.FindUserByUserName(ctx, n))
			}
			srv.AddUser("ext", `00u"1\`)
			must[User](t)(c.FindUserByExternalID(ctx, `00u"1\`))
		}},
		{name: "list_users_paged", opts: []Option{WithPageSize(2)}, run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			users(srv, 3)
			noErr(t, c.ListUsers(ctx, func([]User) error { return nil }))
		}},
		{name: "list_group_members_paged", opts: []Option{WithPageSize(2)}, run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			ids := users(srv, 5)
			g := srv.AddGroup("AWS_Team", "")
			for _, id := range ids {
				srv.AddMember(g, id)
			}
			if ms := must[[]User](t)(c.ListGroupMembers(ctx, g)); len(ms) != 5 {
				t.Errorf("%d members", len(ms))
			}
		}},
		{name: "list_groups_paged", opts: []Option{WithPageSize(2)}, run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			srv.AddGroup("AWS_A", "")
			srv.AddGroup("AWS_B", "")
			srv.AddGroup("AWS_C", "")
			noErr(t, c.ListGroups(ctx, func([]Group) error { return nil }))
		}},
		{name: "find_get_delete_group", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			id := srv.AddGroup(`AWS_Ops & "Dev" <1>`, "00g1")
			must[Group](t)(c.FindGroupByDisplayName(ctx, `AWS_Ops & "Dev" <1>`))
			must[Group](t)(c.GetGroup(ctx, id))
			noErr(t, c.DeleteGroup(ctx, id))
		}},
		{name: "is_member", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			u := users(srv, 1)[0]
			g := srv.AddGroup("AWS_X", "")
			srv.AddMember(g, u)
			if !must[bool](t)(c.IsMember(ctx, g, u)) {
				t.Error("not a member")
			}
		}},
		{name: "create_group_102_members", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			must[Group](t)(c.CreateGroup(ctx, Group{DisplayName: "AWS_New", ExternalID: "00gNEW"}, users(srv, 102)))
		}},
		{name: "create_group_empty", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			must[Group](t)(c.CreateGroup(ctx, Group{DisplayName: "AWS_Empty"}, nil))
		}},
		{name: "add_members_150", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			ids := users(srv, 150)
			must[[]string](t)(c.AddMembers(ctx, srv.AddGroup("AWS_G", ""), ids))
		}},
		{name: "remove_members", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			ids := users(srv, 3)
			g := srv.AddGroup("AWS_G", "")
			for _, id := range ids {
				srv.AddMember(g, id)
			}
			must[[]string](t)(c.RemoveMembers(ctx, g, ids[:2]))
			must[[]string](t)(c.RemoveMembers(ctx, g, nil)) // sends nothing
		}},
		{name: "rename_group", run: func(t *testing.T, ctx context.Context, srv *scimtest.Server, c *Client) {
			noErr(t, c.RenameGroup(ctx, srv.AddGroup("AWS_Old", ""), `AWS_New "quoted"`))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := scimtest.New(scimtest.Options{Seed: 1, BasePath: "/d-9067729b3d/scim/v2", Token: "golden-token"})
			var wl wireLog
			ts := httptest.NewServer(wl.wrap(srv))
			defer ts.Close()
			opts := append([]Option{fastRetry, WithRandSeed(1)}, tc.opts...)
			c, err := New(ts.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return "golden-token", nil }, opts...)
			if err != nil {
				t.Fatal(err)
			}
			tc.run(t, context.Background(), srv, c)
			compareGolden(t, filepath.Join("testdata", "golden", tc.name+".txt"), wl.buf.Bytes())
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenRequests -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s", path, i+1, g, w)
		}
	}
}
