package oktatest

import (
	"fmt"
	"strings"
	"time"
)

// ErrUnknown is returned by seeding helpers for a group or user id the server does not hold.
type ErrUnknown struct{ Kind, ID string }

func (e *ErrUnknown) Error() string { return fmt.Sprintf("oktatest: unknown %s %q", e.Kind, e.ID) }

// AddGroup creates an OKTA_GROUP and returns its id.
func (s *Server) AddGroup(name string) string {
	return s.AddGroupOfType(name, TypeOktaGroup)
}

// AddGroupOfType creates a group of the given type (TypeOktaGroup, TypeAppGroup, TypeBuiltIn).
func (s *Server) AddGroupOfType(name, typ string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addGroup(name, "", typ)
}

func (s *Server) addGroup(name, description, typ string) string {
	s.seq++
	// 20 characters like Okta's ids; the zero-padded counter keeps id order = creation order.
	id := fmt.Sprintf("00g%s%08d", "f4keGr0up", s.seq)
	now := time.Now().UTC()
	s.groups[id] = &group{
		id: id, name: name, description: description, typ: typ,
		created: now, lastUpdated: now, lastMembershipUpdated: now,
		members: map[string]struct{}{},
	}
	return id
}

// AddUser creates an ACTIVE user and returns its id. The email is the login when it looks like an
// address (Okta's default), else login@example.com; first and last names come from the local part.
func (s *Server) AddUser(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("00u%s%08d", "f4keUs3r0", s.seq)
	email := login
	if !strings.Contains(login, "@") {
		email = login + "@example.com"
	}
	local, _, _ := strings.Cut(email, "@")
	first, last, ok := strings.Cut(local, ".")
	if !ok {
		last = local
	}
	now := time.Now().UTC()
	s.users[id] = &user{
		id: id, login: login, email: email, firstName: title(first), lastName: title(last),
		status: "ACTIVE", created: now, activated: now, statusChanged: now, lastUpdated: now,
	}
	return id
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// AddMember puts a user in a group (idempotent, as in Okta).
func (s *Server) AddMember(groupID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.memberGroup(groupID, userID)
	if err != nil {
		return err
	}
	g.members[userID] = struct{}{}
	g.lastMembershipUpdated = time.Now().UTC()
	return nil
}

// RemoveMember takes a user out of a group (idempotent).
func (s *Server) RemoveMember(groupID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.memberGroup(groupID, userID)
	if err != nil {
		return err
	}
	delete(g.members, userID)
	g.lastMembershipUpdated = time.Now().UTC()
	return nil
}

func (s *Server) memberGroup(groupID, userID string) (*group, error) {
	g, ok := s.groups[groupID]
	if !ok {
		return nil, &ErrUnknown{Kind: "group", ID: groupID}
	}
	if _, ok := s.users[userID]; !ok {
		return nil, &ErrUnknown{Kind: "user", ID: userID}
	}
	if groupID == s.everyoneID {
		return nil, fmt.Errorf("oktatest: the Everyone group's membership is every user")
	}
	return g, nil
}

// SetGroupName renames a group (what an admin does before Okta sends group.profile.update).
func (s *Server) SetGroupName(groupID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return &ErrUnknown{Kind: "group", ID: groupID}
	}
	g.name = name
	g.lastUpdated = time.Now().UTC()
	return nil
}

// DeleteGroup removes a group; later reads of it answer 404.
func (s *Server) DeleteGroup(groupID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[groupID]; !ok {
		return &ErrUnknown{Kind: "group", ID: groupID}
	}
	delete(s.groups, groupID)
	return nil
}

// SetUserStatus sets a user's status (ACTIVE, STAGED, PROVISIONED, SUSPENDED, DEPROVISIONED, …).
// The fake keeps memberships whatever the status; readers see the status on each member.
func (s *Server) SetUserStatus(userID, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return &ErrUnknown{Kind: "user", ID: userID}
	}
	u.status = status
	u.statusChanged = time.Now().UTC()
	return nil
}

// Members returns the ids of a group's members in the order the API lists them.
func (s *Server) Members(groupID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return nil, &ErrUnknown{Kind: "group", ID: groupID}
	}
	return s.memberIDs(g), nil
}

// memberIDs is the group's membership in id order; the Everyone group holds every user.
func (s *Server) memberIDs(g *group) []string {
	if g.id == s.everyoneID {
		return sortedIDs(s.users)
	}
	return sortedIDs(g.members)
}
