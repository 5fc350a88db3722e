package scimtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestParseGroupFilterMembersValue(t *testing.T) {
	f, err := parseGroupFilter(`members.value eq "9067729b3d-u1"`)
	if err != nil || !f.hasMemberValue || f.memberValue != "9067729b3d-u1" || f.hasMember || f.hasID {
		t.Fatalf("members.value alone: %+v, %v", f, err)
	}
	if f, err := parseGroupFilter(`MEMBERS.VALUE eq "x"`); err != nil || f.memberValue != "x" {
		t.Fatalf("attribute case: %+v, %v", f, err)
	}
	// Combinations AWS does not document are refused.
	for _, s := range []string{`members.value eq "a" and id eq "b"`, `members.value eq ""`, `members.value ne "a"`} {
		if _, err := parseGroupFilter(s); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}

// GET /Groups?filter=members.value eq "<user>": the user's groups, paged; an unknown user is a
// 404 as AWS documents; group reads still carry no members.
func TestListGroupsOfUser(t *testing.T) {
	s := New(Options{})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	ann, bob := s.AddUser("ann@example.com", "00uANN"), s.AddUser("bob@example.com", "00uBOB")
	var want []string
	for i := range 5 {
		g := s.AddGroup("AWS_"+string(rune('A'+i)), "")
		if i != 2 {
			s.AddMember(g, ann)
			want = append(want, g)
		}
		s.AddMember(g, bob)
	}
	get := func(filter, cursor string) (int, listResp) {
		t.Helper()
		q := url.Values{"filter": {filter}, "count": {"3"}}
		raw := q.Encode() + "&cursor"
		if cursor != "" {
			raw += "=" + url.QueryEscape(cursor)
		}
		req, _ := http.NewRequest(http.MethodGet, ts.URL+s.BasePath()+"/Groups?"+raw, nil)
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l listResp
		_ = json.NewDecoder(resp.Body).Decode(&l)
		return resp.StatusCode, l
	}
	var got []string
	cursor := ""
	for range 5 {
		code, l := get(`members.value eq "`+ann+`"`, cursor)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for _, r := range l.Resources {
			if len(r.Members) != 0 {
				t.Fatalf("group %s carries members", r.ID)
			}
			got = append(got, r.ID)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("groups %v, want %v", got, want)
		}
	}
	if code, _ := get(`members.value eq "no-such-user"`, ""); code != http.StatusNotFound {
		t.Fatalf("unknown user: status %d, want 404", code)
	}
}

type listResp struct {
	NextCursor string `json:"nextCursor"`
	Resources  []struct {
		ID      string `json:"id"`
		Members []any  `json:"members"`
	} `json:"Resources"`
}
