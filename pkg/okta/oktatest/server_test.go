package oktatest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
)

type client struct {
	t     *testing.T
	base  string
	token string
}

func start(t *testing.T, s *oktatest.Server) *client {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &client{t: t, base: ts.URL, token: oktatest.DefaultToken}
}

// get sends a GET and decodes the JSON body into v (when non-nil).
func (c *client) get(path string, v any) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "SSWS "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			c.t.Fatalf("GET %s: decode %q: %v", path, body, err)
		}
	}
	return resp
}

var linkRE = regexp.MustCompile(`^<([^>]+)>; rel="(self|next)"$`)

// links parses Okta-style Link headers, asserting one relation per header line as Okta sends them.
func links(t *testing.T, resp *http.Response) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range resp.Header.Values("Link") {
		m := linkRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("Link header %q is not one <url>; rel=\"self|next\"", l)
		}
		out[m[2]] = m[1]
	}
	return out
}

type apiError struct {
	ErrorCode, ErrorSummary, ErrorLink, ErrorID string
	ErrorCauses                                 []any
}

func TestAuth(t *testing.T) {
	s := oktatest.New(oktatest.Options{Token: "right"})
	c := start(t, s)
	for _, tok := range []string{"", "wrong"} {
		c.token = tok
		var e apiError
		resp := c.get("/api/v1/groups", &e)
		if resp.StatusCode != http.StatusUnauthorized || e.ErrorCode != "E0000011" || e.ErrorSummary != "Invalid token provided" || e.ErrorID == "" || e.ErrorCauses == nil {
			t.Fatalf("token %q: status %d body %+v, want 401 E0000011 with errorId and errorCauses", tok, resp.StatusCode, e)
		}
	}
	// Bearer is a different scheme; the fake, like an SSWS token, accepts only SSWS.
	req, _ := http.NewRequest(http.MethodGet, c.base+"/api/v1/groups", nil)
	req.Header.Set("Authorization", "Bearer right")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Bearer: status %d, want 401", resp.StatusCode)
	}
	c.token = "right"
	if resp := c.get("/api/v1/groups", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("right token: status %d", resp.StatusCode)
	}
	if st := s.Stats(); st.Unauthorized != 3 || st.Requests != 4 || st.ListGroups != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGroupJSONShape(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	id := s.AddGroup("AWS_Admins")
	c := start(t, s)
	var g map[string]any
	resp := c.get("/api/v1/groups/"+id, &g)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, k := range []string{"id", "created", "lastUpdated", "lastMembershipUpdated", "objectClass", "type", "profile", "_links"} {
		if _, ok := g[k]; !ok {
			t.Errorf("group JSON lacks %q: %v", k, g)
		}
	}
	if g["type"] != "OKTA_GROUP" || g["id"] != id || len(id) != 20 || !strings.HasPrefix(id, "00g") {
		t.Errorf("group %v", g)
	}
	if p := g["profile"].(map[string]any); p["name"] != "AWS_Admins" {
		t.Errorf("profile %v", p)
	}
	if _, err := time.Parse(time.RFC3339, g["created"].(string)); err != nil {
		t.Errorf("created: %v", err)
	}
	users := g["_links"].(map[string]any)["users"].(map[string]any)["href"].(string)
	if users != c.base+"/api/v1/groups/"+id+"/users" {
		t.Errorf("users link %q", users)
	}

	var e apiError
	if resp := c.get("/api/v1/groups/00gnope", &e); resp.StatusCode != http.StatusNotFound || e.ErrorCode != "E0000007" {
		t.Fatalf("unknown group: %d %+v", resp.StatusCode, e)
	}
}

func TestUserJSONShape(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	gid := s.AddGroup("AWS_Dev")
	active := s.AddUser("jane.doe@example.com")
	staged := s.AddUser("bob")
	for _, u := range []string{active, staged} {
		if err := s.AddMember(gid, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUserStatus(staged, "STAGED"); err != nil {
		t.Fatal(err)
	}
	c := start(t, s)
	var users []map[string]any
	c.get("/api/v1/groups/"+gid+"/users", &users)
	if len(users) != 2 {
		t.Fatalf("got %d users", len(users))
	}
	u := users[0]
	p := u["profile"].(map[string]any)
	if u["id"] != active || u["status"] != "ACTIVE" || p["login"] != "jane.doe@example.com" || p["email"] != "jane.doe@example.com" ||
		p["firstName"] != "Jane" || p["lastName"] != "Doe" || u["activated"] == nil || u["credentials"] == nil || u["_links"] == nil {
		t.Errorf("active user %v", u)
	}
	if users[1]["status"] != "STAGED" || users[1]["activated"] != nil {
		t.Errorf("staged user %v", users[1])
	}
	if p := users[1]["profile"].(map[string]any); p["email"] != "bob@example.com" {
		t.Errorf("staged user profile %v", p)
	}
}

func TestMembersPaging(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	gid := s.AddGroup("AWS_Big")
	want := map[string]bool{}
	for i := range 450 {
		uid := s.AddUser(fmt.Sprintf("user%03d@example.com", i))
		if err := s.AddMember(gid, uid); err != nil {
			t.Fatal(err)
		}
		want[uid] = true
	}
	c := start(t, s)
	path := "/api/v1/groups/" + gid + "/users?limit=200"
	got := map[string]bool{}
	var sizes []int
	for path != "" {
		var page []struct{ ID string }
		resp := c.get(path, &page)
		sizes = append(sizes, len(page))
		for _, u := range page {
			if got[u.ID] {
				t.Fatalf("user %s on two pages", u.ID)
			}
			got[u.ID] = true
		}
		l := links(t, resp)
		if l["self"] != c.base+path {
			t.Fatalf("self link %q, want %q", l["self"], c.base+path)
		}
		path = ""
		if next := l["next"]; next != "" {
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			if u.Query().Get("limit") != "200" || u.Query().Get("after") == "" {
				t.Fatalf("next link %q lacks limit or after", next)
			}
			path = u.RequestURI()
		}
	}
	if fmt.Sprint(sizes) != "[200 200 50]" || len(got) != len(want) {
		t.Fatalf("page sizes %v, %d users, want [200 200 50] and %d", sizes, len(got), len(want))
	}
	if st := s.Stats(); st.GroupUsers != 3 || s.GroupRequests(gid) != 3 {
		t.Fatalf("stats %+v, group requests %d", st, s.GroupRequests(gid))
	}
}

func TestSearch(t *testing.T) {
	s := oktatest.New(oktatest.Options{Everyone: true})
	for i := range 5 {
		s.AddGroup(fmt.Sprintf("AWS_%d", i))
	}
	s.AddGroup("aws_lower")
	s.AddGroup("Engineering")
	s.AddGroup(`AWS_"quoted"`)
	app := s.AddGroupOfType("AWS_FromAD", oktatest.TypeAppGroup)
	c := start(t, s)
	names := func(query string) []string {
		t.Helper()
		var gs []struct{ Profile struct{ Name string } }
		resp := c.get("/api/v1/groups?"+query, &gs)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", query, resp.StatusCode)
		}
		var out []string
		for _, g := range gs {
			out = append(out, g.Profile.Name)
		}
		return out
	}
	q := func(v url.Values) string { return v.Encode() }
	if got := names(q(url.Values{"search": {`profile.name sw "AWS_"`}})); len(got) != 8 {
		t.Errorf("sw AWS_ (case-insensitive) = %v, want 8 names", got)
	}
	if got := names(q(url.Values{"search": {`profile.name sw "AWS_\"q"`}})); fmt.Sprint(got) != `[AWS_"quoted"]` {
		t.Errorf("escaped quote = %v", got)
	}
	if got := names(q(url.Values{"search": {`profile.name sw "AWS_" and type eq "APP_GROUP"`}})); fmt.Sprint(got) != "[AWS_FromAD]" {
		t.Errorf("and type = %v", got)
	}
	if got := names(q(url.Values{"filter": {`id eq "` + app + `"`}})); fmt.Sprint(got) != "[AWS_FromAD]" {
		t.Errorf("filter id = %v", got)
	}
	if got := names(""); len(got) != 10 || got[0] != "Everyone" {
		t.Errorf("list all = %v, want 10 with Everyone first", got)
	}
	for _, bad := range []string{`profile.name co "AWS"`, `profile.name sw AWS_`, `profile.name sw "AWS_" or type eq "X"`, `lastUpdated gt "2020-01-01T00:00:00.000Z"`, `profile.name sw "open`} {
		var e apiError
		resp := c.get("/api/v1/groups?"+q(url.Values{"search": {bad}}), &e)
		if resp.StatusCode != http.StatusBadRequest || e.ErrorCode != "E0000031" {
			t.Errorf("search %q: %d %+v, want 400 E0000031", bad, resp.StatusCode, e)
		}
	}
	var e apiError
	if resp := c.get("/api/v1/groups?filter="+url.QueryEscape(`profile.name sw "AWS"`), &e); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("filter on profile.name: %d, want 400 (filter supports id and type only)", resp.StatusCode)
	}
	if resp := c.get("/api/v1/groups?limit=zero", &e); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("limit=zero: %d", resp.StatusCode)
	}
}

func TestSearchPaging(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	for i := range 250 {
		s.AddGroup(fmt.Sprintf("AWS_%03d", i))
		s.AddGroup(fmt.Sprintf("Other_%03d", i))
	}
	c := start(t, s)
	search := url.QueryEscape(`profile.name sw "AWS_"`)
	var p1 []struct{ ID string }
	resp := c.get("/api/v1/groups?limit=200&search="+search, &p1)
	next := links(t, resp)["next"]
	if len(p1) != 200 || next == "" {
		t.Fatalf("page 1: %d groups, next %q", len(p1), next)
	}
	u, _ := url.Parse(next)
	if u.Query().Get("search") != `profile.name sw "AWS_"` {
		t.Fatalf("next link lost the search: %q", next)
	}
	var p2 []struct{ ID string }
	resp = c.get(u.RequestURI(), &p2)
	if len(p2) != 50 || links(t, resp)["next"] != "" {
		t.Fatalf("page 2: %d groups, links %v", len(p2), links(t, resp))
	}
}

// Okta documents that q cannot be paged and stops at 300 results by default.
func TestQIsNotPageable(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	for i := range 350 {
		s.AddGroup(fmt.Sprintf("AWS_%03d", i))
	}
	c := start(t, s)
	var gs []struct{ ID string }
	resp := c.get("/api/v1/groups?q=aws_", &gs)
	if len(gs) != 300 || links(t, resp)["next"] != "" {
		t.Fatalf("q: %d groups, links %v; want 300 and no next", len(gs), links(t, resp))
	}
	resp = c.get("/api/v1/groups?q=AWS_&limit=20", &gs)
	if len(gs) != 20 || links(t, resp)["next"] != "" {
		t.Fatalf("q with limit: %d groups, links %v", len(gs), links(t, resp))
	}
}

func TestInjected429(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	gid := s.AddGroup("AWS_X")
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: gid, Status: 429, Times: 1, ResetIn: 5 * time.Second})
	c := start(t, s)
	var e apiError
	resp := c.get("/api/v1/groups/"+gid+"/users", &e)
	if resp.StatusCode != http.StatusTooManyRequests || e.ErrorCode != "E0000047" {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Fatal(err)
	}
	reset, err := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if reset-date.Unix() != 5 || resp.Header.Get("X-Rate-Limit-Remaining") != "0" || resp.Header.Get("X-Rate-Limit-Limit") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp := c.get("/api/v1/groups/"+gid+"/users", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("second request: %d, want the fault used up", resp.StatusCode)
	}
	if st := s.Stats(); st.Throttled != 1 || st.GroupUsers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultScoping(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	a, b := s.AddGroup("AWS_A"), s.AddGroup("AWS_B")
	s.Inject(oktatest.Fault{Route: oktatest.RouteGroupUsers, GroupID: a, Status: 500, Skip: 1, Times: -1})
	s.EmptyGroupMembers(b, 1)
	u := s.AddUser("u@example.com")
	_ = s.AddMember(b, u)
	c := start(t, s)
	status := func(path string) int { return c.get(path, nil).StatusCode }
	// Skip: the first request of group A passes, then every one fails.
	if got := []int{status("/api/v1/groups/" + a + "/users"), status("/api/v1/groups/" + a + "/users"), status("/api/v1/groups/" + a + "/users")}; fmt.Sprint(got) != "[200 500 500]" {
		t.Fatalf("group A statuses %v", got)
	}
	// Other routes and groups are not affected.
	if st := status("/api/v1/groups/" + a); st != http.StatusOK {
		t.Fatalf("get group A: %d", st)
	}
	var users []any
	c.get("/api/v1/groups/"+b+"/users", &users)
	if len(users) != 0 {
		t.Fatalf("empty answer returned %d users", len(users))
	}
	c.get("/api/v1/groups/"+b+"/users", &users)
	if len(users) != 1 {
		t.Fatalf("after the empty answer: %d users, want 1", len(users))
	}
	var e apiError
	c.get("/api/v1/groups/"+a+"/users", &e)
	if e.ErrorCode != "E0000009" {
		t.Fatalf("500 body %+v", e)
	}
	s.ClearFaults()
	if st := status("/api/v1/groups/" + a + "/users"); st != http.StatusOK {
		t.Fatalf("after ClearFaults: %d", st)
	}
	s.FailRequests(503, 1)
	if st := status("/api/v1/groups"); st != http.StatusServiceUnavailable {
		t.Fatalf("FailRequests: %d", st)
	}
	if st := s.Stats(); st.Failed != 4 || st.Empty != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRateLimit(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	s.SetRateLimit(3, time.Hour)
	c := start(t, s)
	var got []int
	for range 5 {
		got = append(got, c.get("/api/v1/groups", nil).StatusCode)
	}
	if fmt.Sprint(got) != "[200 200 200 429 429]" {
		t.Fatalf("statuses %v", got)
	}
	s.SetRateLimit(0, 0)
	if st := c.get("/api/v1/groups", nil).StatusCode; st != http.StatusOK {
		t.Fatalf("after disabling: %d", st)
	}
}

func TestRenameDeleteAndUnknown(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	gid := s.AddGroup("AWS_Old")
	if err := s.SetGroupName(gid, "AWS_New"); err != nil {
		t.Fatal(err)
	}
	c := start(t, s)
	var g struct{ Profile struct{ Name string } }
	c.get("/api/v1/groups/"+gid, &g)
	if g.Profile.Name != "AWS_New" {
		t.Fatalf("name %q", g.Profile.Name)
	}
	if err := s.DeleteGroup(gid); err != nil {
		t.Fatal(err)
	}
	if st := c.get("/api/v1/groups/"+gid, nil).StatusCode; st != http.StatusNotFound {
		t.Fatalf("deleted group: %d", st)
	}
	if err := s.AddMember(gid, "00unope"); err == nil {
		t.Fatal("AddMember on a deleted group succeeded")
	}
	if st := c.get("/api/v1/users", nil).StatusCode; st != http.StatusNotFound {
		t.Fatalf("unimplemented path: %d", st)
	}
}

func TestLatencyAndStart(t *testing.T) {
	s := oktatest.New(oktatest.Options{Latency: time.Millisecond})
	base, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if base != s.URL() || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("base %q URL %q", base, s.URL())
	}
	c := &client{t: t, base: base, token: oktatest.DefaultToken}
	if st := c.get("/api/v1/groups", nil).StatusCode; st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	if log := s.RequestLog(); len(log) != 1 || log[0].Path != "/api/v1/groups" || log[0].Status != 200 {
		t.Fatalf("log %+v", log)
	}
}

func TestExpandStats(t *testing.T) {
	s := oktatest.New(oktatest.Options{Everyone: true})
	gid := s.AddGroup("AWS_Team")
	for i := range 3 {
		if err := s.AddMember(gid, s.AddUser(fmt.Sprintf("u%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.AddUser("outsider@example.com")
	c := start(t, s)

	type stats struct {
		UsersCount *int `json:"usersCount"`
	}
	type group struct {
		ID       string
		Embedded *struct{ Stats stats } `json:"_embedded"`
	}
	count := func(g group) int {
		t.Helper()
		if g.Embedded == nil || g.Embedded.Stats.UsersCount == nil {
			t.Fatalf("group %s has no _embedded.stats.usersCount", g.ID)
		}
		return *g.Embedded.Stats.UsersCount
	}

	var plain []group
	c.get("/api/v1/groups", &plain)
	for _, g := range plain {
		if g.Embedded != nil {
			t.Fatalf("no expand, but group %s has _embedded", g.ID)
		}
	}
	var listed []group
	c.get("/api/v1/groups?search="+url.QueryEscape(`profile.name sw "AWS_"`)+"&expand=stats", &listed)
	if len(listed) != 1 || count(listed[0]) != 3 {
		t.Fatalf("listed %+v, want AWS_Team with usersCount 3", listed)
	}
	var everyone []group
	c.get("/api/v1/groups?expand=app,stats", &everyone)
	for _, g := range everyone {
		if g.ID != gid && count(g) != 4 {
			t.Fatalf("Everyone: usersCount %d, want every user (4)", count(g))
		}
	}
	var one group
	c.get("/api/v1/groups/"+gid+"?expand=stats", &one)
	if count(one) != 3 {
		t.Fatalf("get group: usersCount %d, want 3", count(one))
	}

	// The count is the real membership: a fault on the member pages does not change it, so a
	// truncated listing disagrees with it.
	s.EmptyGroupMembers(gid, -1)
	var members []struct{ ID string }
	c.get("/api/v1/groups/"+gid+"/users", &members)
	c.get("/api/v1/groups/"+gid+"?expand=stats", &one)
	if len(members) != 0 || count(one) != 3 {
		t.Fatalf("with an empty member page: %d members listed, usersCount %d; want 0 and 3", len(members), count(one))
	}
}
