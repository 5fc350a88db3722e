package scim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// inProcess serves requests with an http.Handler in the same goroutine: the client's real
// request building and the emulator's real parsing, without a socket per fuzz iteration.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// sampleFilterValues returns the logins, ids and group names in the events/ delivery samples:
// the values the sync really puts into filters.
func sampleFilterValues(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no samples in events/: %v", err)
	}
	slices.Sort(files)
	seen := map[string]bool{}
	var out []string
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		var req struct {
			Body            string `json:"body"`
			IsBase64Encoded bool   `json:"isBase64Encoded"`
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
		}
		if len(body) > 64<<10 {
			continue // the oversized sample: 1,600 more values of the same shapes
		}
		var env struct {
			Data struct {
				Events []struct {
					Target []struct{ ID, AlternateID, DisplayName string }
				}
			}
		}
		if json.Unmarshal(body, &env) != nil {
			continue // the malformed sample
		}
		for _, ev := range env.Data.Events {
			for _, tg := range ev.Target {
				for _, v := range []string{tg.ID, tg.AlternateID, tg.DisplayName} {
					if v != "" && !seen[v] {
						seen[v] = true
						out = append(out, v)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		tb.Fatal("no target values in the samples")
	}
	return out
}

var filterAttrs = []string{"userName", "externalId", "displayName", "id", "members", "groups.value"}

// FuzzFilterQuote: eqFilter quotes any value as exactly one JSON string literal (no unescaped
// quote, no raw control character) that json.Unmarshal turns back into the value (invalid UTF-8
// becomes U+FFFD per byte, as encoding/json does); the query encoding round-trips; and through
// the emulator's own filter parser, over HTTP, every lookup finds exactly the resource named by
// the value and never a decoy.
func FuzzFilterQuote(f *testing.F) {
	for _, v := range sampleFilterValues(f) {
		f.Add(v)
	}
	for _, v := range []string{
		`o"brien@example.com`, `back\slash`, `\`, `"`, `""`, `\"`, `\\"`, `a" and id eq "b`, `a" or userName eq "b`,
		"x\u2028y\u2029", "\x00\x01\x1f\x7f", "\t\r\n", "<&>", "zoë@example.com", "日本語", "\U0001F600",
		"\xff", "a\xc3", "\ufffd", "\ufeff", " ", "  lead and trail  ", "%22", "+", "a&filter=x", "#frag",
		strings.Repeat("a", 4096),
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want := string([]rune(v)) // what encoding/json makes of invalid UTF-8
		for _, attr := range filterAttrs {
			filter := eqFilter(attr, v)
			lit, ok := strings.CutPrefix(filter, attr+" eq ")
			if !ok {
				t.Fatalf("filter %q does not start with %q", filter, attr+" eq ")
			}
			if end := literalEnd(lit); end != len(lit) {
				t.Fatalf("value %q: literal %q ends at %d of %d (unescaped quote)", v, lit, end, len(lit))
			}
			for i := 0; i < len(lit); i++ {
				if lit[i] < 0x20 {
					t.Fatalf("value %q: raw control byte %#x in %q", v, lit[i], lit)
				}
			}
			if !utf8.ValidString(lit) {
				t.Fatalf("value %q: literal %q is not valid UTF-8", v, lit)
			}
			var got string
			if err := json.Unmarshal([]byte(lit), &got); err != nil || got != want {
				t.Fatalf("value %q: literal %q unquotes to %q (%v)", v, lit, got, err)
			}
			q, err := url.ParseQuery(filterQuery(filter))
			if err != nil || q.Get("filter") != filter || len(q) != 1 {
				t.Fatalf("query %q does not round-trip %q (%v)", filterQuery(filter), filter, err)
			}
		}
		if v == "" || !utf8.ValidString(v) {
			return // no such userName can exist (Okta sends JSON, always UTF-8), and AWS refuses ""
		}
		lookupThroughEmulator(t, v)
	})
}

// literalEnd returns the index just past the JSON string literal at the start of s, or -1.
func literalEnd(s string) int {
	if !strings.HasPrefix(s, `"`) {
		return -1
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// lookupThroughEmulator seeds a user and a group named v, plus decoys whose names differ from v
// by a quote, a backslash or a suffix, and checks that every filtered lookup finds the right one.
func lookupThroughEmulator(t *testing.T, v string) {
	t.Helper()
	srv := scimtest.New(scimtest.Options{Token: "fuzz-token"})
	c, err := New("http://scim.invalid"+srv.BasePath(),
		func(context.Context, bool) (string, error) { return "fuzz-token", nil },
		WithHTTPClient(&http.Client{Transport: inProcess{srv}}), WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	userID := srv.AddUser(v, v)
	groupID := srv.AddGroup(v, "ext-"+v)
	srv.AddMember(groupID, userID)
	for _, d := range []string{v + `"`, `"` + v, v + `\`, v + " ", v + "x", `\` + v} {
		if _, taken := srv.UserID(d); !taken {
			did := srv.AddUser(d, d)
			gid := srv.AddGroup(d, "ext-"+d)
			srv.AddMember(gid, did)
		}
	}
	ctx := context.Background()

	u, err := c.FindUserByUserName(ctx, v)
	if err != nil || u.ID != userID || u.UserName != v {
		t.Fatalf("FindUserByUserName(%q) = %+v, %v; want id %s", v, u, err, userID)
	}
	u, err = c.FindUserByExternalID(ctx, v)
	if err != nil || u.ID != userID {
		t.Fatalf("FindUserByExternalID(%q) = %+v, %v; want id %s", v, u, err, userID)
	}
	g, err := c.FindGroupByDisplayName(ctx, v)
	if err != nil || g.ID != groupID || g.DisplayName != v {
		t.Fatalf("FindGroupByDisplayName(%q) = %+v, %v; want id %s", v, g, err, groupID)
	}
	members, err := c.ListGroupMembers(ctx, groupID)
	if err != nil || len(members) != 1 || members[0].ID != userID {
		t.Fatalf("ListGroupMembers = %+v, %v", members, err)
	}
	if in, err := c.IsMember(ctx, groupID, userID); err != nil || !in {
		t.Fatalf("IsMember = %v, %v", in, err)
	}
	// v as a group or user id: nothing has that id, so nothing may match, whatever v contains.
	if in, err := c.IsMember(ctx, v, userID); err != nil || in {
		t.Fatalf("IsMember(%q, user) = %v, %v", v, in, err)
	}
	if in, err := c.IsMember(ctx, groupID, v); err != nil || in {
		t.Fatalf("IsMember(group, %q) = %v, %v", v, in, err)
	}
	if ms, err := c.ListGroupMembers(ctx, v); err != nil || len(ms) != 0 {
		t.Fatalf("ListGroupMembers(%q) = %+v, %v", v, ms, err)
	}
}
