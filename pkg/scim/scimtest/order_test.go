package scimtest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// listNames pages through GET /Groups (count 7, filter optional) and returns the displayNames in
// the order served.
func (e *env) listNames(filter string) []string {
	e.t.Helper()
	var names []string
	cursor := ""
	for {
		q := "/Groups?count=7&cursor"
		if filter != "" {
			q = "/Groups?count=7&" + filterQ(filter) + "&cursor"
		}
		if cursor != "" {
			q += "=" + url.QueryEscape(cursor)
		}
		m := e.req("GET", q, "").json(e.t)
		for _, r := range m["Resources"].([]any) {
			names = append(names, r.(map[string]any)["displayName"].(string))
		}
		next, _ := m["nextCursor"].(string)
		if next == "" {
			return names
		}
		cursor = next
	}
}

// GroupOrderSeed reorders GET /Groups, listings and filters alike, the same way on every request
// and across pages; 0 keeps creation order.
func TestGroupOrderSeed(t *testing.T) {
	orders := map[string]bool{}
	for seed := range uint64(8) {
		e := newEnv(t, Options{Seed: 3, GroupOrderSeed: seed})
		e.srv.AddUser("u", "") // users share the id sequence with groups
		var want []string
		for i := range 30 {
			ext := "00gOther"
			if i%10 == 0 {
				ext = "00gDup"
			}
			name := fmt.Sprintf("G%02d", i)
			e.srv.AddGroup(name, ext)
			want = append(want, name)
		}
		got := e.listNames("")
		if seed == 0 && !slices.Equal(got, want) {
			t.Errorf("seed 0: %v, want creation order", got)
		}
		if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Fatalf("seed %d: listed %v, want every group once", seed, got)
		}
		if again := e.listNames(""); !slices.Equal(again, got) {
			t.Errorf("seed %d: a second listing answered %v, then %v", seed, got, again)
		}
		dup := e.listNames(`externalId eq "00gDup"`)
		if !slices.Equal(slices.Sorted(slices.Values(dup)), []string{"G00", "G10", "G20"}) {
			t.Errorf("seed %d: filter answered %v", seed, dup)
		}
		orders[strings.Join(dup, ",")] = true
	}
	if len(orders) < 2 {
		t.Errorf("the seeds never changed the order: %v", orders)
	}
}
