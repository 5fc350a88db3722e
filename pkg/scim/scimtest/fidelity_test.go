package scimtest

import (
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
	wantAWSError(t, e.req("POST", "/Users", body("ann@example.com")), 409)
	wantStatus(t, e.req("POST", "/Users", body("ANN@example.com")), 201)
	if id, ok := e.srv.UserID("ANN@example.com"); !ok || id == lower || id == upper {
		t.Errorf("UserID is exact: %q %v", id, ok)
	}
}
