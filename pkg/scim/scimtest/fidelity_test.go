package scimtest

import (
	"fmt"
	"strings"
	"testing"
)

// The userName rule the emulator assumes where AWS documents nothing (doc.go): the filter ignores
// case and answers every match in creation order; uniqueness is exact.
func TestUserNameFilterIgnoresCaseUniquenessIsExact(t *testing.T) {
	e := newEnv(t, Options{})
	lower := e.srv.AddUser("ann@example.com", "")
	upper := e.srv.AddUser("Ann@example.com", "")
	other := e.srv.AddUser("bob@example.com", "")

	ids := func(f string) []string {
		t.Helper()
		r := e.req("GET", "/Users?"+filterQ(f), "")
		wantStatus(t, r, 200)
		var out []string
		for _, u := range r.json(t)["Resources"].([]any) {
			out = append(out, u.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, q := range []string{"ann@example.com", "Ann@example.com", "ANN@EXAMPLE.COM"} {
		if got := ids(`userName eq "` + q + `"`); len(got) != 2 || got[0] != lower || got[1] != upper {
			t.Errorf("userName eq %q = %v, want [%s %s] (creation order)", q, got, lower, upper)
		}
	}
	if got := ids(`userName eq "BOB@example.com"`); len(got) != 1 || got[0] != other {
		t.Errorf("userName eq BOB = %v", got)
	}
	// Cursor paging walks the matches too.
	r := e.req("GET", "/Users?count=1&cursor&"+filterQ(`userName eq "ANN@example.com"`), "")
	wantStatus(t, r, 200)
	if m := r.json(t); len(m["Resources"].([]any)) != 1 || m["nextCursor"] == nil {
		t.Errorf("first page of 2 matches: %s", r.body)
	}
	// externalId stays exact.
	e.srv.AddUser("carol@example.com", "00uCaRoL")
	if got := ids(`externalId eq "00ucarol"`); len(got) != 0 {
		t.Errorf("externalId compared without case: %v", got)
	}

	body := func(userName string) string {
		return `{"userName":"` + userName + `","displayName":"D","name":{"givenName":"G","familyName":"F"}}`
	}
	m := wantAWSError(t, e.req("POST", "/Users", body("ann@example.com")), 409)
	if m["detail"] != detailDuplicate {
		t.Errorf("409 detail %q", m["detail"])
	}
	wantStatus(t, e.req("POST", "/Users", body("ANN@example.com")), 201)
	if id, ok := e.srv.UserID("ANN@example.com"); !ok || id == lower || id == upper {
		t.Errorf("UserID is exact: %q %v", id, ok)
	}
}

// The error details AWS has been seen to send (handler.go cites where), so clients and their
// tests see realistic text.
func TestErrorDetailsSeenFromAWS(t *testing.T) {
	e := newEnv(t, Options{EmptyRemove: EmptyRemoveRejected})
	uid := e.srv.AddUser("ann@example.com", "00uANN")
	gid := e.srv.AddGroup("AWS_Dev", "00gDEV")
	e.srv.AddGroup("AWS_Ops", "00gOPS")
	patch := func(ops string) string {
		return `{"schemas":["` + schemaPatch + `"],"Operations":[` + ops + `]}`
	}
	var values []string
	for i := range 101 {
		values = append(values, fmt.Sprintf(`{"value":"%s-%d"}`, uid, i))
	}
	user := func(given, family, display, emails string) string {
		return `{"userName":"new@example.com","displayName":"` + display + `","name":{"givenName":"` + given + `","familyName":"` + family + `"}` + emails + `}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		detail                   string
	}{
		{"duplicate group", "POST", "/Groups", `{"displayName":"AWS_Dev"}`, 409, "Refused to create a new, duplicate resource."},
		{"duplicate user", "POST", "/Users", `{"userName":"ann@example.com","displayName":"A","name":{"givenName":"A","familyName":"L"}}`, 409, "Refused to create a new, duplicate resource."},
		{"rename onto a taken name", "PATCH", "/Groups/" + gid, patch(`{"op":"replace","path":"displayName","value":"AWS_Ops"}`), 409, "Refused to create a new, duplicate resource."},
		{"101 member values", "PATCH", "/Groups/" + gid, patch(`{"op":"add","path":"members","value":[` + strings.Join(values, ",") + `]}`), 400, "Request is unparsable, syntactically incorrect, or violates schema."},
		{"replace members", "PATCH", "/Groups/" + gid, patch(`{"op":"replace","path":"members","value":[{"value":"` + uid + `"}]}`), 400, "Request is unparsable, syntactically incorrect, or violates schema."},
		{"remove all", "PATCH", "/Groups/" + gid, patch(`{"op":"remove","path":"members"}`), 400, "Request is unparsable, syntactically incorrect, or violates schema."},
		{"path-less remove", "PATCH", "/Groups/" + gid, patch(`{"op":"remove","value":{"members":[]}}`), 400, `Current PATCH support allows omitting "path" attribute only for Add and Replace operations modifying a single attribute.`},
		{"empty filter value", "GET", "/Groups?" + filterQ(`id eq "`+gid+`" and members eq ""`), "", 400, "Request is unparsable, syntactically incorrect, or violates schema."},
		{"no givenName", "POST", "/Users", user("", "L", "D", ""), 400, `2 validation errors detected: Value at 'name.givenName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{M}\p{S}\p{N}\p{P}\t\n\r ]+; Value at 'name.givenName' failed to satisfy constraint: Member must have length greater than or equal to 1`},
		{"two emails", "POST", "/Users", user("G", "L", "D", `,"emails":[{"value":"a@x","primary":true},{"value":"b@x"}]`), 400, "List attribute emails exceeds allowed limit of 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := wantAWSError(t, e.req(tc.method, tc.path, tc.body), tc.status)
			if m["detail"] != tc.detail {
				t.Errorf("detail %q\nwant   %q", m["detail"], tc.detail)
			}
		})
	}
}
