package scimtest

import (
	"net/http"
	"testing"
)

// A held PATCH is not applied while held; other requests, another PATCH included, go through;
// released, it is applied.
func TestHoldStopsOneRequestUntilReleased(t *testing.T) {
	e := newEnv(t, Options{})
	u1, u2 := e.srv.AddUser("ann@example.com", "00u1"), e.srv.AddUser("bob@example.com", "00u2")
	g := e.srv.AddGroup("AWS_Admins", "00gA")
	h := e.srv.Hold(func(q Request) bool { return q.MemberPatch("add", u1) })
	done := make(chan reply)
	go func() { done <- e.req(http.MethodPatch, "/Groups/"+g, patchBody(membersOp("add", u1))) }()
	<-h.Reached()
	wantStatus(t, e.req(http.MethodPatch, "/Groups/"+g, patchBody(membersOp("add", u2))), http.StatusNoContent)
	if got := e.srv.Snapshot()["AWS_Admins"]; len(got) != 1 || got[0] != "bob@example.com" {
		t.Fatalf("members while held: %v, want only bob", got)
	}
	h.Release()
	wantStatus(t, <-done, http.StatusNoContent)
	if got := e.srv.Snapshot()["AWS_Admins"]; len(got) != 2 {
		t.Fatalf("members after release: %v", got)
	}
	// The hold is consumed: the same request again is not held.
	wantStatus(t, e.req(http.MethodPatch, "/Groups/"+g, patchBody(membersOp("remove", u1))), http.StatusNoContent)
	if (Request{Route: "PATCH /Groups/{id}", Body: []byte(patchBody(membersOp("remove", u1)))}).MemberPatch("add", u1) {
		t.Fatal("a remove matched as an add")
	}
}
