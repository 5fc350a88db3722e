package membership

import (
	"testing"
	"time"
)

func TestGranted(t *testing.T) {
	for status, want := range map[string]bool{
		// Every status Okta's Users API lists.
		"STAGED": true, "PROVISIONED": true, "ACTIVE": true, "RECOVERY": true,
		"PASSWORD_EXPIRED": true, "LOCKED_OUT": true, "SUSPENDED": true, "DEPROVISIONED": false,
		// Spelling variations and unknowns.
		"deprovisioned": false, " DEPROVISIONED ": false, "": true, "SOME_NEW_STATUS": true,
	} {
		if got := Granted(status); got != want {
			t.Errorf("Granted(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestLifecycleOf(t *testing.T) {
	for kind, want := range map[Kind]Lifecycle{
		KindUserDeactivate: {From: StatusActive, To: StatusDeprovisioned, Effect: EffectRevoke},
		KindUserReactivate: {From: StatusDeprovisioned, To: StatusActive, Effect: EffectRestore},
		KindUserSuspend:    {From: StatusActive, To: StatusSuspended, Effect: EffectKeep},
		KindUserUnsuspend:  {From: StatusSuspended, To: StatusActive, Effect: EffectKeep},
	} {
		got, ok := LifecycleOf(kind)
		if !ok || got != want {
			t.Errorf("LifecycleOf(%s) = %+v, %v; want %+v", kind, got, ok, want)
		}
		if !kind.User() || !kind.Valid() || kind.Member() {
			t.Errorf("%s: User %v Valid %v Member %v", kind, kind.User(), kind.Valid(), kind.Member())
		}
	}
	for _, k := range []Kind{KindAdd, KindRemove, KindRename, KindGroupDelete, "bogus"} {
		if _, ok := LifecycleOf(k); ok || k.User() {
			t.Errorf("%s counted as a user lifecycle kind", k)
		}
	}
}

// The effects follow from Granted, so the sync worker and the reconciler cannot disagree: a
// transition revokes exactly when it ends in a status the reconciler does not grant.
func TestLifecycleFollowsGranted(t *testing.T) {
	for _, k := range []Kind{KindUserDeactivate, KindUserReactivate, KindUserSuspend, KindUserUnsuspend} {
		l, _ := LifecycleOf(k)
		if (l.Effect == EffectRevoke) != !Granted(l.To) {
			t.Errorf("%s: effect %s, but Granted(%s) = %v", k, l.Effect, l.To, Granted(l.To))
		}
		if (l.Effect == EffectRestore) != (Granted(l.To) && !Granted(l.From)) {
			t.Errorf("%s: effect %s for %s → %s", k, l.Effect, l.From, l.To)
		}
	}
}

func TestValidateUserKinds(t *testing.T) {
	for _, k := range []Kind{KindUserDeactivate, KindUserReactivate, KindUserSuspend, KindUserUnsuspend} {
		if err := Validate(ch("e1", 0, k, "", "u")); err != nil {
			t.Errorf("%s without group: %v", k, err)
		}
		if err := Validate(ch("e1", 0, k, "", "")); err == nil {
			t.Errorf("%s without user accepted", k)
		}
	}
}

func TestStatusPermits(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	mark := func(k Kind) Mark { return Mark{Published: at, Kind: k, EventUUID: "e"} }
	for _, tc := range []struct {
		name  string
		m     Mark
		found bool
		want  bool
	}{
		{"no mark", Mark{}, false, true},
		{"zero mark found", Mark{}, true, true},
		{"deactivated", mark(KindUserDeactivate), true, false},
		{"reactivated", mark(KindUserReactivate), true, true},
		{"suspended", mark(KindUserSuspend), true, true},
		{"unsuspended", mark(KindUserUnsuspend), true, true},
		{"not a lifecycle kind", mark(KindAdd), true, true},
	} {
		if got := StatusPermits(tc.m, tc.found); got != tc.want {
			t.Errorf("%s: StatusPermits = %v, want %v", tc.name, got, tc.want)
		}
	}
}
