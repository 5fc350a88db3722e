package scimtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests pin the emulator's AWS behaviour with raw HTTP, independent of pkg/scim.

type env struct {
	t    *testing.T
	srv  *Server
	base string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.BasePath == "" {
		opts.BasePath = "/d-1234567890/scim/v2"
	}
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &env{t: t, srv: s, base: ts.URL + s.BasePath()}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

func (e *env) req(method, pathQuery, body string) reply {
	e.t.Helper()
	return e.reqTok(method, pathQuery, body, DefaultToken)
}

func (e *env) reqTok(method, pathQuery, body, token string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+pathQuery, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func filterQ(f string) string { return "filter=" + url.QueryEscape(f) }

func wantStatus(t *testing.T, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

// wantAWSError checks the AWS error shape: status as a string, both schema keys, and a request
// id equal to the x-amzn-RequestId header.
func wantAWSError(t *testing.T, r reply, status int) map[string]any {
	t.Helper()
	wantStatus(t, r, status)
	m := r.json(t)
	if got, ok := m["status"].(string); !ok || got != fmt.Sprint(status) {
		t.Errorf("status field %#v, want string %q", m["status"], fmt.Sprint(status))
	}
	for _, k := range []string{"schema", "schemas"} {
		if !reflect.DeepEqual(m[k], []any{schemaError}) {
			t.Errorf("%s = %v", k, m[k])
		}
	}
	if id := r.header.Get("x-amzn-RequestId"); id == "" || m["exceptionRequestId"] != id {
		t.Errorf("exceptionRequestId %v, header %q", m["exceptionRequestId"], id)
	}
	if d, _ := m["detail"].(string); d == "" {
		t.Error("empty detail")
	}
	return m
}

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{})
	wantStatus(t, e.req("GET", "/Users", ""), 200)
	wantAWSError(t, e.reqTok("GET", "/Users", "", ""), 401)
	wantAWSError(t, e.reqTok("GET", "/Users", "", "wrong"), 401)

	// Wrong tenant: AWS answers 401 too.
	req, _ := http.NewRequest("GET", strings.Replace(e.base, "d-1234567890", "d-0000000000", 1)+"/Users", nil)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong tenant: %d", resp.StatusCode)
	}

	e.srv.SetToken("rotated")
	wantAWSError(t, e.req("GET", "/Users", ""), 401)
	wantStatus(t, e.reqTok("GET", "/Users", "", "rotated"), 200)

	e.srv.ExpireToken(true)
	wantAWSError(t, e.reqTok("GET", "/Users", "", "rotated"), 401)
	e.srv.ExpireToken(false)
	wantStatus(t, e.reqTok("GET", "/Users", "", "rotated"), 200)
	if got := e.srv.Unauthorized(); got != 5 {
		t.Errorf("Unauthorized() = %d, want 5", got)
	}
}

func TestCreateAndGetUser(t *testing.T) {
	e := newEnv(t, Options{})
	body := `{"schemas":["` + schemaUser + `"],"userName":"ann@example.com","externalId":"00u1","displayName":"Ann","name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"value":"ann@example.com","type":"work","primary":true}],"active":true}`
	r := e.req("POST", "/Users", body)
	wantStatus(t, r, 201)
	u := r.json(t)
	id, _ := u["id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{10}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("id %q does not look like an AWS id", id)
	}
	if u["userName"] != "ann@example.com" || u["externalId"] != "00u1" || u["active"] != true {
		t.Errorf("created user %v", u)
	}
	wantAWSError(t, e.req("POST", "/Users", body), 409)

	got := e.req("GET", "/Users/"+id, "")
	wantStatus(t, got, 200)
	if got.json(t)["userName"] != "ann@example.com" {
		t.Errorf("get: %s", got.body)
	}
	wantAWSError(t, e.req("GET", "/Users/nope", ""), 404)

	for name, b := range map[string]string{
		"no givenName":     `{"userName":"b","displayName":"B","name":{"familyName":"F"}}`,
		"no displayName":   `{"userName":"b","name":{"givenName":"G","familyName":"F"}}`,
		"groups set":       `{"userName":"b","displayName":"B","name":{"givenName":"G","familyName":"F"},"groups":[{"value":"x"}]}`,
		"two emails":       `{"userName":"b","displayName":"B","name":{"givenName":"G","familyName":"F"},"emails":[{"value":"a","primary":true},{"value":"b"}]}`,
		"email no primary": `{"userName":"b","displayName":"B","name":{"givenName":"G","familyName":"F"},"emails":[{"value":"a"}]}`,
		"not json":         `{`,
	} {
		t.Run(name, func(t *testing.T) { wantAWSError(t, e.req("POST", "/Users", b), 400) })
	}
}

func TestUserFilters(t *testing.T) {
	e := newEnv(t, Options{})
	names := []string{`o"brien@example.com`, `back\slash@example.com`, "zoë@example.com", "plain and simple"}
	ids := map[string]string{}
	for i, n := range names {
		ids[n] = e.srv.AddUser(n, fmt.Sprintf("00u%d", i))
	}
	g := e.srv.AddGroup("AWS_Admins", "")
	e.srv.AddMember(g, ids["zoë@example.com"])

	one := func(f string) []any {
		t.Helper()
		r := e.req("GET", "/Users?"+filterQ(f), "")
		wantStatus(t, r, 200)
		res, _ := r.json(t)["Resources"].([]any)
		return res
	}
	for _, n := range names {
		q, _ := json.Marshal(n)
		res := one("userName eq " + string(q))
		if len(res) != 1 || res[0].(map[string]any)["id"] != ids[n] {
			t.Errorf("userName %q: %v", n, res)
		}
	}
	if res := one(`externalId eq "00u2"`); len(res) != 1 || res[0].(map[string]any)["userName"] != "zoë@example.com" {
		t.Errorf("externalId: %v", res)
	}
	if res := one(`id eq "` + ids["plain and simple"] + `"`); len(res) != 1 {
		t.Errorf("id: %v", res)
	}
	if res := one(`groups.value eq "` + g + `"`); len(res) != 1 || res[0].(map[string]any)["id"] != ids["zoë@example.com"] {
		t.Errorf("groups.value: %v", res)
	}
	if res := one(`USERNAME EQ "plain and simple"`); len(res) != 1 {
		t.Errorf("case-insensitive attribute and operator: %v", res)
	}
	if res := one(`userName eq "nobody"`); len(res) != 0 {
		t.Errorf("no match: %v", res)
	}
	if res := one(`groups.value eq "no-such-group"`); len(res) != 0 {
		t.Errorf("unknown group: %v", res)
	}

	for _, bad := range []string{
		`userName sw "o"`, `userName eq "a" or userName eq "b"`, `userName eq a`, `userName eq ""`,
		`displayName eq "x"`, `title eq "x"`, `(userName eq "x")`, `not userName eq "x"`,
		`userName eq "a" and externalId eq "b"`, `userName eq "unterminated`, `userName pr`,
		`manager eq "x"`, ``,
	} {
		r := e.req("GET", "/Users?"+filterQ(bad), "")
		if r.status != 400 {
			t.Errorf("filter %q: status %d, want 400", bad, r.status)
		}
	}
}

func TestUserPaging(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 250 {
		e.srv.AddUser(fmt.Sprintf("u%03d", i), "")
	}
	var got []string
	cursor, pages := "", 0
	for {
		q := "/Users?count=100&cursor"
		if cursor != "" {
			q = "/Users?count=100&cursor=" + url.QueryEscape(cursor)
		}
		r := e.req("GET", q, "")
		wantStatus(t, r, 200)
		m := r.json(t)
		if _, has := m["totalResults"]; has {
			t.Error("cursor page carries totalResults")
		}
		res := m["Resources"].([]any)
		if int(m["itemsPerPage"].(float64)) != len(res) {
			t.Errorf("itemsPerPage %v, resources %d", m["itemsPerPage"], len(res))
		}
		for _, u := range res {
			got = append(got, u.(map[string]any)["userName"].(string))
		}
		pages++
		next, _ := m["nextCursor"].(string)
		if next == "" {
			break
		}
		if !regexp.MustCompile(`^[-a-zA-Z0-9+=/:_]*$`).MatchString(next) {
			t.Errorf("cursor %q outside AWS's pattern", next)
		}
		cursor = next
	}
	if pages != 3 || len(got) != 250 || got[0] != "u000" || got[249] != "u249" {
		t.Errorf("pages %d, users %d (%v…)", pages, len(got), got[:3])
	}

	// Without cursor: the non-paginated shape, first count items only.
	m := e.req("GET", "/Users", "").json(t)
	if m["totalResults"] != float64(250) || m["startIndex"] != float64(1) || m["itemsPerPage"] != float64(100) || m["nextCursor"] != nil {
		t.Errorf("non-cursor shape: %v %v %v %v", m["totalResults"], m["startIndex"], m["itemsPerPage"], m["nextCursor"])
	}

	for _, q := range []string{"count=101", "count=0", "count=x", "cursor=%21%21", "cursor=Zm9v", "startIndex=1", "attributes=userName", "count=1&count=2"} {
		wantAWSError(t, e.req("GET", "/Users?"+q, ""), 400)
	}
}

func TestUnevenPages(t *testing.T) {
	e := newEnv(t, Options{UnevenPages: true, Seed: 7})
	for i := range 300 {
		e.srv.AddUser(fmt.Sprintf("u%03d", i), "")
	}
	total, short, cursor := 0, 0, ""
	for {
		q := "/Users?count=100&cursor"
		if cursor != "" {
			q = "/Users?count=100&cursor=" + url.QueryEscape(cursor)
		}
		m := e.req("GET", q, "").json(t)
		n := len(m["Resources"].([]any))
		total += n
		next, _ := m["nextCursor"].(string)
		if next == "" {
			break
		}
		if n < 100 {
			short++
		}
		cursor = next
	}
	if total != 300 || short == 0 {
		t.Errorf("total %d, short pages with a next cursor %d", total, short)
	}
}

func TestGroups(t *testing.T) {
	e := newEnv(t, Options{})
	u1, u2 := e.srv.AddUser("a@x", ""), e.srv.AddUser("b@x", "")
	r := e.req("POST", "/Groups", `{"displayName":"AWS_Dev","externalId":"00g1","members":[{"value":"`+u1+`","type":"User"}]}`)
	wantStatus(t, r, 201)
	gid := r.json(t)["id"].(string)
	if ms, ok := r.json(t)["members"].([]any); !ok || len(ms) != 0 {
		t.Errorf("create answer members %v, want []", r.json(t)["members"])
	}
	wantAWSError(t, e.req("POST", "/Groups", `{"displayName":"AWS_Dev"}`), 409)
	wantAWSError(t, e.req("POST", "/Groups", `{"externalId":"x"}`), 400)
	wantAWSError(t, e.req("POST", "/Groups", `{"displayName":"G2","members":[{"value":"nope"}]}`), 400)

	// Members are never returned on group reads.
	g := e.req("GET", "/Groups/"+gid, "").json(t)
	if ms, ok := g["members"].([]any); !ok || len(ms) != 0 || g["displayName"] != "AWS_Dev" || g["externalId"] != "00g1" {
		t.Errorf("get group %v", g)
	}
	lst := e.req("GET", "/Groups?"+filterQ(`displayName eq "AWS_Dev"`), "").json(t)
	if res := lst["Resources"].([]any); len(res) != 1 || len(res[0].(map[string]any)["members"].([]any)) != 0 {
		t.Errorf("list groups %v", lst)
	}
	if res := e.req("GET", "/Groups?"+filterQ(`externalId eq "00g1"`), "").json(t)["Resources"].([]any); len(res) != 1 {
		t.Errorf("externalId filter: %v", res)
	}
	wantAWSError(t, e.req("GET", "/Groups/nope", ""), 404)

	// Membership check: id and members, either order.
	isMember := func(f string) int {
		t.Helper()
		r := e.req("GET", "/Groups?"+filterQ(f), "")
		wantStatus(t, r, 200)
		return len(r.json(t)["Resources"].([]any))
	}
	if n := isMember(`id eq "` + gid + `" and members eq "` + u1 + `"`); n != 1 {
		t.Errorf("u1 member: %d", n)
	}
	if n := isMember(`members eq "` + u1 + `" and id eq "` + gid + `"`); n != 1 {
		t.Errorf("reversed order: %d", n)
	}
	if n := isMember(`id eq "` + gid + `" and members eq "` + u2 + `"`); n != 0 {
		t.Errorf("u2 member: %d", n)
	}
	for _, bad := range []string{`members eq "` + u1 + `"`, `id eq "` + gid + `" and members eq ""`, `displayName eq "a" and id eq "b"`, `userName eq "a@x"`, `groups.value eq "x"`} {
		wantAWSError(t, e.req("GET", "/Groups?"+filterQ(bad), ""), 400)
	}

	wantStatus(t, e.req("DELETE", "/Groups/"+gid, ""), 204)
	wantAWSError(t, e.req("DELETE", "/Groups/"+gid, ""), 404)
	if res := e.req("GET", "/Users?"+filterQ(`groups.value eq "`+gid+`"`), "").json(t)["Resources"].([]any); len(res) != 0 {
		t.Errorf("members of deleted group: %v", res)
	}
	if _, ok := e.srv.GroupID("AWS_Dev"); ok {
		t.Error("deleted group still found by name")
	}
	wantAWSError(t, e.req("PUT", "/Groups/x", "{}"), 405)
	wantAWSError(t, e.req("GET", "/Bulk", ""), 404)
}

func TestCreateGroupMemberLimit(t *testing.T) {
	e := newEnv(t, Options{})
	var ms []string
	for i := range 101 {
		ms = append(ms, `{"value":"`+e.srv.AddUser(fmt.Sprint("u", i), "")+`"}`)
	}
	wantAWSError(t, e.req("POST", "/Groups", `{"displayName":"G","members":[`+strings.Join(ms, ",")+`]}`), 400)
	if _, ok := e.srv.GroupID("G"); ok {
		t.Error("group created despite 101 members")
	}
	wantStatus(t, e.req("POST", "/Groups", `{"displayName":"G","members":[`+strings.Join(ms[:100], ",")+`]}`), 201)
	if got := e.srv.MaxPatchValues(); got != 101 {
		t.Errorf("MaxPatchValues %d, want 101 (the rejected request counts)", got)
	}
}

func patchBody(ops ...string) string {
	return `{"schemas":["` + schemaPatch + `"],"Operations":[` + strings.Join(ops, ",") + `]}`
}

func membersOp(op string, ids ...string) string {
	vs := make([]string, len(ids))
	for i, id := range ids {
		vs[i] = `{"value":"` + id + `"}`
	}
	return `{"op":"` + op + `","path":"members","value":[` + strings.Join(vs, ",") + `]}`
}

func TestPatchMembers(t *testing.T) {
	e := newEnv(t, Options{})
	var ids []string
	for i := range 150 {
		ids = append(ids, e.srv.AddUser(fmt.Sprintf("u%03d", i), ""))
	}
	gid := e.srv.AddGroup("AWS_G", "")
	p := "/Groups/" + gid

	wantStatus(t, e.req("PATCH", p, patchBody(membersOp("add", ids[:100]...))), 204)
	wantAWSError(t, e.req("PATCH", p, patchBody(membersOp("add", ids[100:150]...), membersOp("remove", ids[:51]...))), 400)
	if n := len(e.srv.Members(gid)); n != 100 {
		t.Fatalf("rejected >100 PATCH changed state: %d members", n)
	}
	if got := e.srv.MaxPatchValues(); got != 101 {
		t.Errorf("MaxPatchValues %d, want 101", got)
	}
	wantStatus(t, e.req("PATCH", p, patchBody(membersOp("Add", ids[100:150]...), membersOp("remove", ids[:50]...))), 204)
	if got := e.srv.Members(gid); len(got) != 100 || got[0] != "u050" || got[99] != "u149" {
		t.Errorf("members after add/remove: %d %v", len(got), got[:2])
	}
	// Idempotent: adding a member again and removing a non-member both succeed.
	wantStatus(t, e.req("PATCH", p, patchBody(membersOp("add", ids[120]), membersOp("remove", ids[0]))), 204)

	// All-or-nothing: a valid add with an unknown user applies nothing.
	wantAWSError(t, e.req("PATCH", p, patchBody(membersOp("add", ids[0]), membersOp("add", "nope"))), 400)
	if got := e.srv.Members(gid); got[0] != "u050" {
		t.Error("partial PATCH applied")
	}

	for name, b := range map[string]string{
		"replace members": patchBody(membersOp("replace", ids[0])),
		"no PatchOp":      `{"Operations":[` + membersOp("add", ids[0]) + `]}`,
		"no operations":   patchBody(),
		"bad op":          patchBody(`{"op":"move","path":"members","value":[]}`),
		"filter path":     patchBody(`{"op":"remove","path":"members[value eq \"` + ids[60] + `\"]"}`),
		"other path":      patchBody(`{"op":"replace","path":"description","value":"x"}`),
		"add no values":   patchBody(`{"op":"add","path":"members","value":[]}`),
		"empty value":     patchBody(`{"op":"add","path":"members","value":[{"value":""}]}`),
		"pathless remove": patchBody(`{"op":"remove","value":{"displayName":"x"}}`),
		"pathless two":    patchBody(`{"op":"replace","value":{"displayName":"x","externalId":"y"}}`),
		"pathless id":     patchBody(`{"op":"replace","value":{"id":"other","displayName":"x"}}`),
		"remove name":     patchBody(`{"op":"remove","path":"displayName"}`),
	} {
		t.Run(name, func(t *testing.T) { wantAWSError(t, e.req("PATCH", p, b), 400) })
	}
	wantAWSError(t, e.req("PATCH", "/Groups/nope", patchBody(membersOp("add", ids[0]))), 404)
	if e.srv.EmptyRemoves() != 0 {
		t.Errorf("EmptyRemoves %d before any empty remove", e.srv.EmptyRemoves())
	}
}

func TestEmptyRemove(t *testing.T) {
	for _, tc := range []struct {
		mode        EmptyRemoveMode
		status      int
		wantMembers int
	}{
		{EmptyRemoveEmptiesGroup, 204, 0},
		{EmptyRemoveRejected, 400, 2},
	} {
		for _, op := range []string{`{"op":"remove","path":"members"}`, `{"op":"remove","path":"members","value":[]}`, `{"op":"remove","path":"members","value":null}`} {
			e := newEnv(t, Options{EmptyRemove: tc.mode})
			gid := e.srv.AddGroup("G", "")
			e.srv.AddMember(gid, e.srv.AddUser("a", ""))
			e.srv.AddMember(gid, e.srv.AddUser("b", ""))
			r := e.req("PATCH", "/Groups/"+gid, patchBody(op))
			wantStatus(t, r, tc.status)
			if got := len(e.srv.Members(gid)); got != tc.wantMembers {
				t.Errorf("mode %d %s: %d members left, want %d", tc.mode, op, got, tc.wantMembers)
			}
			if e.srv.EmptyRemoves() != 1 {
				t.Errorf("mode %d: EmptyRemoves %d, want 1", tc.mode, e.srv.EmptyRemoves())
			}
		}
	}
}

func TestUnknownMemberStatus(t *testing.T) {
	e := newEnv(t, Options{UnknownMemberStatus: 404})
	gid := e.srv.AddGroup("G", "")
	wantAWSError(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("add", "ghost"))), 404)
}

func TestRenameAndExternalID(t *testing.T) {
	e := newEnv(t, Options{})
	gid := e.srv.AddGroup("Old", "")
	e.srv.AddGroup("Taken", "")
	p := "/Groups/" + gid
	wantStatus(t, e.req("PATCH", p, patchBody(`{"op":"replace","path":"displayName","value":"New"}`)), 204)
	if _, ok := e.srv.GroupID("New"); !ok {
		t.Fatal("rename by path not applied")
	}
	// AWS's documented path-less form.
	wantStatus(t, e.req("PATCH", p, patchBody(`{"op":"replace","value":{"id":"`+gid+`","displayName":"Newer"}}`)), 204)
	wantAWSError(t, e.req("PATCH", p, patchBody(`{"op":"replace","path":"displayName","value":"Taken"}`)), 409)
	wantStatus(t, e.req("PATCH", p, patchBody(`{"op":"replace","path":"externalId","value":"00g9"}`)), 204)
	g := e.req("GET", p, "").json(t)
	if g["displayName"] != "Newer" || g["externalId"] != "00g9" {
		t.Errorf("group after patches: %v", g)
	}
	if _, ok := e.srv.GroupID("Old"); ok {
		t.Error("old name still indexed")
	}
}

func TestGroupPaging(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 120 {
		e.srv.AddGroup(fmt.Sprintf("G%03d", i), "")
	}
	m := e.req("GET", "/Groups?count=50&cursor", "").json(t)
	if len(m["Resources"].([]any)) != 50 || m["nextCursor"] == nil {
		t.Fatalf("first page: %v", m["itemsPerPage"])
	}
	n := 50
	for c, _ := m["nextCursor"].(string); c != ""; c, _ = m["nextCursor"].(string) {
		m = e.req("GET", "/Groups?count=50&cursor="+url.QueryEscape(c), "").json(t)
		n += len(m["Resources"].([]any))
	}
	if n != 120 {
		t.Errorf("paged %d groups, want 120", n)
	}
}

func TestScriptedFaults(t *testing.T) {
	e := newEnv(t, Options{Faults: Faults{RetryAfter: "2"}})
	e.srv.FailNext(2, 429)
	for range 2 {
		r := e.req("GET", "/Users", "")
		wantAWSError(t, r, 429)
		if r.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	wantStatus(t, e.req("GET", "/Users", ""), 200)

	e.srv.Inject(Fault{Status: 503, Route: "PATCH /Groups/{id}"})
	wantStatus(t, e.req("GET", "/Users", ""), 200) // not matched, fault stays queued
	gid := e.srv.AddGroup("G", "")
	wantAWSError(t, e.req("PATCH", "/Groups/"+gid, patchBody(`{"op":"replace","path":"externalId","value":"x"}`)), 503)

	e.srv.SetFaultFunc(func(route string, r *http.Request) *Fault {
		if route == "DELETE /Groups/{id}" {
			return &Fault{Status: 500}
		}
		return nil
	})
	wantAWSError(t, e.req("DELETE", "/Groups/"+gid, ""), 500)
	e.srv.SetFaultFunc(nil)
	wantStatus(t, e.req("DELETE", "/Groups/"+gid, ""), 204)

	if e.srv.Throttled() != 2 || e.srv.ServerErrors() != 2 {
		t.Errorf("throttled %d, 5xx %d", e.srv.Throttled(), e.srv.ServerErrors())
	}
	want := map[string]int{"GET /Users": 4, "PATCH /Groups/{id}": 1, "DELETE /Groups/{id}": 2}
	if got := e.srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("Requests() = %v, want %v", got, want)
	}
	if e.srv.TotalRequests() != 7 || e.srv.Count("GET /Users") != 4 {
		t.Errorf("total %d", e.srv.TotalRequests())
	}
	e.srv.ResetCounters()
	if e.srv.TotalRequests() != 0 || len(e.srv.Requests()) != 0 || e.srv.Throttled() != 0 {
		t.Error("ResetCounters left counts")
	}
}

// Random faults are a pure function of the seed and the request sequence.
func TestRandomFaultsDeterministic(t *testing.T) {
	seq := func(seed uint64) []int {
		e := newEnv(t, Options{Seed: seed, Faults: Faults{ThrottleRate: 0.3, ErrorRate: 0.2, RetryAfter: "1"}})
		var out []int
		for range 40 {
			out = append(out, e.req("GET", "/Users", "").status)
		}
		return out
	}
	a, b := seq(42), seq(42)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	counts := map[int]int{}
	for _, s := range a {
		counts[s]++
	}
	if counts[429] == 0 || counts[500] == 0 || counts[200] == 0 {
		t.Errorf("status mix %v, want some of each", counts)
	}
	if reflect.DeepEqual(a, seq(43)) {
		t.Error("different seeds gave identical fault sequences")
	}
}

func TestLatency(t *testing.T) {
	e := newEnv(t, Options{Faults: Faults{Latency: time.Millisecond}})
	wantStatus(t, e.req("GET", "/Users", ""), 200)
}

func TestSnapshot(t *testing.T) {
	s := New(Options{})
	g1, g2 := s.AddGroup("B", ""), s.AddGroup("A", "")
	for _, n := range []string{"zed", "amy", "kim"} {
		s.AddMember(g1, s.AddUser(n, ""))
	}
	_ = g2
	want := map[string][]string{"B": {"amy", "kim", "zed"}, "A": {}}
	if got := s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("Snapshot() = %v, want %v", got, want)
	}
}

func TestSeedingPanicsOnDuplicate(t *testing.T) {
	s := New(Options{})
	s.AddUser("a", "")
	defer func() {
		if recover() == nil {
			t.Error("duplicate AddUser did not panic")
		}
	}()
	s.AddUser("a", "")
}

func TestStart(t *testing.T) {
	s := New(Options{BasePath: "tenant/scim/v2/"})
	base, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/tenant/scim/v2") || s.URL() != base {
		t.Errorf("base URL %q", base)
	}
	if _, err := s.Start(""); err == nil {
		t.Error("second Start succeeded")
	}
	req, _ := http.NewRequest("GET", base+"/Groups", nil)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// The member listing reflects PATCHes made between pages and listings (no stale cache).
func TestMemberListingFollowsChanges(t *testing.T) {
	e := newEnv(t, Options{})
	a, b := e.srv.AddUser("a", ""), e.srv.AddUser("b", "")
	gid := e.srv.AddGroup("G", "")
	e.srv.AddMember(gid, a)
	list := func() int {
		t.Helper()
		return len(e.req("GET", "/Users?count=100&cursor&"+filterQ(`groups.value eq "`+gid+`"`), "").json(t)["Resources"].([]any))
	}
	if n := list(); n != 1 {
		t.Fatalf("%d members", n)
	}
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("add", b))), 204)
	if n := list(); n != 2 {
		t.Errorf("after add: %d members", n)
	}
	wantStatus(t, e.req("PATCH", "/Groups/"+gid, patchBody(membersOp("remove", a, b))), 204)
	if n := list(); n != 0 {
		t.Errorf("after remove: %d members", n)
	}
}
