package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Limits of AWS's SCIM endpoint the client respects.
const (
	// MaxPageSize is the largest count AWS accepts on list requests.
	MaxPageSize = 100
	// MaxMembersPerRequest is the most member values AWS accepts in one PATCH (and in the
	// members of one POST /Groups).
	MaxMembersPerRequest = 100
)

// Defaults for the retry policy.
const (
	DefaultMaxRetries = 5
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 20 * time.Second
	defaultUserAgent  = "okta-aws-sso-sync"
	maxResponseBytes  = 10 << 20
)

// TokenFunc returns the SCIM bearer token. refresh is true after a 401: the provider should
// bypass its cache (re-read the secret), since the token was rotated or expired.
type TokenFunc func(ctx context.Context, refresh bool) (string, error)

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the underlying HTTP client (timeouts, transport). Default: a pooled
// client with a 30 s timeout per attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("nil http client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithMaxRetries sets how many times a throttled (429), failed (5xx) or unreachable request is
// re-sent. The single re-send after a 401 and a token refresh is not counted here.
func WithMaxRetries(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("max retries %d < 0", n)
		}
		c.maxRetries = n
		return nil
	}
}

// WithBackoff sets the exponential backoff bounds: attempt n waits a uniformly random time in
// [min, min·2ⁿ] capped at max ("full jitter" above the floor). A Retry-After longer than max
// is not waited for: the client returns the *APIError and the caller defers the work.
func WithBackoff(min, max time.Duration) Option {
	return func(c *Client) error {
		if min < 0 || max < min {
			return fmt.Errorf("backoff bounds min %s max %s", min, max)
		}
		c.minWait, c.maxWait = min, max
		return nil
	}
}

// WithLogger sets the logger for retries (debug) and give-ups (warn). Tokens and headers are
// never logged. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.log = l
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// WithRandSeed makes the backoff jitter deterministic (tests).
func WithRandSeed(seed uint64) Option {
	return func(c *Client) error {
		c.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		return nil
	}
}

// WithPageSize sets count on list requests, 1 to MaxPageSize (default MaxPageSize).
func WithPageSize(n int) Option {
	return func(c *Client) error {
		if n < 1 || n > MaxPageSize {
			return fmt.Errorf("page size %d outside 1..%d", n, MaxPageSize)
		}
		c.pageSize = n
		return nil
	}
}

// WithThrottleRetries sets how many times a throttled (429) request is re-sent, counting the
// other retries of the same request; default: the same as WithMaxRetries. AWS answers 429 while it
// works, so a caller with a deadline (a Lambda invocation) can afford more throttle retries than
// outage retries: the context deadline still ends them, never a sleep past it.
func WithThrottleRetries(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("throttle retries %d < 0", n)
		}
		c.throttleRetries = n
		return nil
	}
}

// WithAdaptiveRate turns the client-side adaptive rate limiters (see ratelimit.go) on or off
// (default on). Off is for tests that count requests against a fault schedule and must not wait.
func WithAdaptiveRate(on bool) Option {
	return func(c *Client) error {
		c.adaptive = on
		return nil
	}
}

// withClock replaces the clock used for deadline checks and HTTP-date Retry-After (tests).
func withClock(now func() time.Time) Option {
	return func(c *Client) error {
		c.now = now
		return nil
	}
}

// Client talks to AWS IAM Identity Center's SCIM endpoint. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	token      TokenFunc
	httpClient *http.Client
	maxRetries int
	// throttleRetries bounds the retries of a request answered 429; -1: maxRetries.
	throttleRetries int
	minWait         time.Duration
	maxWait         time.Duration
	log             *slog.Logger
	userAgent       string
	pageSize        int
	now             func() time.Time

	rndMu sync.Mutex
	rnd   *rand.Rand

	adaptive bool
	limit    *limiters // nil when adaptive is off

	stats stats
}

// New returns a client for baseURL, e.g. https://scim.eu-west-1.amazonaws.com/<tenant>/scim/v2
// (http:// is accepted for local emulators).
func New(baseURL string, token TokenFunc, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("scim: parse base URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("scim: base URL %q: want http(s)://host/path", baseURL)
	}
	if token == nil {
		return nil, errors.New("scim: nil token func")
	}
	c := &Client{
		base:            u,
		token:           token,
		httpClient:      &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport},
		maxRetries:      DefaultMaxRetries,
		throttleRetries: -1,
		minWait:         DefaultMinBackoff,
		maxWait:         DefaultMaxBackoff,
		log:             slog.New(slog.DiscardHandler),
		userAgent:       defaultUserAgent,
		pageSize:        MaxPageSize,
		now:             time.Now,
		rnd:             rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		stats:           newStats(),
		adaptive:        true,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("scim: %w", err)
		}
	}
	if c.adaptive {
		c.limit = newLimiters(c.now)
	}
	return c, nil
}

// call is one logical request (with its retries).
type call struct {
	op     string
	method string
	path   string // below the base path, already escaped
	query  string // already encoded
	body   any    // marshalled as JSON when not nil
	out    any    // decoded from a 2xx body when not nil
	// members is the number of member values the request adds or removes: AWS charges each
	// to its membership-operation throttle.
	members int
}

// result is what a successful call reports besides the decoded body.
type result struct {
	requestID string
	status    int
}

// attempt is the per-call retry state shared by the retryablehttp hooks.
type attempt struct {
	c         *Client
	op        string
	token     string
	refreshed bool
	retries   int
	wait      time.Duration

	pace   *pace // the call's adaptive limiters; nil when adaptive is off
	sentAt time.Time
}

func (c *Client) do(ctx context.Context, cl call) (result, error) {
	tok, err := c.token(ctx, false)
	if err != nil {
		return result{}, fmt.Errorf("get token: %w", err)
	}
	var raw []byte
	if cl.body != nil {
		if raw, err = marshal(cl.body); err != nil {
			return result{}, fmt.Errorf("encode body: %w", err)
		}
	}
	u := c.base.String() + cl.path
	if cl.query != "" {
		u += "?" + cl.query
	}
	var body any
	if raw != nil {
		body = raw
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return result{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	a := &attempt{c: c, op: cl.op, token: tok}
	if c.limit != nil {
		a.pace = c.limit.of(cl.method, cl.members)
	}
	// One retryablehttp client per call so the hooks see this call's state (attempt count,
	// refreshed token, chosen wait); the HTTP client and its connection pool are shared.
	rc := &retryablehttp.Client{
		HTTPClient: c.httpClient,
		Logger:     nil, // retryablehttp must not log: its lines would bypass our redaction
		// Our CheckRetry enforces maxRetries; this bound only has to let it (+1 for the
		// re-send after a token refresh).
		RetryMax:     c.maxRetries + 1,
		RetryWaitMin: c.minWait,
		RetryWaitMax: c.maxWait,
		CheckRetry:   a.checkRetry,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return a.wait },
		// Called before every attempt, retries included: the shared adaptive limiters of the
		// call (its class's; a membership write's also the write one) decide when it may go. A context ending meanwhile fails the attempt itself.
		RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, _ int) {
			if a.pace != nil {
				_ = a.pace.wait(r.Context())
				a.sentAt = c.now()
			}
		},
		PrepareRetry: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+a.token)
			return nil
		},
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if err != nil && resp != nil {
				drain(resp.Body)
				resp = nil
			}
			return resp, err
		},
	}
	resp, err := rc.Do(req)
	if err != nil {
		return result{}, c.scrub(err, a.token, tok)
	}
	defer drain(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return result{}, fmt.Errorf("read response: %w", c.scrub(err, a.token, tok))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := newAPIError(resp, data, a.token, c.now())
		// 404/409 are answers callers expect and branch on; give-ups after 401, 429 and 5xx
		// are what an operator needs to see.
		level := slog.LevelDebug
		if ClassOf(resp.StatusCode).Transient() || resp.StatusCode == http.StatusNotImplemented {
			level = slog.LevelWarn
		}
		c.log.LogAttrs(ctx, level, "scim request failed",
			slog.String("op", cl.op), slog.Int("status", apiErr.Status),
			slog.String("request_id", apiErr.RequestID), slog.Int("retries", a.retries))
		if resp.StatusCode == http.StatusUnauthorized {
			return result{}, fmt.Errorf("%w after token refresh: %w", ErrUnauthorized, apiErr)
		}
		return result{}, apiErr
	}
	res := result{requestID: resp.Header.Get("x-amzn-RequestId"), status: resp.StatusCode}
	if cl.out != nil {
		if err := json.Unmarshal(data, cl.out); err != nil {
			return res, fmt.Errorf("decode response (request id %s): %w", res.requestID, err)
		}
	}
	return res, nil
}

// checkRetry decides after every attempt: count it, refresh the token once on 401, retry 429,
// 5xx and transport errors within maxRetries and the context deadline.
func (a *attempt) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	c := a.c
	c.stats.request(a.op)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		// retryablehttp's default policy knows which transport errors are permanent
		// (bad scheme, TLS verification, too many redirects).
		if retry, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err); !retry {
			return false, nil
		}
		return a.schedule(ctx, nil)
	}
	if a.pace != nil && resp.StatusCode != http.StatusTooManyRequests {
		a.pace.answered()
	}
	switch ClassOf(resp.StatusCode) {
	case StatusUnauthorized:
		c.stats.unauthorized.Add(1)
		if a.refreshed {
			return false, nil
		}
		tok, terr := c.token(ctx, true)
		if terr != nil {
			drain(resp.Body)
			return false, fmt.Errorf("refresh token after 401: %w", terr)
		}
		a.token, a.refreshed, a.wait = tok, true, 0
		c.stats.retries.Add(1)
		return true, nil
	case StatusThrottled:
		c.stats.throttles.Add(1)
		if a.pace != nil {
			a.pace.throttledSent(a.sentAt)
		}
		return a.schedule(ctx, resp)
	case StatusServer:
		c.stats.serverErrors.Add(1)
		return a.schedule(ctx, resp)
	}
	return false, nil
}

// schedule picks the wait before the next attempt, or gives up (returning the last response to
// the caller) when retries are spent, Retry-After exceeds the cap, or the wait would end past
// the context deadline: sleeping into a Lambda timeout helps nobody.
func (a *attempt) schedule(ctx context.Context, resp *http.Response) (bool, error) {
	c := a.c
	limit := c.maxRetries
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests && c.throttleRetries >= 0 {
		limit = c.throttleRetries
	}
	if a.retries >= limit {
		return false, nil
	}
	wait := c.backoff(a.retries)
	if resp != nil {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			if ra > c.maxWait {
				c.log.LogAttrs(ctx, slog.LevelDebug, "scim retry-after exceeds backoff cap",
					slog.String("op", a.op), slog.Duration("retry_after", ra))
				return false, nil
			}
			wait = max(wait, ra)
			if resp.StatusCode == http.StatusTooManyRequests {
				// A throttle's Retry-After is the wait, as in retryablehttp's DefaultBackoff: the
				// adaptive limiter, not the backoff, slows a throttled client down.
				wait = ra
			}
		}
	}
	if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "scim retry would pass the deadline",
			slog.String("op", a.op), slog.Duration("wait", wait))
		return false, nil
	}
	a.wait = wait
	a.retries++
	c.stats.retries.Add(1)
	c.stats.retryWait.Add(int64(wait))
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "scim retry",
		slog.String("op", a.op), slog.Int("status", status), slog.Int("attempt", a.retries),
		slog.Duration("wait", wait))
	return true, nil
}

// backoff is exponential with jitter: uniform in [min, min·2ⁿ], capped at max.
func (c *Client) backoff(n int) time.Duration {
	hi := c.minWait
	for i := 0; i < n && hi < c.maxWait; i++ {
		hi *= 2
	}
	hi = min(hi, c.maxWait)
	if hi <= c.minWait {
		return c.minWait
	}
	c.rndMu.Lock()
	j := c.rnd.Int64N(int64(hi-c.minWait) + 1)
	c.rndMu.Unlock()
	return c.minWait + time.Duration(j)
}

// scrub removes bearer tokens from an error's text. Transport errors never carry headers, but
// this keeps the promise independent of what the HTTP stack prints.
func (c *Client) scrub(err error, tokens ...string) error {
	msg := err.Error()
	leaked := false
	for _, t := range tokens {
		if t != "" && strings.Contains(msg, t) {
			msg = strings.ReplaceAll(msg, t, "[redacted]")
			leaked = true
		}
	}
	if !leaked {
		return err
	}
	return errors.New(msg)
}

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	_ = rc.Close()
}

// marshal encodes without HTML escaping so bodies carry names as written (golden files pin it).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
