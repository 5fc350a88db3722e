package scimtest

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AWS's SCIM throttles, from the quotas page (docs.aws.amazon.com/singlesignon/latest/userguide/
// limits.html, "IAM Identity Center throttle limits", as of 2026): "SCIM APIs have per-API throttle
// limits of 25 transactions per second (TPS) for write APIs and 40 TPS for read APIs. These limits
// apply per Identity Store instance", raisable by a support case, and "Each individual membership
// operation in CreateGroup or PatchGroup calls counts as a transaction toward a separate
// membership operation throttle limit per Identity Store", whose rate the page does not give.
// Earlier versions of the page gave one collective 20 TPS for all SCIM APIs (Limits.Shared).
const (
	// AWSReadTPS is the throttle of each SCIM read API (GET).
	AWSReadTPS = 40
	// AWSWriteTPS is the throttle of each SCIM write API (POST, PATCH, DELETE).
	AWSWriteTPS = 25
)

// Bucket is one token bucket: Rate tokens a second, holding at most Burst. A zero Rate is no limit;
// a zero Burst means one second's worth (Rate), at least 1.
type Bucket struct {
	Rate  float64
	Burst float64
}

func (b Bucket) on() bool { return b.Rate > 0 }

func (b Bucket) burst() float64 {
	if b.Burst > 0 {
		return b.Burst
	}
	return max(1, b.Rate)
}

// Limits are the token buckets the server throttles with. A request takes one token from its
// class's bucket (Read for GET, Write for POST/PATCH/DELETE) and from Shared; a POST /Groups or
// PATCH /Groups/{id} that passed those also takes one Membership token per member value it adds or
// removes, once it is validated and just before it is applied. A PATCH carrying members thus
// costs its write API a token and the membership bucket one per value, as the quotas page has it:
// "Each individual membership operation in CreateGroup or PatchGroup calls counts as a
// transaction toward a separate membership operation throttle limit" besides the call's own
// per-API 25 TPS (docs.aws.amazon.com/singlesignon/latest/userguide/limits.html). A request that finds a bucket short
// takes nothing and is answered 429 ThrottlingException with a Retry-After, and changes nothing.
// The buckets run on Options.Now, so a test that controls the clock controls the throttling.
type Limits struct {
	// Read is the bucket of the read APIs (AWS: AWSReadTPS each).
	Read Bucket
	// Write is the bucket of the write APIs (AWS: AWSWriteTPS each).
	Write Bucket
	// PerAPI gives every route its own Read or Write bucket, as AWS's "per-API throttle limits"
	// read; false makes all routes of a class share one.
	PerAPI bool
	// Membership is charged per member value (AWS: a separate limit of undocumented rate). A
	// request with more values than the burst waits for a full bucket.
	Membership Bucket
	// Shared is one bucket every request takes a token from (the collective 20 TPS of the older
	// quotas page); zero: none.
	Shared Bucket
	// NoRetryAfter sends 429s without a Retry-After header. By default the header carries the
	// whole seconds, rounded up, until the bucket holds enough tokens: AWS has not been seen
	// sending a SCIM 429, and its Identity Store API's ThrottlingException carries
	// RetryAfterSeconds, an integer ("The number of seconds to wait before retrying the next
	// request", IdentityStore API reference).
	NoRetryAfter bool
}

// AWSLimits are the per-API throttles of AWS's quotas page with a burst of one second's worth,
// and no membership limit (its rate is undocumented: set Limits.Membership to model one).
func AWSLimits() Limits {
	return Limits{Read: Bucket{Rate: AWSReadTPS}, Write: Bucket{Rate: AWSWriteTPS}, PerAPI: true}
}

// tokenBucket is a Bucket's state.
type tokenBucket struct {
	cfg    Bucket
	tokens float64
	last   time.Time
}

func newTokenBucket(b Bucket, now time.Time) *tokenBucket {
	return &tokenBucket{cfg: b, tokens: b.burst(), last: now}
}

func (b *tokenBucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.cfg.burst(), b.tokens+dt*b.cfg.Rate)
	}
	b.last = now
}

// short returns how long until the bucket holds n tokens (0: it does now).
func (b *tokenBucket) short(n float64) time.Duration {
	n = min(n, b.cfg.burst())
	if b.tokens >= n {
		return 0
	}
	return time.Duration((n - b.tokens) / b.cfg.Rate * float64(time.Second))
}

// Bucket names for RateLimitedBy.
const (
	BucketRead       = "read"
	BucketWrite      = "write"
	BucketMembership = "membership"
	BucketShared     = "shared"
)

// limiterState is the server's bucket state, under Server.mu.
type limiterState struct {
	cfg     Limits
	buckets map[string]*tokenBucket // "read", "write", "read GET /Users", "membership", "shared"
	limited map[string]int          // 429s per bucket name
	total   int
}

func (l *limiterState) bucket(key string, cfg Bucket, now time.Time) *tokenBucket {
	b := l.buckets[key]
	if b == nil {
		b = newTokenBucket(cfg, now)
		l.buckets[key] = b
	}
	b.refill(now)
	return b
}

// SetLimits replaces the token buckets (full again; the counters are kept); the zero Limits
// switches throttling off.
func (s *Server) SetLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.cfg, s.limits.buckets = l, map[string]*tokenBucket{}
}

// RateLimited returns how many 429s the token buckets answered (Throttled counts them too, with
// the injected ones).
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits.total
}

// RateLimitedBy returns how many 429s one bucket class answered: BucketRead, BucketWrite,
// BucketMembership or BucketShared.
func (s *Server) RateLimitedBy(bucket string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits.limited[bucket]
}

func classOf(route string) string {
	if strings.HasPrefix(route, http.MethodGet+" ") {
		return BucketRead
	}
	return BucketWrite
}

// takeLocked takes cost tokens from every named bucket, or none: it returns the 429 to answer
// when one is short.
func (s *Server) takeLocked(cost float64, keys []string, cfgs []Bucket, names []string) *apiError {
	now := s.now()
	l := &s.limits
	var wait time.Duration
	short := ""
	bs := make([]*tokenBucket, len(keys))
	for i, k := range keys {
		bs[i] = l.bucket(k, cfgs[i], now)
		if d := bs[i].short(cost); d > 0 && d >= wait {
			wait, short = d, names[i]
		}
	}
	if short != "" {
		l.limited[short]++
		l.total++
		e := &apiError{status: http.StatusTooManyRequests, detail: detailThrottled}
		if !l.cfg.NoRetryAfter {
			e.retryAfter = strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
		}
		return e
	}
	for _, b := range bs {
		b.tokens -= min(cost, b.cfg.burst())
	}
	return nil
}

// limitRequest applies the request-level buckets (class and shared) to one request.
func (s *Server) limitRequest(route string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.limits.cfg
	var keys, names []string
	var cfgs []Bucket
	class := classOf(route)
	if b := map[string]Bucket{BucketRead: cfg.Read, BucketWrite: cfg.Write}[class]; b.on() {
		key := class
		if cfg.PerAPI {
			key += " " + route
		}
		keys, cfgs, names = append(keys, key), append(cfgs, b), append(names, class)
	}
	if cfg.Shared.on() {
		keys, cfgs, names = append(keys, BucketShared), append(cfgs, cfg.Shared), append(names, BucketShared)
	}
	if len(keys) == 0 {
		return nil
	}
	return s.takeLocked(1, keys, cfgs, names)
}

// limitMembersLocked charges n member values to the membership bucket.
func (s *Server) limitMembersLocked(n int) *apiError {
	b := s.limits.cfg.Membership
	if n == 0 || !b.on() {
		return nil
	}
	return s.takeLocked(float64(n), []string{BucketMembership}, []Bucket{b}, []string{BucketMembership})
}
