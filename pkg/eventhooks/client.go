// Package eventhooks registers okta-aws-sso-sync's Okta event hook through Okta's Event Hooks
// Management API and checks an existing one: create or update it (idempotent), verify and activate
// it, and list what a hook lacks. cmd/okta-hook is its command.
//
// The API, from Okta's reference (developer.okta.com/docs/api/openapi/okta-management/management/
// tag/EventHook/; developer.okta.com/docs/reference/api/event-hooks/):
//
//	GET  /api/v1/eventHooks                          list (no paging documented)
//	POST /api/v1/eventHooks                          create; the hook starts ACTIVE and UNVERIFIED
//	PUT  /api/v1/eventHooks/{id}                     replace; a changed channel must be verified again
//	POST /api/v1/eventHooks/{id}/lifecycle/verify    Okta sends the challenge GET; 400 if the hook fails it
//	POST /api/v1/eventHooks/{id}/lifecycle/activate
//
// A hook is {name, status ACTIVE|INACTIVE, verificationStatus VERIFIED|UNVERIFIED, events {type:
// EVENT_TYPE, items: [...]}, channel {type: HTTP, version: 1.0.0, config {uri, headers [{key, value}],
// authScheme {type: HEADER, key, value}}}}. authScheme.value "is not returned in the response", so
// whether Okta holds the current secret cannot be read back; Verify proves it (the hook refuses a
// verification GET without the right auth header), and Apply with Rotate sends it again.
//
// Plain net/http rather than okta-sdk-golang's EventHookResource: five calls, and the SDK's
// configuration layering (~/.okta/okta.yaml, OKTA_CLIENT_* env, its cache; see pkg/okta) would need
// the same guards as pkg/okta's Reader for no gain.
package eventhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Hook is Okta's event hook object.
type Hook struct {
	ID                 string     `json:"id,omitempty"`
	Name               string     `json:"name"`
	Status             string     `json:"status,omitempty"`
	VerificationStatus string     `json:"verificationStatus,omitempty"`
	Created            *time.Time `json:"created,omitempty"`
	LastUpdated        *time.Time `json:"lastUpdated,omitempty"`
	Events             Events     `json:"events"`
	Channel            Channel    `json:"channel"`
}

// Events is the hook's subscription.
type Events struct {
	Type  string   `json:"type"` // EVENT_TYPE
	Items []string `json:"items"`
}

// Channel is where and how Okta delivers.
type Channel struct {
	Type    string        `json:"type"`    // HTTP
	Version string        `json:"version"` // 1.0.0
	Config  ChannelConfig `json:"config"`
}

// ChannelConfig holds the URL and the headers Okta sends.
type ChannelConfig struct {
	URI        string      `json:"uri"`
	Headers    []Header    `json:"headers,omitempty"`
	AuthScheme *AuthScheme `json:"authScheme,omitempty"`
}

// Header is a custom header Okta sends with every delivery (x-api-key for API Gateway).
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// AuthScheme is the auth header: Okta sends Value in the header named Key.
type AuthScheme struct {
	Type  string `json:"type"` // HEADER
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// Format redacts the value under every fmt verb; JSON encoding (the request body) is unaffected.
func (h Header) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "{%s: %s}", h.Key, redacted(h.Value))
}

// Format redacts the value under every fmt verb.
func (a AuthScheme) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "{%s %s: %s}", a.Type, a.Key, redacted(a.Value))
}

func redacted(v string) string {
	if v == "" {
		return "empty"
	}
	return "redacted"
}

// Lifecycle states Okta reports.
const (
	StatusActive       = "ACTIVE"
	StatusInactive     = "INACTIVE"
	StatusVerified     = "VERIFIED"
	StatusUnverified   = "UNVERIFIED"
	EventTypeSubscribe = "EVENT_TYPE"
	ChannelHTTP        = "HTTP"
	ChannelVersion     = "1.0.0"
	AuthHeaderScheme   = "HEADER"
)

// APIError is an Okta error answer. Its text never contains the API token or a hook secret.
type APIError struct {
	Op        string
	Status    int
	Code      string   // errorCode, e.g. E0000001
	Summary   string   // errorSummary
	Causes    []string // errorCauses[].errorSummary
	RequestID string   // X-Okta-Request-Id
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "okta %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Summary != "" {
		b.WriteString(" " + e.Summary)
	}
	if len(e.Causes) > 0 {
		b.WriteString(" (" + strings.Join(e.Causes, "; ") + ")")
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// ErrUnauthorized matches an APIError with status 401 or 403 (errors.Is).
var ErrUnauthorized = errors.New("okta: API token rejected or lacks the permission to manage event hooks")

// Is matches ErrUnauthorized.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// Client calls the Event Hooks API with an SSWS token. Safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	// token and scrub are closures, so that printing a Client cannot show the token.
	token func() string
	scrub func(string) string
	// MaxRetries after a 429 (Okta's X-Rate-Limit-Reset says when the window ends).
	maxRetries int
	maxWait    time.Duration
}

// NewClient returns a client for orgURL (https://<org>.okta.com; http:// only for local fakes).
// secrets are more values (the hook's auth value, the API key) that must never appear in an error.
func NewClient(orgURL, token string, hc *http.Client, secrets ...string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(orgURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("okta org URL %q: want https://<org>.okta.com", orgURL)
	}
	if u.Path != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("okta org URL %q: want the org's base URL without a path", orgURL)
	}
	if token == "" {
		return nil, errors.New("okta API token is empty")
	}
	if strings.ContainsAny(token, "\r\n\t ") {
		return nil, errors.New("okta API token contains whitespace")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	all := append([]string{token}, secrets...)
	return &Client{
		base: u, hc: hc,
		token:      func() string { return token },
		scrub:      Scrubber(all...),
		maxRetries: 3,
		maxWait:    30 * time.Second,
	}, nil
}

// Scrubber returns a function that replaces every non-empty secret in a text with "[redacted]".
func Scrubber(secrets ...string) func(string) string {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// List returns every event hook of the org.
func (c *Client) List(ctx context.Context) ([]Hook, error) {
	var out []Hook
	err := c.do(ctx, "list event hooks", http.MethodGet, "/api/v1/eventHooks", nil, &out)
	return out, err
}

// Create registers a hook.
func (c *Client) Create(ctx context.Context, h Hook) (Hook, error) {
	var out Hook
	err := c.do(ctx, "create event hook", http.MethodPost, "/api/v1/eventHooks", h, &out)
	return out, err
}

// Update replaces hook id with h.
func (c *Client) Update(ctx context.Context, id string, h Hook) (Hook, error) {
	var out Hook
	err := c.do(ctx, "update event hook "+id, http.MethodPut, "/api/v1/eventHooks/"+url.PathEscape(id), h, &out)
	return out, err
}

// Verify makes Okta send the verification GET to the hook; an error when the hook fails it.
func (c *Client) Verify(ctx context.Context, id string) (Hook, error) {
	var out Hook
	err := c.do(ctx, "verify event hook "+id, http.MethodPost, "/api/v1/eventHooks/"+url.PathEscape(id)+"/lifecycle/verify", nil, &out)
	return out, err
}

// Activate sets the hook ACTIVE.
func (c *Client) Activate(ctx context.Context, id string) (Hook, error) {
	var out Hook
	err := c.do(ctx, "activate event hook "+id, http.MethodPost, "/api/v1/eventHooks/"+url.PathEscape(id)+"/lifecycle/activate", nil, &out)
	return out, err
}

func (c *Client) do(ctx context.Context, op, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("okta %s: encode: %w", op, err)
		}
		raw = b
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("okta %s: %s", op, c.scrub(err.Error()))
		}
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "SSWS "+c.token())
		resp, err := c.hc.Do(req)
		if err != nil {
			// url.Error names the URL, never headers; scrub anyway.
			return fmt.Errorf("okta %s: %s", op, c.scrub(err.Error()))
		}
		data, rerr := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if rerr != nil {
			return fmt.Errorf("okta %s: read answer: %s", op, c.scrub(rerr.Error()))
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < c.maxRetries {
			if err := sleep(ctx, c.retryWait(resp)); err != nil {
				return fmt.Errorf("okta %s: %w", op, err)
			}
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return c.apiError(op, resp, data)
		}
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("okta %s: answer is not an event hook JSON (%d bytes)", op, len(data))
		}
		return nil
	}
}

// retryWait is X-Rate-Limit-Reset minus the server's Date, plus a second, capped: the wait
// okta-sdk-golang uses too.
func (c *Client) retryWait(resp *http.Response) time.Duration {
	reset, err := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		return time.Second
	}
	now := time.Now()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		now = d
	}
	w := time.Unix(reset, 0).Sub(now) + time.Second
	if w < 0 {
		w = 0
	}
	return min(w, c.maxWait)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *Client) apiError(op string, resp *http.Response, data []byte) error {
	e := &APIError{Op: op, Status: resp.StatusCode, RequestID: resp.Header.Get("X-Okta-Request-Id")}
	var body struct {
		ErrorCode    string `json:"errorCode"`
		ErrorSummary string `json:"errorSummary"`
		ErrorCauses  []struct {
			ErrorSummary string `json:"errorSummary"`
		} `json:"errorCauses"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Summary = c.scrub(body.ErrorCode), c.scrub(body.ErrorSummary)
		for _, cause := range body.ErrorCauses {
			if cause.ErrorSummary != "" {
				e.Causes = append(e.Causes, c.scrub(cause.ErrorSummary))
			}
		}
	} else if len(data) > 0 {
		// A secret cut by the truncation could survive a scrub of the cut text: scrub first.
		e.Summary = strings.TrimSpace(c.scrub(string(data)))
		if len(e.Summary) > 200 {
			e.Summary = e.Summary[:200]
		}
	}
	return e
}
