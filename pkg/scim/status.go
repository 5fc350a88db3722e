package scim

import (
	"errors"
	"net/http"
)

// StatusClass is what an HTTP status from the SCIM endpoint means for whoever sent the request.
// It is the one classification of SCIM statuses: the client's retry policy and log level, the
// sync worker's failure classes and the applier's per-user fallback all read it.
type StatusClass int

const (
	// StatusSuccess: 2xx.
	StatusSuccess StatusClass = iota
	// StatusThrottled: 429. AWS throttles per API (25 TPS writes, 40 TPS reads per identity
	// store); the request may be re-sent after Retry-After.
	StatusThrottled
	// StatusUnauthorized: 401, the bearer token was rejected (expired, deleted, wrong). Not the
	// request's fault and not the service's: the token is refreshed once, then every request of
	// the invocation is pointless.
	StatusUnauthorized
	// StatusServer: 5xx except 501. The service failed; the same request may succeed later.
	StatusServer
	// StatusRequest: any other status (4xx other than 401 and 429; 501, which AWS answers for an
	// operation it does not implement, and re-sending the same request cannot change that). The
	// request itself is the problem: re-sending it unchanged is pointless.
	StatusRequest
)

// ClassOf classifies an HTTP status code.
func ClassOf(code int) StatusClass {
	switch {
	case code >= 200 && code <= 299:
		return StatusSuccess
	case code == http.StatusTooManyRequests:
		return StatusThrottled
	case code == http.StatusUnauthorized:
		return StatusUnauthorized
	case code >= 500 && code != http.StatusNotImplemented:
		return StatusServer
	}
	return StatusRequest
}

// Transient reports whether a request answered with this class may succeed when sent again later
// unchanged (throttling, a server error, a token that a rotation may fix).
func (c StatusClass) Transient() bool {
	return c == StatusThrottled || c == StatusServer || c == StatusUnauthorized
}

// StatusOf returns the HTTP status of the *APIError in err's chain, or 0 when there is none (a
// transport error, an ended context, a local error).
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}
