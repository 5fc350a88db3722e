package okta

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinels matched with errors.Is against a *ReadError.
var (
	// ErrNotFound: the group (or, for a user's groups, the user) does not exist (HTTP 404), e.g.
	// deleted after the event was sent.
	ErrNotFound = errors.New("okta: not found")
	// ErrUnauthorized: the API token is invalid, revoked or lacks the scope (HTTP 401/403).
	ErrUnauthorized = errors.New("okta: unauthorized")
	// ErrRateLimited: still HTTP 429 after the SDK's retries were used up.
	ErrRateLimited = errors.New("okta: rate limited")
)

// ReadError is every error the Reader returns. A read either returns all pages or a ReadError,
// never a partial result, so a caller can skip the group (GroupID) instead of treating it as empty.
type ReadError struct {
	Op      string // "list groups", "get group", "list group members", "list user groups"
	GroupID string // the group read, "" for list groups and list user groups
	UserID  string // the user whose groups were read (list user groups)
	// Status is the HTTP status of the last response, 0 when none came back (network error,
	// timeout, cancelled context).
	Status    int
	Code      string // Okta errorCode, e.g. E0000011
	Summary   string // Okta errorSummary
	RequestID string // X-Okta-Request-Id of the last response, for Okta support
	Attempts  int    // HTTP requests made for the failing call, including 429 retries
	Err       error  // the underlying error (never carries the API token)
}

func (e *ReadError) Error() string {
	var b strings.Builder
	b.WriteString("okta ")
	b.WriteString(e.Op)
	for _, id := range []string{e.GroupID, e.UserID} {
		if id != "" {
			b.WriteString(" ")
			b.WriteString(id)
		}
	}
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Summary != "" {
			fmt.Fprintf(&b, " %s", e.Summary)
		}
	}
	if e.Err != nil && (e.Status == 0 || e.Summary == "") {
		if e.Status != 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

func (e *ReadError) Unwrap() error { return e.Err }

// Is matches the sentinels by status, so callers need not know the numbers.
func (e *ReadError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}
