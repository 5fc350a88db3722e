package oktatest_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
)

// The lifecycle helpers allow exactly the moves Okta's User Lifecycle API allows, keep the user's
// memberships, and the member listing reports the new status.
func TestLifecycle(t *testing.T) {
	s := oktatest.New(oktatest.Options{})
	uid := s.AddUser("ann@example.com")
	gid := s.AddGroup("AWS_Admins")
	if err := s.AddMember(gid, uid); err != nil {
		t.Fatal(err)
	}
	c := start(t, s)
	status := func() string {
		var page []struct{ ID, Status string }
		if resp := c.get("/api/v1/groups/"+gid+"/users", &page); resp.StatusCode != http.StatusOK || len(page) != 1 {
			t.Fatalf("members: %d %v (a status change must keep the membership)", resp.StatusCode, page)
		}
		if got, err := s.UserStatus(uid); err != nil || got != page[0].Status {
			t.Fatalf("UserStatus %q %v, API %q", got, err, page[0].Status)
		}
		return page[0].Status
	}
	steps := []struct {
		op   string
		do   func() error
		want string // status after; "" = refused, unchanged
	}{
		{"unsuspend an ACTIVE user", func() error { return s.Unsuspend(uid) }, ""},
		{"activate an ACTIVE user", func() error { return s.Activate(uid, true) }, ""},
		{"suspend", func() error { return s.Suspend(uid) }, oktatest.StatusSuspended},
		{"suspend a SUSPENDED user", func() error { return s.Suspend(uid) }, ""},
		{"deactivate a SUSPENDED user", func() error { return s.Deactivate(uid) }, oktatest.StatusDeprovisioned},
		{"deactivate twice", func() error { return s.Deactivate(uid) }, ""},
		{"suspend a DEPROVISIONED user", func() error { return s.Suspend(uid) }, ""},
		{"activate without password", func() error { return s.Activate(uid, false) }, oktatest.StatusProvisioned},
		{"deactivate a PROVISIONED user", func() error { return s.Deactivate(uid) }, oktatest.StatusDeprovisioned},
		{"activate", func() error { return s.Activate(uid, true) }, oktatest.StatusActive},
		{"suspend again", func() error { return s.Suspend(uid) }, oktatest.StatusSuspended},
		{"unsuspend", func() error { return s.Unsuspend(uid) }, oktatest.StatusActive},
	}
	for _, st := range steps {
		before := status()
		err := st.do()
		var le *oktatest.ErrLifecycle
		switch {
		case st.want == "" && !errors.As(err, &le):
			t.Fatalf("%s: err %v, want ErrLifecycle", st.op, err)
		case st.want == "" && status() != before:
			t.Fatalf("%s: refused but status %s, was %s", st.op, status(), before)
		case st.want != "" && err != nil:
			t.Fatalf("%s: %v", st.op, err)
		case st.want != "" && status() != st.want:
			t.Fatalf("%s: status %s, want %s", st.op, status(), st.want)
		}
	}
	var unknown *oktatest.ErrUnknown
	if err := s.Deactivate("00unknown"); !errors.As(err, &unknown) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.SetGroupName(gid, "AWS_Ops"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.GroupName(gid); n != "AWS_Ops" || err != nil {
		t.Fatalf("GroupName %q %v", n, err)
	}
	if err := s.DeleteGroup(gid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GroupName(gid); !errors.As(err, &unknown) {
		t.Fatalf("deleted group: %v", err)
	}
}
