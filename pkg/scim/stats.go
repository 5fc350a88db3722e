package scim

import (
	"sync/atomic"
	"time"
)

// Operation names, the keys of Stats.Requests.
const (
	OpGetUser                = "GetUser"
	OpFindUserByUserName     = "FindUserByUserName"
	OpFindUserByExternalID   = "FindUserByExternalID"
	OpListUsers              = "ListUsers"
	OpListGroupMembers       = "ListGroupMembers"
	OpFindGroupByDisplayName = "FindGroupByDisplayName"
	OpFindGroupByExternalID  = "FindGroupByExternalID"
	OpGetGroup               = "GetGroup"
	OpCreateGroup            = "CreateGroup"
	OpDeleteGroup            = "DeleteGroup"
	OpIsMember               = "IsMember"
	OpListGroups             = "ListGroups"
	OpAddMembers             = "AddMembers"
	OpRemoveMembers          = "RemoveMembers"
	OpRenameGroup            = "RenameGroup"
	OpSetGroupExternalID     = "SetGroupExternalID"
	OpListUserGroups         = "ListUserGroups"
)

var allOps = []string{
	OpGetUser, OpFindUserByUserName, OpFindUserByExternalID, OpListUsers, OpListGroupMembers,
	OpFindGroupByDisplayName, OpFindGroupByExternalID, OpGetGroup, OpCreateGroup, OpDeleteGroup, OpIsMember, OpListGroups,
	OpAddMembers, OpRemoveMembers, OpRenameGroup, OpSetGroupExternalID, OpListUserGroups,
}

// Stats are the client's counters since New, for metrics (ScimRequests, ScimThrottles,
// ScimRetries, ScimUnauthorized) and benchmarks.
type Stats struct {
	// Requests counts HTTP requests sent per operation, every attempt included (a throttled
	// request retried twice counts 3).
	Requests map[string]int64
	// Throttles counts 429 answers.
	Throttles int64
	// Retries counts re-sent requests: after 429, 5xx, transport errors, and the one re-send
	// after a 401 and a token refresh.
	Retries int64
	// ServerErrors counts 5xx answers.
	ServerErrors int64
	// Unauthorized counts 401 answers.
	Unauthorized int64
	// RetryWait is the total backoff the client chose to wait (not measured wall time).
	RetryWait time.Duration
	// Rate is the lower current rate of the read and write adaptive limiters, in requests per
	// second; 0 means both are unlimited (not throttled lately, or the limiters are off).
	Rate float64
	// Rates are the adaptive limiters' current rates per class ("read", "write": requests per
	// second; "membership": member values per second); 0 means unlimited.
	Rates map[string]float64
	// RateDecreases counts the times throttling lowered a rate, all classes together.
	RateDecreases int
}

// TotalRequests sums Requests over all operations.
func (s Stats) TotalRequests() int64 {
	var n int64
	for _, v := range s.Requests {
		n += v
	}
	return n
}

type stats struct {
	requests     map[string]*atomic.Int64 // fixed key set: read-only map, atomic values
	throttles    atomic.Int64
	retries      atomic.Int64
	serverErrors atomic.Int64
	unauthorized atomic.Int64
	retryWait    atomic.Int64
}

func newStats() stats {
	m := make(map[string]*atomic.Int64, len(allOps))
	for _, op := range allOps {
		m[op] = new(atomic.Int64)
	}
	return stats{requests: m}
}

func (s *stats) request(op string) {
	if n := s.requests[op]; n != nil {
		n.Add(1)
	}
}

// Stats returns a snapshot of the counters. Operations never called are present with 0.
func (c *Client) Stats() Stats {
	out := Stats{
		Requests:     make(map[string]int64, len(c.stats.requests)),
		Throttles:    c.stats.throttles.Load(),
		Retries:      c.stats.retries.Load(),
		ServerErrors: c.stats.serverErrors.Load(),
		Unauthorized: c.stats.unauthorized.Load(),
		RetryWait:    time.Duration(c.stats.retryWait.Load()),
	}
	for op, n := range c.stats.requests {
		out.Requests[op] = n.Load()
	}
	if c.limit != nil {
		out.Rates = map[string]float64{}
		for class, l := range map[string]*limiter{classRead: c.limit.read, classWrite: c.limit.write, classMembership: c.limit.membership} {
			rate, dec := l.state()
			out.Rates[class] = rate
			out.RateDecreases += dec
			if class != classMembership && rate > 0 && (out.Rate == 0 || rate < out.Rate) {
				out.Rate = rate
			}
		}
	}
	return out
}
