package okta

import (
	"context"
	"net/http"
	"sync/atomic"
)

// countingTransport counts every HTTP request the SDK makes (each 429 retry too) and tells the call
// that made it what came back. The SDK returns a nil *Response after exhausted 429 retries, so the
// status, Okta request id and attempt count of a failed call are only known here.
type countingTransport struct {
	base     http.RoundTripper
	requests atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	resp, err := t.base.RoundTrip(req)
	// The SDK sends req.WithContext(ctx) with ctx derived from the one the Reader passed, so the
	// call's tracker travels with the request.
	if tr, ok := req.Context().Value(trackerKey{}).(*tracker); ok {
		tr.attempts++
		if resp != nil {
			tr.status = resp.StatusCode
			tr.requestID = resp.Header.Get("X-Okta-Request-Id")
		} else {
			tr.status, tr.requestID = 0, ""
		}
	}
	return resp, err
}

type trackerKey struct{}

// tracker records the HTTP outcome of one SDK call (one page). The SDK runs a call's attempts
// sequentially on the caller's goroutine, so it needs no lock.
type tracker struct {
	attempts  int
	status    int
	requestID string
}

func withTracker(ctx context.Context) (context.Context, *tracker) {
	tr := &tracker{}
	return context.WithValue(ctx, trackerKey{}, tr), tr
}
