package oktatest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
)

// The generator's events describe what it did to the fake: per user the newest lifecycle event
// gives the status, per (live group, user) the newest membership event the membership; events are
// in published order (whole, distinct milliseconds) with distinct uuids and the targets their type
// has; every kind of operation occurs; and a seed replays exactly.
func TestGenerator(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	run := func(seed uint64) (*oktatest.Server, *oktatest.Generator) {
		s := oktatest.New(oktatest.Options{})
		g := oktatest.NewGenerator(s, oktatest.GenOptions{Seed: seed, Start: start})
		for range 400 {
			g.Step()
		}
		return s, g
	}
	s, g := run(7)
	if _, again := run(7); !slices.Equal(g.Log(), again.Log()) {
		t.Fatal("the same seed gave other operations")
	}
	if _, other := run(8); slices.Equal(g.Log(), other.Log()) {
		t.Fatal("another seed gave the same operations")
	}

	evs := g.Events()
	if len(evs) != 400 || len(g.Log()) != 400 {
		t.Fatalf("%d events, %d log lines for 400 steps", len(evs), len(g.Log()))
	}
	kinds := map[string]int{}
	uuids := map[string]bool{}
	status := map[string]string{}
	member := map[[2]string]bool{}
	for i, e := range evs {
		kinds[e.Type]++
		if uuids[e.UUID] || len(e.UUID) != 36 {
			t.Fatalf("event %d: uuid %q repeated or malformed", i, e.UUID)
		}
		uuids[e.UUID] = true
		if e.Published.Truncate(time.Millisecond) != e.Published || !e.Published.After(start) || (i > 0 && !e.Published.After(evs[i-1].Published)) {
			t.Fatalf("event %d published %v: not after the previous one in whole milliseconds", i, e.Published)
		}
		hasUser, hasGroup := e.UserID != "" && e.Login != "", e.GroupID != "" && e.GroupName != ""
		switch {
		case strings.HasPrefix(e.Type, "group.user_membership."):
			if !hasUser || !hasGroup {
				t.Fatalf("event %d %+v: a membership event names a user and a group", i, e)
			}
			member[[2]string{e.GroupID, e.UserID}] = e.Type == "group.user_membership.add"
		case strings.HasPrefix(e.Type, "group."):
			if hasUser || !hasGroup {
				t.Fatalf("event %d %+v: a group event names the group only", i, e)
			}
		case strings.HasPrefix(e.Type, "user.lifecycle."):
			if !hasUser || hasGroup {
				t.Fatalf("event %d %+v: a lifecycle event names the user only", i, e)
			}
			status[e.UserID] = e.Type
		default:
			t.Fatalf("event %d: type %q", i, e.Type)
		}
	}
	for _, typ := range []string{"group.user_membership.add", "group.user_membership.remove", "group.profile.update", "group.lifecycle.delete",
		"user.lifecycle.deactivate", "user.lifecycle.activate", "user.lifecycle.reactivate", "user.lifecycle.suspend", "user.lifecycle.unsuspend"} {
		if kinds[typ] == 0 {
			t.Errorf("no %s in 400 operations: %v", typ, kinds)
		}
	}

	for _, u := range g.Users() {
		got, err := s.UserStatus(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"": {oktatest.StatusActive}, "user.lifecycle.deactivate": {oktatest.StatusDeprovisioned},
			"user.lifecycle.suspend": {oktatest.StatusSuspended}, "user.lifecycle.unsuspend": {oktatest.StatusActive},
			"user.lifecycle.activate":   {oktatest.StatusActive, oktatest.StatusProvisioned},
			"user.lifecycle.reactivate": {oktatest.StatusActive, oktatest.StatusProvisioned},
		}[status[u.ID]]
		if !slices.Contains(want, got) {
			t.Errorf("%s: status %s after %q", u.Login, got, status[u.ID])
		}
	}
	deleted := 0
	for _, gr := range g.Groups() {
		name, err := s.GroupName(gr.ID)
		if gr.Deleted {
			deleted++
			if err == nil {
				t.Errorf("group %s deleted by the generator, still in the fake", gr.ID)
			}
			continue
		}
		if err != nil || name != gr.Name {
			t.Errorf("group %s: fake says %q (%v), generator %q", gr.ID, name, err, gr.Name)
		}
		ids, _ := s.Members(gr.ID)
		for _, u := range g.Users() {
			if want, ok := member[[2]string{gr.ID, u.ID}]; ok && want != slices.Contains(ids, u.ID) {
				t.Errorf("%s in %s: member %v, its newest event says %v", u.Login, gr.Name, !want, want)
			}
		}
	}
	if deleted == 0 || deleted > 2 {
		t.Errorf("%d groups deleted, want 1 or 2 (while more than 3 live)", deleted)
	}
}
