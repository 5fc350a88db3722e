package scimapply

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// fakeOkta is the Okta side of the identity rule: current names of live groups; others are gone.
type fakeOkta struct {
	mu    sync.Mutex
	names map[string]string
	err   error
	reads int
}

func (f *fakeOkta) lookup(_ context.Context, id string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return "", false, f.err
	}
	n, ok := f.names[id]
	return n, ok, nil
}

func selectedAWS(n string) bool { return strings.HasPrefix(n, "AWS_") }

func TestIdentityExternalIDBeforeName(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	mine := e.srv.AddGroup("AWS_Admins_EU", "00gA") // renamed in AWS already
	e.srv.AddGroup("AWS_Admins", "")                // an unowned group with the event's old name
	d := NewDirectory(e.client, WithSelection(selectedAWS))
	g, _, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins"}, true)
	if err != nil || g.ID != mine {
		t.Fatalf("got %+v, %v; want the group carrying the externalId", g, err)
	}
	for _, gi := range e.srv.Groups() {
		if gi.DisplayName == "AWS_Admins" && gi.ExternalID != "" {
			t.Fatalf("the unowned group was adopted: %+v", gi)
		}
	}
}

func TestIdentityNeverWritesAnotherGroupsGroup(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		okta  *fakeOkta
		want  error
		adopt bool
	}{
		{"no Okta API", nil, ErrIdentityConflict, false},
		{"owner alive", &fakeOkta{names: map[string]string{"00gOld": "AWS_Admins", "00gNew": "AWS_Admins"}}, ErrIdentityConflict, false},
		{"owner deleted: adopted", &fakeOkta{names: map[string]string{"00gNew": "AWS_Admins"}}, nil, true},
		{"this group deleted: late event", &fakeOkta{names: map[string]string{"00gOld": "AWS_Admins"}}, ErrDeletedInOkta, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, scimtest.Options{})
			gid := e.srv.AddGroup("AWS_Admins", "00gOld")
			opts := []DirectoryOption{WithSelection(selectedAWS)}
			if tc.okta != nil {
				opts = append(opts, WithOktaGroups(tc.okta.lookup))
			}
			d := NewDirectory(e.client, opts...)
			g, created, err := d.Group(ctx, GroupRef{ID: "00gNew", Name: "AWS_Admins"}, true)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if created {
				t.Fatal("a duplicate group was created")
			}
			if len(e.srv.Groups()) != 1 {
				t.Fatalf("groups %+v", e.srv.Groups())
			}
			ext := e.srv.Groups()[0].ExternalID
			if tc.adopt != (ext == "00gNew") {
				t.Fatalf("externalId %q after %v (adopt %v)", ext, err, tc.adopt)
			}
			if tc.adopt && g.ID != gid {
				t.Fatalf("adopted %+v", g)
			}
		})
	}
}

func TestIdentityCreateNeedsOkta(t *testing.T) {
	ctx := context.Background()
	t.Run("read error fails instead of creating", func(t *testing.T) {
		e := newEnv(t, scimtest.Options{})
		ok := &fakeOkta{err: errors.New("okta: HTTP 503")}
		d := NewDirectory(e.client, WithSelection(selectedAWS), WithOktaGroups(ok.lookup))
		if _, _, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins"}, true); err == nil || !strings.Contains(err.Error(), "not created") {
			t.Fatalf("err %v", err)
		}
		if len(e.srv.Groups()) != 0 {
			t.Fatalf("created %+v", e.srv.Groups())
		}
	})
	t.Run("created under the current name", func(t *testing.T) {
		e := newEnv(t, scimtest.Options{})
		ok := &fakeOkta{names: map[string]string{"00gA": "AWS_Admins_EU"}}
		d := NewDirectory(e.client, WithSelection(selectedAWS), WithOktaGroups(ok.lookup))
		g, created, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins"}, true)
		if err != nil || !created || g.DisplayName != "AWS_Admins_EU" || g.ExternalID != "00gA" {
			t.Fatalf("%+v created=%v err=%v", g, created, err)
		}
	})
	t.Run("deleted in Okta: nothing created", func(t *testing.T) {
		e := newEnv(t, scimtest.Options{})
		ok := &fakeOkta{names: map[string]string{}}
		d := NewDirectory(e.client, WithSelection(selectedAWS), WithOktaGroups(ok.lookup))
		if _, _, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins"}, true); !errors.Is(err, ErrDeletedInOkta) {
			t.Fatalf("err %v", err)
		}
		if len(e.srv.Groups()) != 0 {
			t.Fatalf("created %+v", e.srv.Groups())
		}
	})
}

func TestIdentitySelectionOnWhatAWSHoldsNow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	gid := e.srv.AddGroup("AWS_Admins", "00gA")
	d := NewDirectory(e.client, WithSelection(selectedAWS))
	if _, _, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins"}, false); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.RenameGroup(gid, "Legacy_Admins"); err != nil { // an AWS administrator
		t.Fatal(err)
	}
	if _, _, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Admins"}, true); !errors.Is(err, ErrNotSelected) {
		t.Fatalf("err %v, want ErrNotSelected (warm cache must not keep writing)", err)
	}
	if len(e.srv.Groups()) != 1 {
		t.Fatalf("groups %+v", e.srv.Groups())
	}
}

func TestIdentityDeleteNeedsExternalID(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	e.srv.AddGroup("AWS_Admins", "00gNew") // the recreated group's AWS group
	e.srv.AddGroup("AWS_Ops", "")          // unowned
	d := NewDirectory(e.client, WithSelection(selectedAWS))
	for _, ref := range []GroupRef{{ID: "00gOld", Name: "AWS_Admins"}, {ID: "00gOps", Name: "AWS_Ops"}} {
		if _, err := d.Resolve(ctx, ref, GroupQuery{ExternalIDOnly: true}); !errors.Is(err, ErrGroupNotFound) {
			t.Fatalf("%+v: err %v, want ErrGroupNotFound", ref, err)
		}
	}
}

func TestRenameResolvesSwap(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, scimtest.Options{})
	x := e.srv.AddGroup("AWS_X", "00gA")
	y := e.srv.AddGroup("AWS_Y", "00gB")
	ok := &fakeOkta{names: map[string]string{"00gA": "AWS_Y", "00gB": "AWS_X"}} // swapped in Okta
	d := NewDirectory(e.client, WithSelection(selectedAWS), WithOktaGroups(ok.lookup))
	g, _, err := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Y"}, false)
	if err != nil || g.ID != x {
		t.Fatalf("%+v %v", g, err)
	}
	done, err := d.Rename(ctx, GroupRef{ID: "00gA", Name: "AWS_Y"}, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 3 {
		t.Fatalf("renames %+v, want aside, ours, theirs", done)
	}
	got := map[string]string{}
	for _, gi := range e.srv.Groups() {
		got[gi.ExternalID] = gi.DisplayName + "=" + gi.ID
	}
	if got["00gA"] != "AWS_Y="+x || got["00gB"] != "AWS_X="+y {
		t.Fatalf("after the swap: %v", got)
	}
	// The other side's rename then finds nothing to do.
	gb, _, err := d.Group(ctx, GroupRef{ID: "00gB", Name: "AWS_X"}, false)
	if err != nil || gb.ID != y || gb.DisplayName != "AWS_X" {
		t.Fatalf("%+v %v", gb, err)
	}
}

func TestRenameConflicts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		ext   string
		names map[string]string
	}{
		{"held by an unowned group", "", map[string]string{"00gA": "AWS_Y"}},
		{"held by a group still named so", "00gB", map[string]string{"00gA": "AWS_Y", "00gB": "AWS_Y"}},
		{"held by an orphan", "00gGone", map[string]string{"00gA": "AWS_Y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, scimtest.Options{})
			x := e.srv.AddGroup("AWS_X", "00gA")
			e.srv.AddGroup("AWS_Y", tc.ext)
			ok := &fakeOkta{names: tc.names}
			d := NewDirectory(e.client, WithSelection(selectedAWS), WithOktaGroups(ok.lookup))
			g, _, _ := d.Group(ctx, GroupRef{ID: "00gA", Name: "AWS_Y"}, false)
			done, err := d.Rename(ctx, GroupRef{ID: "00gA", Name: "AWS_Y"}, g)
			if !errors.Is(err, ErrIdentityConflict) || len(done) != 0 {
				t.Fatalf("renames %+v err %v, want a conflict and no rename", done, err)
			}
			if id, _ := e.srv.GroupID("AWS_X"); id != x {
				t.Fatal("our group lost its name")
			}
		})
	}
}
