package scimapply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// env is a SCIM emulator with a real client in front of it.
type env struct {
	srv    *scimtest.Server
	client *scim.Client
	logs   *bytes.Buffer
	log    *slog.Logger
	met    *fakeMetrics
}

func newEnv(t *testing.T, opts scimtest.Options) *env {
	t.Helper()
	srv := scimtest.New(opts)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := scim.New(hs.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil },
		scim.WithBackoff(time.Millisecond, 5*time.Millisecond), scim.WithRandSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	return &env{srv: srv, client: c, logs: &buf, log: telemetry.NewLogger(&syncWriter{w: &buf}, slog.LevelDebug), met: &fakeMetrics{}}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type fakeMetrics struct {
	mu     sync.Mutex
	counts map[string]float64
	values map[string][]float64
}

func (f *fakeMetrics) Count(name string, n float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]float64{}
	}
	f.counts[name] += n
}

func (f *fakeMetrics) Value(name string, v float64, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.values == nil {
		f.values = map[string][]float64{}
	}
	f.values[name] = append(f.values[name], v)
}

// seedUsers adds n users "user<i>@example.com" with externalId "00u<i>" and returns their refs.
func (e *env) seedUsers(n int) []UserRef {
	refs := make([]UserRef, n)
	for i := range n {
		refs[i] = UserRef{ID: fmt.Sprintf("00u%05d", i), Login: fmt.Sprintf("user%05d@example.com", i)}
		e.srv.AddUser(refs[i].Login, refs[i].ID)
	}
	return refs
}

func (e *env) requests() int { return e.srv.TotalRequests() }

func TestResolveFewUsersLooksThemUp(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(50)
	// Provisioned by another tool: no externalId, userName is the Okta login.
	e.srv.AddUser("legacy@example.com", "")
	// Okta login renamed since provisioning: only externalId still links it.
	e.srv.AddUser("old-name@example.com", "00uRENAMED")
	d := NewDirectory(e.client)

	ask := []UserRef{refs[3], {ID: "00uLEGACY", Login: "legacy@example.com"}, {ID: "00uRENAMED", Login: "new-name@example.com"}, {ID: "00uNOBODY", Login: "nobody@example.com"}}
	res := d.ResolveUsers(ctx, ask)
	if res.Strategy != StrategyLookup {
		t.Fatalf("strategy %s, want lookup for 4 unknown users of a cold directory", res.Strategy)
	}
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	want := map[string]string{refs[3].ID: refs[3].Login, "00uLEGACY": "legacy@example.com", "00uRENAMED": "old-name@example.com"}
	if len(res.Users) != len(want) {
		t.Fatalf("found %d users, want %d", len(res.Users), len(want))
	}
	for id, name := range want {
		if res.Users[id].UserName != name {
			t.Fatalf("user %s resolved to %+v, want userName %s", id, res.Users[id], name)
		}
	}
	if len(res.Missing) != 1 || res.Missing[0].ID != "00uNOBODY" {
		t.Fatalf("missing %v, want 00uNOBODY", res.Missing)
	}
	// externalId hit: 1; userName fallback: 2; renamed login: 1; nobody: 2.
	if res.Requests != 6 || e.requests() != 6 {
		t.Fatalf("requests %d (server saw %d), want 6", res.Requests, e.requests())
	}

	// Warm: the same users cost nothing; the missing one is asked again (it may be provisioned now).
	e.srv.ResetCounters()
	res = d.ResolveUsers(ctx, ask[:3])
	if res.Strategy != StrategyCache || e.requests() != 0 || len(res.Users) != 3 {
		t.Fatalf("warm: strategy %s, %d requests, %d users", res.Strategy, e.requests(), len(res.Users))
	}
	e.srv.AddUser("nobody@example.com", "00uNOBODY")
	res = d.ResolveUsers(ctx, ask[3:])
	if len(res.Users) != 1 || e.requests() != 1 {
		t.Fatalf("newly provisioned user: %d users after %d requests", len(res.Users), e.requests())
	}
}

func TestResolveManyUsersListsOnceThenServesFromCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{UnevenPages: false})
	refs := e.seedUsers(450)
	d := NewDirectory(e.client)

	ask := append(slices.Clone(refs[:250]), UserRef{ID: "00uGHOST", Login: "ghost@example.com"})
	res := d.ResolveUsers(ctx, ask)
	if res.Strategy != StrategyList {
		t.Fatalf("strategy %s, want list", res.Strategy)
	}
	if len(res.Users) != 250 || len(res.Missing) != 1 || res.Missing[0].ID != "00uGHOST" {
		t.Fatalf("found %d, missing %v", len(res.Users), res.Missing)
	}
	if got := e.srv.Count("GET /Users"); got != 5 || res.Requests != 5 {
		t.Fatalf("listing took %d requests (reported %d), want 5 pages for 450 users", got, res.Requests)
	}
	st := d.Stats()
	if !st.CompleteIndex || st.KnownSize != 450 || st.CachedUsers != 450 {
		t.Fatalf("stats %+v", st)
	}

	// The rest of the directory is now warm too.
	e.srv.ResetCounters()
	res = d.ResolveUsers(ctx, refs[250:])
	if res.Strategy != StrategyCache || e.requests() != 0 {
		t.Fatalf("warm: strategy %s after %d requests", res.Strategy, e.requests())
	}
	// Few unknown users in a directory of known size are looked up, not listed again.
	res = d.ResolveUsers(ctx, []UserRef{{ID: "00uGHOST", Login: "ghost@example.com"}})
	if res.Strategy != StrategyLookup || len(res.Missing) != 1 {
		t.Fatalf("strategy %s, missing %v", res.Strategy, res.Missing)
	}
	// Many new users (more than the directory's pages) are listed again.
	var fresh []UserRef
	for i := range 20 {
		r := UserRef{ID: fmt.Sprintf("00uNEW%02d", i), Login: fmt.Sprintf("new%02d@example.com", i)}
		e.srv.AddUser(r.Login, r.ID)
		fresh = append(fresh, r)
	}
	res = d.ResolveUsers(ctx, fresh)
	if res.Strategy != StrategyList || len(res.Users) != 20 {
		t.Fatalf("strategy %s, %d found", res.Strategy, len(res.Users))
	}
}

func TestResolveColdListingStopsAtBudget(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(2000)
	d := NewDirectory(e.client, WithColdListing(8, 3))
	// budget max(10 unknown, 3) = 10 pages: the first 1000 users are indexed, the rest looked up.
	ask := []UserRef{refs[0], refs[1], refs[2], refs[3], refs[1990], refs[1991], refs[1992], refs[1993], refs[1994], refs[1995]}
	res := d.ResolveUsers(ctx, ask)
	if res.Strategy != StrategyListLookup {
		t.Fatalf("strategy %s, want list+lookup", res.Strategy)
	}
	if len(res.Users) != 10 || len(res.Missing) != 0 {
		t.Fatalf("found %d, missing %v", len(res.Users), res.Missing)
	}
	if res.Requests != 16 || e.requests() != 16 {
		t.Fatalf("%d requests (server %d), want 10 pages + 6 lookups", res.Requests, e.requests())
	}
	if st := d.Stats(); st.CompleteIndex || st.KnownSize != 1000 {
		t.Fatalf("stats %+v: want a partial index of 1000 users", st)
	}
}

func TestResolveStopsOnUnauthorized(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(6)
	e.srv.ExpireToken(true)
	d := NewDirectory(e.client, WithLookupConcurrency(1))
	res := d.ResolveUsers(ctx, refs)
	if len(res.Errors) != 6 {
		t.Fatalf("errors %v, want all 6 users failed", res.Errors)
	}
	for _, err := range res.Errors {
		if !errors.Is(err, scim.ErrUnauthorized) {
			t.Fatalf("error %v, want ErrUnauthorized", err)
		}
	}
	// One lookup, re-sent once after the token refresh; the others are not tried.
	if n := e.srv.Unauthorized(); n > 2 {
		t.Fatalf("%d requests with a rejected token, want at most 2", n)
	}
}

func TestGroupResolution(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	existing := e.srv.AddGroup(`AWS_Admins "prod" ✓`, "")
	e.srv.AddGroup("Other", "")
	d := NewDirectory(e.client, WithSelection(func(n string) bool { return strings.HasPrefix(n, "AWS_") }))

	g, created, err := d.Group(ctx, GroupRef{ID: "00gA", Name: `AWS_Admins "prod" ✓`}, true)
	if err != nil || created || g.ID != existing {
		t.Fatalf("existing group: %+v created=%v err=%v", g, created, err)
	}
	g, created, err = d.Group(ctx, GroupRef{ID: "00gB", Name: "AWS_New"}, true)
	if err != nil || !created || g.ExternalID != "00gB" || g.DisplayName != "AWS_New" {
		t.Fatalf("created group: %+v created=%v err=%v", g, created, err)
	}
	if _, _, err = d.Group(ctx, GroupRef{ID: "00gC", Name: "AWS_Missing"}, false); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("create disabled: err %v, want ErrGroupNotFound", err)
	}
	if _, _, err = d.Group(ctx, GroupRef{ID: "00gD", Name: "Other"}, true); !errors.Is(err, ErrNotSelected) {
		t.Fatalf("unselected: err %v, want ErrNotSelected", err)
	}
	e.srv.ResetCounters()
	// Cached by Okta id: whatever name the (older) event carried, the group is the adopted one,
	// re-read once (what AWS holds now decides the selection), or not at all when read this epoch.
	g, _, err = d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins_old_name"}, true)
	if err != nil || g.ID != existing || g.ExternalID != "00gA" || e.requests() != 1 {
		t.Fatalf("cached group: %+v err=%v after %d requests, want one GetGroup", g, err, e.requests())
	}
	e.srv.ResetCounters()
	res, err := d.Resolve(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins_old_name"}, GroupQuery{FreshSince: time.Now().Add(-time.Minute)})
	if err != nil || res.Group.ID != existing || e.requests() != 0 {
		t.Fatalf("fresh cached group: %+v err=%v after %d requests, want none", res, err, e.requests())
	}
	if _, ok := e.srv.GroupID("AWS_Admins_old_name"); ok {
		t.Fatal("a group was created for an old name")
	}
}

func members(prefix string, refs []UserRef, srv *scimtest.Server) []Member {
	out := make([]Member, len(refs))
	for i, r := range refs {
		id, _ := srv.UserID(r.Login)
		out[i] = Member{SCIMID: id, UserID: r.ID, Login: r.Login, EventUUID: prefix + r.ID, Published: time.Now().Add(-time.Second)}
	}
	return out
}

func auditLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "audit" {
			out = append(out, m)
		}
	}
	return out
}

func TestApplyChunksAndAudits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(260)
	gid := e.srv.AddGroup("AWS_Big", "00gBig")
	for _, r := range refs[250:] {
		id, _ := e.srv.UserID(r.Login)
		e.srv.AddMember(gid, id)
	}
	a := NewApplier(e.client, nil, e.log, e.met)
	tgt := Target{Okta: GroupRef{ID: "00gBig", Name: "AWS_Big"}, SCIM: scim.Group{ID: gid, DisplayName: "AWS_Big"}}
	res := a.Apply(ctx, tgt, Plan{Adds: members("ev-", refs[:250], e.srv), Removes: members("ev-", refs[250:], e.srv)})
	if len(res) != 260 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if r.Err != nil || r.RequestID == "" {
			t.Fatalf("result %+v", r)
		}
	}
	if got := e.srv.Count("PATCH /Groups/{id}"); got != 4 {
		t.Fatalf("%d PATCHes, want 3 adds + 1 remove", got)
	}
	if e.srv.MaxPatchValues() > 100 || e.srv.EmptyRemoves() != 0 {
		t.Fatalf("max PATCH values %d, empty removes %d", e.srv.MaxPatchValues(), e.srv.EmptyRemoves())
	}
	if n := len(e.srv.Members(gid)); n != 250 {
		t.Fatalf("group has %d members, want 250", n)
	}
	audits := auditLines(t, e.logs)
	if len(audits) != 260 {
		t.Fatalf("%d audit records, want 260", len(audits))
	}
	a0 := audits[0]
	if a0["result"] != "applied" || a0["group"] != "AWS_Big" || a0["group_id"] != "00gBig" || a0["scim_request_id"] == nil || a0["event_uuid"] == "" || a0["user"] == nil {
		t.Fatalf("audit record %v", a0)
	}
	if e.met.counts["ChangesApplied"] != 260 || len(e.met.values["LagMs"]) != 260 {
		t.Fatalf("metrics %+v", e.met)
	}

	// Nothing to do sends nothing (in particular no remove without values).
	e.srv.ResetCounters()
	if res := a.Apply(ctx, tgt, Plan{}); len(res) != 0 || e.requests() != 0 {
		t.Fatalf("empty plan: %d results, %d requests", len(res), e.requests())
	}
}

func TestApplyFallsBackToSingleUsersOnRejectedChunk(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(120)
	gid := e.srv.AddGroup("AWS_G", "")
	d := NewDirectory(e.client)
	d.ResolveUsers(ctx, refs) // cache them
	a := NewApplier(e.client, d, e.log, e.met)
	adds := members("ev-", refs, e.srv)
	adds[7].SCIMID = "9067729b3d-deleted-meanwhile" // SCIM answers 400 for an unknown member
	res := a.Apply(ctx, Target{Okta: GroupRef{ID: "00gG", Name: "AWS_G"}, SCIM: scim.Group{ID: gid, DisplayName: "AWS_G"}}, Plan{Adds: adds})
	var failed []string
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Member.UserID)
		}
	}
	if len(failed) != 1 || failed[0] != refs[7].ID {
		t.Fatalf("failed %v, want only %s", failed, refs[7].ID)
	}
	if n := len(e.srv.Members(gid)); n != 119 {
		t.Fatalf("group has %d members, want 119", n)
	}
	// first chunk (100) rejected, then 100 single PATCHes, then the second chunk of 20.
	if got := e.srv.Count("PATCH /Groups/{id}"); got != 102 {
		t.Fatalf("%d PATCHes, want 102", got)
	}
	if _, ok := d.byExternal[refs[7].ID]; ok {
		t.Fatal("the rejected user is still cached")
	}
	if e.met.counts["ChangesFailed"] != 1 || e.met.counts["ChangesApplied"] != 119 {
		t.Fatalf("metrics %+v", e.met.counts)
	}
}

func TestApplyGroupDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(3)
	d := NewDirectory(e.client)
	d.SetGroup("00gX", scim.Group{ID: "9067729b3d-gone", DisplayName: "AWS_X"})
	a := NewApplier(e.client, d, e.log, e.met)
	res := a.Apply(ctx, Target{Okta: GroupRef{ID: "00gX", Name: "AWS_X"}, SCIM: scim.Group{ID: "9067729b3d-gone", DisplayName: "AWS_X"}}, Plan{Adds: members("ev-", refs, e.srv)})
	for _, r := range res {
		if !errors.Is(r.Err, ErrGroupGone) {
			t.Fatalf("result %+v, want ErrGroupGone", r)
		}
	}
	if _, ok := d.CachedGroup("00gX"); ok {
		t.Fatal("the deleted group is still cached")
	}
	if got := e.requests(); got != 2 {
		t.Fatalf("%d requests, want the PATCH and one GET", got)
	}
}

func TestApplyDryRunSendsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(5)
	gid := e.srv.AddGroup("AWS_G", "")
	a := NewApplier(e.client, nil, e.log, e.met, DryRun(true))
	e.srv.ResetCounters()
	res := a.Apply(ctx, Target{Okta: GroupRef{ID: "00gG", Name: "AWS_G"}, SCIM: scim.Group{ID: gid, DisplayName: "AWS_G"}},
		Plan{Adds: members("ev-", refs[:3], e.srv), Removes: members("ev-", refs[3:], e.srv)})
	if len(res) != 5 || e.requests() != 0 {
		t.Fatalf("%d results, %d requests", len(res), e.requests())
	}
	for _, r := range res {
		if !r.DryRun || r.Err != nil {
			t.Fatalf("result %+v", r)
		}
	}
	audits := auditLines(t, e.logs)
	if len(audits) != 5 || audits[0]["result"] != "dry_run" {
		t.Fatalf("audits %v", audits)
	}
	if !strings.Contains(e.logs.String(), "dry run") {
		t.Fatal("plan not logged")
	}
}

func TestApplyStopsOnUnauthorized(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(150)
	gid := e.srv.AddGroup("AWS_G", "")
	e.srv.ExpireToken(true)
	a := NewApplier(e.client, nil, e.log, e.met)
	res := a.Apply(ctx, Target{Okta: GroupRef{ID: "00gG", Name: "AWS_G"}, SCIM: scim.Group{ID: gid, DisplayName: "AWS_G"}},
		Plan{Adds: members("ev-", refs[:140], e.srv), Removes: members("ev-", refs[140:], e.srv)})
	for _, r := range res {
		if !errors.Is(r.Err, scim.ErrUnauthorized) {
			t.Fatalf("result %+v, want ErrUnauthorized", r)
		}
	}
	if n := e.srv.Unauthorized(); n > 2 {
		t.Fatalf("%d requests with a rejected token, want at most 2 (one re-send after refresh)", n)
	}
	if !Fatal(res[0].Err) {
		t.Fatal("401 is not fatal")
	}
}

// TestSizeHintPicksLookupsOrListing: told the directory's size, a cold directory looks a few
// users up instead of starting a listing it cannot finish cheaply, and lists when that is cheaper.
func TestSizeHintPicksLookupsOrListing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	refs := e.seedUsers(1000) // 10 pages

	// Without a hint, 9 unknown users (≥ the cold minimum of 8) start a listing of all 10 pages.
	res := NewDirectory(e.client).ResolveUsers(ctx, refs[:9])
	if res.Strategy != StrategyList || res.Requests != 10 {
		t.Fatalf("cold, no hint: %s with %d requests", res.Strategy, res.Requests)
	}

	// Hinted: 9 lookups beat 10 pages.
	d := NewDirectory(e.client)
	d.SizeHint(1000)
	d.SizeHint(10) // a smaller hint does not shrink what is known
	res = d.ResolveUsers(ctx, refs[100:109])
	if res.Strategy != StrategyLookup || res.Requests != 9 || len(res.Users) != 9 {
		t.Fatalf("hinted, 9 unknown: %s with %d requests, %d users", res.Strategy, res.Requests, len(res.Users))
	}
	// 30 unknown users: one listing (10 pages) beats 30 lookups, and it completes.
	res = d.ResolveUsers(ctx, refs[200:230])
	if res.Strategy != StrategyList || res.Requests != 10 || len(res.Users) != 30 {
		t.Fatalf("hinted, 30 unknown: %s with %d requests, %d users", res.Strategy, res.Requests, len(res.Users))
	}
	if st := d.Stats(); !st.CompleteIndex || st.KnownSize != 1000 {
		t.Fatalf("stats %+v", st)
	}
}
