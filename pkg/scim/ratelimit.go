package scim

import (
	"context"
	"math"
	"sync"
	"time"
)

// Adaptive client-side rate limiting, after the AWS SDKs' "adaptive" retry mode (botocore
// retries/adaptive.py, throttling.py, bucket.py; aws-sdk-go-v2 v1.47.7 aws/retry/
// adaptive_ratelimit.go: β 0.7, C 0.4, Wmax = min(measured rate, fill rate) on a throttle,
// K = ∛(Wmax·(1−β)/C), fill rate capped at twice the measured rate): the client sends freely until AWS throttles it,
// then sends through a token bucket whose rate falls to limitBeta times the measured rate on a
// throttle and climbs back along CUBIC's curve, rate(t) = C·(t−K)³ + Wmax with
// K = ∛(Wmax·(1−β)/C): fast at first, flat around the rate that was throttled (Wmax), then
// probing above it; at limitMaxRate it is unlimited again. As in the SDK the rate never runs
// ahead of twice the measured rate, so an idle spell does not bank a burst.
//
// AWS's quotas page gives the SCIM APIs per-API throttles per identity store: 25 TPS for each
// write API, 40 TPS for each read API, and a separate membership-operation throttle charged per
// member value of CreateGroup and PatchGroup (docs.aws.amazon.com/singlesignon/latest/userguide/
// limits.html, "IAM Identity Center throttle limits"; the membership rate is not given). A 429
// does not say which budget ran out, so the client keeps one limiter per class, each learning its
// own budget: reads (GET), writes (POST/PATCH/DELETE; cost 1) and membership writes (PATCHes and
// POST /Groups carrying member values, whose cost is the number of values). A membership write
// is a write too and waits on both (see pace). A throttled PATCH then never slows the reads
// down, nor the reads the PATCHes. One Client (one per
// container) shares its limiters among all its callers, so under throttling the container slows
// down as a whole instead of each caller retrying harder.
//
// Where this differs from the SDK, and why:
//   - One decrease per round and per second: a 429 lowers the rate only if its request was sent
//     after the last decrease and a second has passed since (the SDK lowers on every 429, so the
//     answers to one burst, or random 429s that do not follow the rate, drive it to the floor).
//   - Wmax is the rate AWS accepted (answers other than 429) when the limiter was unlimited, not
//     the rate sent: an unlimited client sending 400/s into a 40/s budget starts near 40, not 280.
//   - Later, Wmax is what AWS accepted over the last seconds since the last decrease (its
//     bucket's refill rate, see refill) when that is lower than the rate sent: a client that
//     probed past AWS's rate while AWS's bucket still held tokens does not take that peak for
//     Wmax (unless 429s came too often to follow a rate: a storm).
//   - K lasts at least limitCycleRequests requests (at most limitMaxK) after a measured Wmax,
//     and past K the SDKs' curve probes upwards: the SDKs' K in seconds makes a cycle of ~40
//     requests at 10/s, each ended by a 429 (2.5 %; measured: docs/BENCHMARKS.md, "SCIM
//     throttles"). The SDK keeps no margin below Wmax; neither does this: the slow climb from
//     β·Wmax to Wmax is the margin.
//   - The floor is per class (limitMinRate, limitMembershipFloor), not the SDK's 0.5/s.
const (
	// limitBeta scales the rate down on throttling (the SDKs' 0.7).
	limitBeta = 0.7
	// limitMinRate is the floor, in requests per second: a throttled client still makes progress.
	// 10 is 40 % of AWS's smallest documented SCIM budget (25/s per write API), so the two sync
	// containers the template allows stay under it together at the floor; a lower floor would
	// let 429s that do not follow the rate (a storm) stall the worker.
	limitMinRate = 10.0
	// limitGrowth is CUBIC's scale constant C (the SDKs' 0.4), in requests per second per s³.
	limitGrowth = 0.4
	// limitMaxRate: at this rate the limiter switches off again; well above AWS's 40/s so that
	// probing a default budget never turns into an unlimited burst.
	limitMaxRate = 200.0
	// limitWindow: decreases are at least this far apart (one per second, as before CUBIC).
	limitWindow = time.Second
	// limitCycleRequests: CUBIC's K, the climb from β·Wmax back to Wmax, lasts at least this many
	// requests at Wmax, so that a cycle ended by a 429 holds more than that (see setCycle).
	limitCycleRequests = 100.0
	// limitRefillThrottled: above this share of 429s since the last decrease, what AWS accepted
	// is not taken for its refill rate (see refill).
	limitRefillThrottled = 0.2
	// limitMaxK caps that K, in seconds: a Wmax below AWS's rate is left behind only after K.
	limitMaxK = 15.0
	// limitMembershipFloor is the membership limiter's floor, in member values per second: 5
	// PATCHes of 100 values a second. AWS gives no membership rate; limitMinRate·100 (1,000/s)
	// would be the whole budget if AWS allowed 1,000, leaving the limiter no room below it. Lower
	// floors slow the 429 storm's PATCHes down (measured: 200/s drained it in 10.4 s, 500/s in
	// 7.0 s, 1,000/s in 5.9 s; docs/BENCHMARKS.md).
	limitMembershipFloor = 5 * MaxMembersPerRequest
)

// limiter is a token bucket whose rate adapts to throttling. The zero value is unlimited.
type limiter struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	// scale is the cost of a typical request: the ceiling, CUBIC constant and bucket capacity
	// are multiplied by it (membership writes carry up to 100 values each).
	scale float64
	// floor is the lowest rate, in cost units per second.
	floor float64

	mu           sync.Mutex
	enabled      bool
	rate         float64   // cost units per second while enabled (the fill rate)
	wmax         float64   // CUBIC's Wmax: the rate that was throttled
	k            float64   // CUBIC's K, seconds
	c            float64   // CUBIC's C for this cycle, cost units per second per s³
	lastThrottle time.Time // the last decrease
	tokens       float64
	last         time.Time // last refill

	sent     window // cost sent
	sentN    window // requests sent
	accepted window // cost answered other than 429 (only when the caller reports answers)
	reported bool   // the caller reports answers (accepted is meaningful)
	// acceptedSince is the cost accepted since the last decrease, recent the cost accepted in
	// each of the last seconds: the rate AWS's bucket refills at (see refill).
	acceptedSince float64
	recent        seconds
	// answersSince and throttlesSince count the answers and the 429s since the last decrease.
	answersSince, throttlesSince int

	throttleEvents int // decreases, for Stats
}

// window measures a rate over the current and the previous second.
type window struct {
	start     time.Time
	cur, prev float64
}

func (w *window) add(now time.Time, n float64) {
	w.roll(now)
	w.cur += n
}

func (w *window) roll(now time.Time) {
	switch {
	case now.Sub(w.start) >= 2*time.Second:
		w.start, w.prev, w.cur = now, 0, 0
	case now.Sub(w.start) >= time.Second:
		w.start, w.prev, w.cur = w.start.Add(time.Second), w.cur, 0
	}
}

func (w *window) rate(now time.Time) float64 {
	w.roll(now)
	frac := min(1, now.Sub(w.start).Seconds())
	return w.cur + w.prev*(1-frac)
}

// seconds sums a cost per wall-clock second over the last len(sums) seconds.
type seconds struct {
	sec  int64 // the current second (Unix)
	sums [5]float64
}

func (s *seconds) roll(now time.Time) {
	n := int64(len(s.sums))
	cur := now.Unix()
	if cur-s.sec >= n || cur < s.sec {
		s.sums = [len(s.sums)]float64{}
	} else {
		for sec := s.sec + 1; sec <= cur; sec++ {
			s.sums[sec%n] = 0
		}
	}
	s.sec = cur
}

func (s *seconds) add(now time.Time, v float64) {
	s.roll(now)
	s.sums[s.sec%int64(len(s.sums))] += v
}

// rate returns the cost per second over the seconds held (the current one in part) and how
// many seconds that is.
func (s *seconds) rate(now time.Time) (perSecond, span float64) {
	s.roll(now)
	var sum float64
	for _, v := range s.sums {
		sum += v
	}
	span = float64(len(s.sums)-1) + now.Sub(now.Truncate(time.Second)).Seconds()
	return sum / span, span
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, sleep: sleepCtx, scale: 1, floor: limitMinRate}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wait blocks until the limiter lets one request go, or ctx ends.
func (l *limiter) wait(ctx context.Context) error { return l.waitCost(ctx, 1) }

// waitCost blocks until the limiter lets a request of cost units go (cost ≥ 1), or ctx ends.
func (l *limiter) waitCost(ctx context.Context, cost float64) error {
	for {
		d := l.reserve(cost)
		if d <= 0 {
			return nil
		}
		if err := l.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// reserve takes cost tokens and returns 0, or returns how long to wait before trying again. A
// cost above the bucket's capacity waits for a full bucket.
func (l *limiter) reserve(cost float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.enabled {
		l.sent.add(now, cost)
		l.sentN.add(now, 1)
		return 0
	}
	l.grow(now)
	if !l.enabled {
		l.sent.add(now, cost)
		l.sentN.add(now, 1)
		return 0
	}
	capacity := max(l.scale, l.rate)
	if !l.last.IsZero() {
		l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, capacity)
	}
	l.last = now
	need := min(cost, capacity)
	if l.tokens >= need {
		l.tokens -= need
		l.sent.add(now, cost)
		l.sentN.add(now, 1)
		return 0
	}
	return time.Duration((need - l.tokens) / l.rate * float64(time.Second))
}

// grow sets the fill rate from CUBIC's curve at now, capped at twice the measured send rate, and
// switches the limiter off once the curve passes limitMaxRate. Called with mu held.
func (l *limiter) grow(now time.Time) {
	dt := now.Sub(l.lastThrottle).Seconds() - l.k
	c := l.c // the slow climb to Wmax (see setCycle)
	if dt > 0 {
		c = limitGrowth * l.scale // past Wmax, probe as fast as the SDKs do
	}
	curve := c*dt*dt*dt + l.wmax
	if curve >= limitMaxRate*l.scale {
		l.enabled = false
		return
	}
	l.rate = max(l.floor, min(curve, 2*l.sent.rate(now)))
}

// setCycle sets CUBIC's K and C for the cycle starting now from Wmax. The SDKs' K =
// ∛(Wmax·(1−β)/C) is in seconds, about the same at any rate: at 10 requests/s it is 2 s, so the
// climb back to Wmax and past it takes about 40 requests and the one 429 that ends each cycle is
// 2.5 % of them. After a measured Wmax (see refill) K is therefore at least limitCycleRequests
// requests at Wmax, capped at limitMaxK (at 40/s the SDKs' K is longer already), and C follows
// from K so that the curve still runs from β·Wmax at the throttle to Wmax at K; past K, grow
// probes with the SDKs' C. A Wmax that is a guess (the first burst's) keeps the SDKs' K, so an
// underestimate is left behind within seconds. Called with mu held.
func (l *limiter) setCycle(now time.Time, measured bool) {
	perRequest := l.scale
	if n := l.sentN.rate(now); n > 0 {
		perRequest = max(1, l.sent.rate(now)/n)
	}
	k := math.Cbrt(l.wmax * (1 - limitBeta) / (limitGrowth * l.scale))
	if l.wmax > 0 && measured {
		k = max(k, min(limitMaxK, limitCycleRequests*perRequest/l.wmax))
	}
	l.k = k
	l.c = limitGrowth * l.scale
	if k > 0 {
		l.c = l.wmax * (1 - limitBeta) / (k * k * k)
	}
}

// answered is told of every answer that was not a 429 (cost: the request's), so the rate AWS
// accepts is known when it first throttles.
func (l *limiter) answered(cost float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reported = true
	now := l.now()
	l.accepted.add(now, cost)
	l.recent.add(now, cost)
	l.acceptedSince += cost
	l.answersSince++
}

// refill estimates the rate of AWS's bucket at a 429 from what it accepted: its bucket was empty
// at the last decrease and is empty again now, so what it accepted in between is its refill rate
// over the time (less when the client sent below it meanwhile). Over the last seconds only: a
// long cycle spent below the rate would make the estimate low, and CUBIC recovers from a low
// Wmax slowly. ok is false when the answers are not reported or the interval is under a second.
func (l *limiter) refill(now time.Time) (rate float64, ok bool) {
	el := now.Sub(l.lastThrottle).Seconds()
	if !l.reported || el < limitWindow.Seconds() {
		return 0, false
	}
	if float64(l.throttlesSince) > limitRefillThrottled*float64(l.answersSince) {
		// A bucket refilling at a steady rate throttles the few requests sent past it; this many
		// 429s do not follow the rate (a storm of them), and a slower rate would not avoid them.
		return 0, false
	}
	if r, span := l.recent.rate(now); span < el {
		return r, true
	}
	return l.acceptedSince / el, true
}

// throttled is told of a 429 whose request's send time is unknown: it is taken to have been sent
// limitWindow ago, so throttles closer together than that lower the rate once.
func (l *limiter) throttled() { l.throttledSent(l.now().Add(-limitWindow)) }

// throttledSent is told of a 429 to a request sent at sent. A request sent before the last
// decrease was paced at the old rate and says nothing about the new one: it is ignored, and so is
// any 429 within limitWindow of the last decrease (at most one decrease a second: 429s that do
// not follow the rate, such as a storm of them, must not drive it to the floor). Otherwise
// the rate falls to limitBeta times what was sent (or allowed, when lower; or accepted, when the
// limiter was off), never below the floor.
func (l *limiter) throttledSent(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.answersSince++
	l.throttlesSince++
	if l.enabled && (sent.Before(l.lastThrottle) || now.Sub(l.lastThrottle) < limitWindow) {
		return
	}
	cur := l.sent.rate(now)
	measured := false // cur is AWS's refill rate as measured, not a guess
	if l.enabled {
		l.grow(now)
	}
	if l.enabled {
		cur = min(cur, l.rate)
		if r, ok := l.refill(now); ok && r <= cur {
			cur, measured = r, true
		}
	} else if l.reported {
		cur = min(cur, l.accepted.rate(now))
	}
	cur = min(cur, limitMaxRate*l.scale)
	l.wmax = cur
	l.setCycle(now, measured)
	l.rate = max(l.floor, limitBeta*cur)
	// AWS's bucket is empty now: no burst from saved tokens into it.
	l.tokens, l.last = 0, now
	l.enabled, l.lastThrottle, l.acceptedSince = true, now, 0
	l.answersSince, l.throttlesSince = 0, 0
	l.throttleEvents++
}

// state reports the current rate (0: unlimited) and the decreases so far.
func (l *limiter) state() (rate float64, decreases int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.enabled {
		return 0, l.throttleEvents
	}
	l.grow(l.now())
	if !l.enabled {
		return 0, l.throttleEvents
	}
	return l.rate, l.throttleEvents
}

// Limiter classes: AWS throttles reads, writes and membership operations separately.
const (
	classRead       = "read"
	classWrite      = "write"
	classMembership = "membership"
)

// limiters are a Client's adaptive limiters, one per class.
type limiters struct {
	read, write, membership *limiter
}

func newLimiters(now func() time.Time) *limiters {
	m := newLimiter(now)
	m.scale, m.floor = MaxMembersPerRequest, limitMembershipFloor
	return &limiters{read: newLimiter(now), write: newLimiter(now), membership: m}
}

// pace is one call's share of the limiters: its class's limiter and cost, and for a membership
// write also the write limiter at cost 1. AWS's quotas page charges a PatchGroup or CreateGroup
// call both to that write API's 25 TPS and, per member value, to the separate membership-operation
// throttle (docs.aws.amazon.com/singlesignon/latest/userguide/limits.html, "IAM Identity Center
// throttle limits"): 500 values/s of 10-value PATCHes is 50 PATCHes/s, twice PatchGroup's budget,
// which the membership limiter alone would never see.
type pace struct {
	lim  *limiter
	cost float64
	api  *limiter // membership writes: the write limiter, cost 1; nil otherwise
	// gotAPI: the write token of the attempt under way is taken, the membership one not yet.
	gotAPI bool
}

// of returns a call's pace.
func (ls *limiters) of(method string, members int) *pace {
	switch {
	case method == "GET":
		return &pace{lim: ls.read, cost: 1}
	case members > 0:
		return &pace{lim: ls.membership, cost: float64(members), api: ls.write}
	}
	return &pace{lim: ls.write, cost: 1}
}

// reserve takes the attempt's tokens (the write limiter's first, then its class's) and returns
// 0, or how long to wait before calling it again.
func (p *pace) reserve() time.Duration {
	if p.api != nil && !p.gotAPI {
		if d := p.api.reserve(1); d > 0 {
			return d
		}
		p.gotAPI = true
	}
	if d := p.lim.reserve(p.cost); d > 0 {
		return d
	}
	p.gotAPI = false
	return 0
}

// wait blocks until the attempt may go, or ctx ends.
func (p *pace) wait(ctx context.Context) error {
	for {
		d := p.reserve()
		if d <= 0 {
			return nil
		}
		if err := p.lim.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// answered is told of an answer other than 429.
func (p *pace) answered() {
	p.lim.answered(p.cost)
	if p.api != nil {
		p.api.answered(1)
	}
}

// throttledSent is told of a 429 to the attempt sent at sent. A 429 does not say which budget
// ran out, PatchGroup's or the membership throttle, so a membership write's lowers both
// limiters: both are charged by the same PATCHes, so each falls to β times the rate AWS accepted
// them at, and the one whose budget is not binding stays at or above the binding one (it is
// either at its floor, above the PATCHes' rate, or at the same rate of PATCHes). Guessing one
// instead cannot work from the limiters' state: fed by one stream of PATCHes their accepted rates
// are in the same proportion to their Wmax, and a wrong guess leaves the binding budget unpaced.
// The price: non-member writes (externalId, group creation) slow down with a membership budget
// that ran out, down to the write floor (measured: docs/BENCHMARKS.md, "SCIM throttles").
func (p *pace) throttledSent(sent time.Time) {
	p.lim.throttledSent(sent)
	if p.api != nil {
		p.api.throttledSent(sent)
	}
}
