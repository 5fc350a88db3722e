package oktatest

import (
	"fmt"
	"time"
)

// Okta user statuses (Users API, UserStatus).
const (
	StatusStaged        = "STAGED"
	StatusProvisioned   = "PROVISIONED"
	StatusActive        = "ACTIVE"
	StatusSuspended     = "SUSPENDED"
	StatusDeprovisioned = "DEPROVISIONED"
)

// ErrLifecycle is a lifecycle operation the user's status does not allow. Okta refuses such a
// request (the User Lifecycle API names the statuses each operation "can only be performed on");
// a generator that models Okta must not produce it.
type ErrLifecycle struct{ Op, UserID, Status string }

func (e *ErrLifecycle) Error() string {
	return fmt.Sprintf("oktatest: %s of user %s not allowed in status %s", e.Op, e.UserID, e.Status)
}

// The lifecycle operations below move a user between statuses as Okta's User Lifecycle API does
// (developer.okta.com, "User Lifecycle"), and never touch group memberships: Okta keeps a
// deactivated or suspended user's groups (see membership.Granted for the sources).
//
//   - Activate: "only on users with a STAGED or DEPROVISIONED status"; the user ends ACTIVE, or
//     PROVISIONED when it has no password yet and must finish the welcome flow (withPassword
//     false). The System Log calls an admin's activation of a deactivated user
//     user.lifecycle.activate, an import's user.lifecycle.reactivate.
//   - Deactivate: on any status but DEPROVISIONED; the user ends DEPROVISIONED
//     (user.lifecycle.deactivate).
//   - Suspend: "only on users with an ACTIVE status"; ends SUSPENDED (user.lifecycle.suspend).
//   - Unsuspend: "only on users that have a SUSPENDED status"; ends ACTIVE
//     (user.lifecycle.unsuspend).

// Activate activates a STAGED or DEPROVISIONED user.
func (s *Server) Activate(userID string, withPassword bool) error {
	to := StatusActive
	if !withPassword {
		to = StatusProvisioned
	}
	return s.transition("activate", userID, to, StatusStaged, StatusDeprovisioned)
}

// Deactivate deactivates a user that is not DEPROVISIONED yet.
func (s *Server) Deactivate(userID string) error {
	return s.transition("deactivate", userID, StatusDeprovisioned,
		StatusStaged, StatusProvisioned, StatusActive, "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT", StatusSuspended)
}

// Suspend suspends an ACTIVE user.
func (s *Server) Suspend(userID string) error {
	return s.transition("suspend", userID, StatusSuspended, StatusActive)
}

// Unsuspend returns a SUSPENDED user to ACTIVE.
func (s *Server) Unsuspend(userID string) error {
	return s.transition("unsuspend", userID, StatusActive, StatusSuspended)
}

func (s *Server) transition(op, userID, to string, from ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return &ErrUnknown{Kind: "user", ID: userID}
	}
	allowed := false
	for _, f := range from {
		allowed = allowed || u.status == f
	}
	if !allowed {
		return &ErrLifecycle{Op: op, UserID: userID, Status: u.status}
	}
	now := time.Now().UTC()
	if to == StatusActive || to == StatusProvisioned {
		u.activated = now
	}
	u.status, u.statusChanged, u.lastUpdated = to, now, now
	return nil
}

// UserStatus returns a user's status, as GET /api/v1/users/{id} and the member listings report it.
func (s *Server) UserStatus(userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return "", &ErrUnknown{Kind: "user", ID: userID}
	}
	return u.status, nil
}

// GroupName returns a group's current name; a deleted group is an *ErrUnknown, as the API
// answers 404 for it.
func (s *Server) GroupName(groupID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return "", &ErrUnknown{Kind: "group", ID: groupID}
	}
	return g.name, nil
}
