package scim

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrReadOnly is returned by every write of a [ReadOnly] client: nothing was sent.
var ErrReadOnly = errors.New("scim: write refused by the read-only (dry-run) client, nothing sent")

// API is every operation of [Client]. Consumers declare the narrower interfaces they use; API is
// what [ReadOnly] wraps and offers, so a read-only client satisfies every one of them.
type API interface {
	GetUser(ctx context.Context, id string) (User, error)
	FindUserByUserName(ctx context.Context, name string) (User, error)
	FindUserByExternalID(ctx context.Context, id string) (User, error)
	ListUsers(ctx context.Context, fn func([]User) error) error
	ListGroupMembers(ctx context.Context, groupID string) ([]User, error)
	GetGroup(ctx context.Context, id string) (Group, error)
	FindGroupByDisplayName(ctx context.Context, name string) (Group, error)
	FindGroupsByExternalID(ctx context.Context, id string) ([]Group, error)
	ListGroups(ctx context.Context, fn func([]Group) error) error
	ListUserGroups(ctx context.Context, userID string) ([]Group, error)
	IsMember(ctx context.Context, groupID, userID string) (bool, error)
	Stats() Stats

	CreateGroup(ctx context.Context, g Group, memberIDs []string) (Group, error)
	DeleteGroup(ctx context.Context, id string) error
	AddMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error)
	RemoveMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error)
	RenameGroup(ctx context.Context, id, name string) error
	SetGroupExternalID(ctx context.Context, id, externalID string) error
}

var (
	_ API = (*Client)(nil)
	_ API = (*ReadOnly)(nil)
)

// ReadOnly is the SCIM client of a dry run: reads go to the wrapped client, every write (POST,
// PATCH, DELETE: create, delete, add or remove members, rename, set externalId) returns
// [ErrReadOnly] without a request, and is counted. DRY_RUN is thereby a property of the client,
// not of each code path remembering to check it: a path that forgets its dry-run check fails
// loudly instead of changing AWS. Code that plans ("would add …") asks [ReadOnly.ReadOnly] or its
// own dry-run setting before writing, so a correct dry run has Refused() == 0.
//
// It is safe for concurrent use.
type ReadOnly struct {
	api API

	mu      sync.Mutex
	refused map[string]int64
}

// ReadOnlyOf returns a read-only view of api (api itself when it already is one).
func ReadOnlyOf(api API) *ReadOnly {
	if ro, ok := api.(*ReadOnly); ok {
		return ro
	}
	return &ReadOnly{api: api, refused: map[string]int64{}}
}

// ReadOnly reports true: callers that plan instead of writing ask it (an interface
// { ReadOnly() bool } is enough, no import of this type needed).
func (r *ReadOnly) ReadOnly() bool { return true }

// Refused returns the number of writes refused so far, per operation (Op* names).
func (r *ReadOnly) Refused() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.refused))
	for k, v := range r.refused {
		out[k] = v
	}
	return out
}

// RefusedTotal returns the number of writes refused so far.
func (r *ReadOnly) RefusedTotal() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.refused {
		n += v
	}
	return n
}

func (r *ReadOnly) refuse(op, what string) error {
	r.mu.Lock()
	r.refused[op]++
	r.mu.Unlock()
	return fmt.Errorf("%s %s: %w", op, what, ErrReadOnly)
}

// IsReadOnly reports whether api refuses writes (a [ReadOnly], or anything with a ReadOnly()
// method reporting true).
func IsReadOnly(api any) bool {
	ro, ok := api.(interface{ ReadOnly() bool })
	return ok && ro.ReadOnly()
}

// --- reads: passed through ---

func (r *ReadOnly) GetUser(ctx context.Context, id string) (User, error) {
	return r.api.GetUser(ctx, id)
}
func (r *ReadOnly) FindUserByUserName(ctx context.Context, name string) (User, error) {
	return r.api.FindUserByUserName(ctx, name)
}
func (r *ReadOnly) FindUserByExternalID(ctx context.Context, id string) (User, error) {
	return r.api.FindUserByExternalID(ctx, id)
}
func (r *ReadOnly) ListUsers(ctx context.Context, fn func([]User) error) error {
	return r.api.ListUsers(ctx, fn)
}
func (r *ReadOnly) ListGroupMembers(ctx context.Context, groupID string) ([]User, error) {
	return r.api.ListGroupMembers(ctx, groupID)
}
func (r *ReadOnly) GetGroup(ctx context.Context, id string) (Group, error) {
	return r.api.GetGroup(ctx, id)
}
func (r *ReadOnly) FindGroupByDisplayName(ctx context.Context, name string) (Group, error) {
	return r.api.FindGroupByDisplayName(ctx, name)
}
func (r *ReadOnly) FindGroupsByExternalID(ctx context.Context, id string) ([]Group, error) {
	return r.api.FindGroupsByExternalID(ctx, id)
}
func (r *ReadOnly) ListGroups(ctx context.Context, fn func([]Group) error) error {
	return r.api.ListGroups(ctx, fn)
}
func (r *ReadOnly) ListUserGroups(ctx context.Context, userID string) ([]Group, error) {
	return r.api.ListUserGroups(ctx, userID)
}
func (r *ReadOnly) IsMember(ctx context.Context, groupID, userID string) (bool, error) {
	return r.api.IsMember(ctx, groupID, userID)
}

// Stats returns the wrapped client's counters (refused writes sent nothing, so they are not in
// them; see Refused).
func (r *ReadOnly) Stats() Stats { return r.api.Stats() }

// --- writes: refused ---

func (r *ReadOnly) CreateGroup(_ context.Context, g Group, _ []string) (Group, error) {
	return Group{}, r.refuse(OpCreateGroup, fmt.Sprintf("%q", g.DisplayName))
}
func (r *ReadOnly) DeleteGroup(_ context.Context, id string) error {
	return r.refuse(OpDeleteGroup, id)
}
func (r *ReadOnly) AddMembers(_ context.Context, groupID string, userIDs []string) ([]string, error) {
	return nil, r.refuse(OpAddMembers, fmt.Sprintf("%d members to group %s", len(userIDs), groupID))
}
func (r *ReadOnly) RemoveMembers(_ context.Context, groupID string, userIDs []string) ([]string, error) {
	return nil, r.refuse(OpRemoveMembers, fmt.Sprintf("%d members of group %s", len(userIDs), groupID))
}
func (r *ReadOnly) RenameGroup(_ context.Context, id, name string) error {
	return r.refuse(OpRenameGroup, fmt.Sprintf("group %s to %q", id, name))
}
func (r *ReadOnly) SetGroupExternalID(_ context.Context, id, externalID string) error {
	return r.refuse(OpSetGroupExternalID, fmt.Sprintf("group %s to %s", id, externalID))
}
