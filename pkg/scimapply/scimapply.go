// Package scimapply is the SCIM apply path shared by the sync worker and the reconciler: a
// [Directory] that links Okta users and groups to SCIM users and groups with as few requests as
// possible and remembers what it learned for the life of a warm container, and an [Applier] that
// turns a plan into PATCH requests of at most 100 member values, with audit records and metrics.
package scimapply

import (
	"context"
	"errors"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
)

// SCIM is the part of the SCIM client (pkg/scim.Client) this package uses.
type SCIM interface {
	FindUserByExternalID(ctx context.Context, externalID string) (scim.User, error)
	FindUserByUserName(ctx context.Context, userName string) (scim.User, error)
	ListUsers(ctx context.Context, fn func([]scim.User) error) error
	FindGroupByDisplayName(ctx context.Context, displayName string) (scim.Group, error)
	FindGroupsByExternalID(ctx context.Context, externalID string) ([]scim.Group, error)
	SetGroupExternalID(ctx context.Context, id, externalID string) error
	RenameGroup(ctx context.Context, id, name string) error
	GetGroup(ctx context.Context, id string) (scim.Group, error)
	CreateGroup(ctx context.Context, g scim.Group, memberIDs []string) (scim.Group, error)
	AddMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error)
	RemoveMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error)
}

// Metrics receives counters and values (telemetry.Metrics satisfies it). Implementations must be
// safe for concurrent use.
type Metrics interface {
	Count(name string, n float64)
	Value(name string, v float64, unit string)
}

// Errors callers branch on.
var (
	// ErrNotSelected: the group's name is not selected (GROUP_PREFIX / GROUP_REGEX); it is never
	// read-modified-written.
	ErrNotSelected = errors.New("group not selected")
	// ErrGroupNotFound: the group is not in SCIM and creating it is disabled.
	ErrGroupNotFound = errors.New("group not found in SCIM")
	// ErrGroupGone: the cached SCIM group was deleted meanwhile; the cache entry is dropped, so
	// a retry resolves (or creates) it again.
	ErrGroupGone = errors.New("SCIM group deleted meanwhile")
	// ErrUserNotProvisioned: no SCIM user has externalId = Okta user id or userName = login.
	ErrUserNotProvisioned = errors.New("user not provisioned in SCIM")
)

// status returns the HTTP status of a SCIM error (0 when it is not an API error).
func status(err error) int { return scim.StatusOf(err) }

// Fatal reports whether err means that further SCIM requests in this invocation are pointless:
// the token was rejected (pkg/scim already re-read the secret once) or the context ended.
func Fatal(err error) bool {
	return errors.Is(err, scim.ErrUnauthorized) || scim.ClassOf(status(err)) == scim.StatusUnauthorized ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// perUserRetryable reports whether a failed chunk PATCH should be retried one user at a time: a
// 4xx that names the request's content (a user deleted meanwhile, an id AWS rejects), not the
// token (401), the rate limit (429) or the service (5xx, 501 included: an operation AWS does not
// implement fails for each user alike).
func perUserRetryable(err error) bool {
	s := status(err)
	return s < 500 && scim.ClassOf(s) == scim.StatusRequest && s != 0
}
