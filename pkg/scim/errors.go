package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors callers branch on with errors.Is. An *APIError with the matching status is Is
// the sentinel; Find* functions also return ErrNotFound (without an APIError) when a filter
// matched nothing.
var (
	ErrNotFound     = errors.New("scim: not found")
	ErrConflict     = errors.New("scim: conflict")
	ErrUnauthorized = errors.New("scim: unauthorized")
)

// APIError is a non-2xx answer from the SCIM endpoint.
type APIError struct {
	Status int
	// Detail is AWS's "detail" text.
	Detail string
	// RequestID is x-amzn-RequestId, else the body's exceptionRequestId: quote it to AWS support.
	RequestID string
	// RetryAfter is the server's Retry-After (0 when absent). On a 429 the client returns only
	// after its retries are spent, the context deadline would pass first, or the wait exceeds
	// the backoff cap; the caller may defer the work by this long.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scim: HTTP %d", e.Status)
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is maps statuses to the sentinel errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	}
	return false
}

// errorBody is AWS's error document. status is a string there ("400"); a number is tolerated.
type errorBody struct {
	Detail             string     `json:"detail"`
	Status             flexStatus `json:"status"`
	ExceptionRequestID string     `json:"exceptionRequestId"`
}

type flexStatus int

func (f *flexStatus) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil // an unreadable status is not worth failing the error report for
	}
	*f = flexStatus(n)
	return nil
}

// newAPIError builds the error for resp from its (already read) body. token is removed from
// the detail as defence in depth: a server echoing the Authorization header must not leak it.
func newAPIError(resp *http.Response, body []byte, token string, now time.Time) *APIError {
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("x-amzn-RequestId")}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Detail = eb.Detail
		if e.RequestID == "" {
			e.RequestID = eb.ExceptionRequestID
		}
	} else if len(body) > 0 {
		e.Detail = truncate(strings.TrimSpace(string(body)), 200)
	}
	if token != "" {
		e.Detail = strings.ReplaceAll(e.Detail, token, "[redacted]")
	}
	if e.Detail == "" {
		e.Detail = http.StatusText(resp.StatusCode)
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		// Clamp absurd values instead of overflowing; anything this large ends retrying anyway.
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}
