package oktatest

import (
	"net/http"
	"strconv"
	"time"
)

// Fault makes matching requests fail. Faults are checked in the order they were injected; the
// first that still has failures left answers the request.
type Fault struct {
	// Route limits the fault to one operation; RouteAny matches every implemented route.
	Route Route
	// GroupID limits it to requests naming this group (get group, its member pages), or this user
	// for RouteUserGroups (the user's group pages); "" = any.
	GroupID string
	// Status is the HTTP status to answer with (429, 500, 503, 403, …), with Okta's error body.
	Status int
	// Empty answers 200 with `[]` and no next link instead: the "Okta said nobody" outage that
	// must never be read as "remove everyone".
	Empty bool
	// Skip lets this many matching requests through first (Skip: 1 fails the second page).
	Skip int
	// Times is how many matching requests fail after Skip; < 0 means all of them.
	Times int
	// ResetIn sets X-Rate-Limit-Reset = Date + ResetIn (whole seconds) on an injected 429.
	// okta-sdk-golang waits Reset-Date+1 seconds before retrying, so zero costs one second per
	// retry and -time.Second retries at once.
	ResetIn time.Duration
}

type faultState struct {
	Fault
	skipped, failed int
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FailGroupMembers fails the next `times` member-page requests of a group (< 0: all) with status.
func (s *Server) FailGroupMembers(groupID string, status, times int) {
	s.Inject(Fault{Route: RouteGroupUsers, GroupID: groupID, Status: status, Times: times})
}

// EmptyGroupMembers answers the next `times` member-page requests of a group (< 0: all) with an
// empty list.
func (s *Server) EmptyGroupMembers(groupID string, times int) {
	s.Inject(Fault{Route: RouteGroupUsers, GroupID: groupID, Empty: true, Times: times})
}

// FailUserGroups fails the next `times` GET /api/v1/users/{id}/groups requests of a user (< 0: all).
func (s *Server) FailUserGroups(userID string, status, times int) {
	s.Inject(Fault{Route: RouteUserGroups, GroupID: userID, Status: status, Times: times})
}

// FailGroup fails the next `times` GET /api/v1/groups/{id} requests of a group (< 0: all).
func (s *Server) FailGroup(groupID string, status, times int) {
	s.Inject(Fault{Route: RouteGetGroup, GroupID: groupID, Status: status, Times: times})
}

// FailListGroups fails the next `times` GET /api/v1/groups requests (< 0: all).
func (s *Server) FailListGroups(status, times int) {
	s.Inject(Fault{Route: RouteListGroups, Status: status, Times: times})
}

// FailRequests fails the next `times` requests of any route (< 0: all).
func (s *Server) FailRequests(status, times int) {
	s.Inject(Fault{Status: status, Times: times})
}

// SetRateLimit makes the server answer 429 once more than limit requests arrive within a fixed
// window, with X-Rate-Limit-Reset at the window's end, as Okta's per-minute limits do. 0 disables.
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limiter = rateLimiter{limit: limit, window: window}
}

// matchFault returns the fault answering this request, consuming one of its failures. Caller holds mu.
func (s *Server) matchFault(route Route, groupID string) *faultState {
	for _, f := range s.faults {
		if f.Route != RouteAny && f.Route != route {
			continue
		}
		if f.GroupID != "" && f.GroupID != groupID {
			continue
		}
		if f.Times >= 0 && f.failed >= f.Times {
			continue
		}
		if f.skipped < f.Skip {
			f.skipped++
			return nil
		}
		f.failed++
		return f
	}
	return nil
}

// rateLimiter is a fixed-window counter. The zero value reports Okta-like headers and never limits.
type rateLimiter struct {
	limit  int
	window time.Duration
	start  time.Time
	used   int
}

// defaultRateLimit is what the headers claim when no limit is set (Okta's limits vary by endpoint).
const defaultRateLimit = 600

func (l *rateLimiter) take(now time.Time) (limit, remaining int, reset time.Time, limited bool) {
	if l.limit <= 0 || l.window <= 0 {
		return defaultRateLimit, defaultRateLimit - 1, now.Truncate(time.Minute).Add(time.Minute), false
	}
	if l.start.IsZero() || !now.Before(l.start.Add(l.window)) {
		l.start, l.used = now, 0
	}
	reset = l.start.Add(l.window)
	if l.used >= l.limit {
		return l.limit, 0, reset, true
	}
	l.used++
	return l.limit, l.limit - l.used, reset, false
}

func setRateHeaders(w http.ResponseWriter, limit, remaining int, reset time.Time) {
	h := w.Header()
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	// Round up: a client must not retry before the window has really ended.
	secs := reset.Unix()
	if reset.Nanosecond() > 0 {
		secs++
	}
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(secs, 10))
}

// errorFor maps a status to Okta's error code and summary.
func errorFor(status int) (code, summary string) {
	switch status {
	case http.StatusBadRequest:
		return "E0000001", "Api validation failed"
	case http.StatusUnauthorized:
		return "E0000011", "Invalid token provided"
	case http.StatusForbidden:
		return "E0000006", "You do not have permission to perform the requested action"
	case http.StatusNotFound:
		return "E0000007", "Not found: Resource not found"
	case http.StatusTooManyRequests:
		return "E0000047", "API call exceeded rate limit due to too many requests."
	case http.StatusServiceUnavailable:
		return "E0000010", "Service is in read only mode"
	default:
		return "E0000009", "Internal Server Error"
	}
}
