package scim

import (
	"context"
	"sync"
	"time"
)

// Adaptive client-side rate limiting, after the AWS SDKs' "adaptive" retry mode: the client sends
// freely until AWS throttles it, then sends at a rate that falls multiplicatively on each
// throttling window and climbs back linearly while requests succeed, until it is unlimited again.
// AWS documents no rate for the SCIM endpoint ("Considerations for using automatic provisioning"
// lists no quota; throttling shows up as 429 ThrottlingException), so the rate is learned, never
// configured. One limiter belongs to one Client, and main builds one Client per container, so
// every request of a warm container (groups, users, PATCHes, all goroutines) shares it: under a
// throttling storm the container slows down as a whole instead of each caller retrying harder.
const (
	// limitBeta scales the rate down on throttling (the SDKs use 0.7).
	limitBeta = 0.7
	// limitMinRate is the floor, in requests per second: a throttled client still makes progress.
	limitMinRate = 2.0
	// limitGrowth is how fast the rate climbs back, in requests per second per second without a
	// throttle.
	limitGrowth = 2.0
	// limitMaxRate: at this rate the limiter switches off again.
	limitMaxRate = 50.0
	// limitWindow: throttles closer together than this count as one (one decrease per window, as
	// TCP decreases once per round trip), so a burst of 429s answering one burst of requests does
	// not drive the rate to the floor by itself.
	limitWindow = time.Second
)

// limiter is a token bucket whose rate adapts to throttling. The zero value is unlimited.
type limiter struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu           sync.Mutex
	enabled      bool
	rate         float64   // requests per second while enabled
	base         float64   // rate right after the last decrease
	lastThrottle time.Time // start of the last throttling window
	tokens       float64
	last         time.Time // last refill

	// Measured send rate (requests in the current and previous second), for the decrease.
	sentWindow time.Time
	sentCur    int
	sentPrev   int

	throttleEvents int // decreases, for Stats
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, sleep: sleepCtx}
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
func (l *limiter) wait(ctx context.Context) error {
	for {
		d := l.reserve()
		if d <= 0 {
			return nil
		}
		if err := l.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// reserve takes a token and returns 0, or returns how long to wait before trying again.
func (l *limiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.count(now)
	if !l.enabled {
		return 0
	}
	l.grow(now)
	if !l.enabled {
		return 0
	}
	if !l.last.IsZero() {
		l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, max(1, l.rate))
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0
	}
	// Undo the count: the request did not go.
	l.sentCur--
	return time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
}

// count records a request about to be sent, for the measured rate.
func (l *limiter) count(now time.Time) {
	switch {
	case now.Sub(l.sentWindow) >= 2*time.Second:
		l.sentWindow, l.sentPrev, l.sentCur = now, 0, 0
	case now.Sub(l.sentWindow) >= time.Second:
		l.sentWindow, l.sentPrev, l.sentCur = l.sentWindow.Add(time.Second), l.sentCur, 0
	}
	l.sentCur++
}

// measured is the recent send rate in requests per second.
func (l *limiter) measured(now time.Time) float64 {
	frac := min(1, now.Sub(l.sentWindow).Seconds())
	return float64(l.sentCur) + float64(l.sentPrev)*(1-frac)
}

// grow raises the rate linearly with the time since the last decrease; it switches the limiter
// off once the rate is high enough not to matter. Called with mu held.
func (l *limiter) grow(now time.Time) {
	l.rate = min(limitMaxRate, l.base+limitGrowth*now.Sub(l.lastThrottle).Seconds())
	if l.rate >= limitMaxRate {
		l.enabled = false
	}
}

// throttled is told of every 429: the first of a window lowers the rate to limitBeta times what
// was sent (or what was allowed, when lower), never below limitMinRate.
func (l *limiter) throttled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.enabled && now.Sub(l.lastThrottle) < limitWindow {
		return
	}
	cur := l.measured(now)
	if l.enabled {
		l.grow(now)
		cur = min(cur, l.rate)
	}
	l.base = max(limitMinRate, limitBeta*min(cur, limitMaxRate))
	l.rate = l.base
	if !l.enabled {
		l.tokens, l.last = 0, now
	}
	l.enabled, l.lastThrottle = true, now
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
