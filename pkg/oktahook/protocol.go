package oktahook

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"
)

// ChallengeHeader carries the one-time verification challenge on Okta's GET. HTTP header names
// are case-insensitive and API Gateway passes them as the client sent them.
const ChallengeHeader = "X-Okta-Verification-Challenge"

// RequestIDHeader is Okta's id for one outbound request; worth logging to match Okta's System Log.
const RequestIDHeader = "X-Okta-Request-Id"

// Errors returned by Header and Challenge.
var (
	// ErrHeaderMissing: no spelling of the header carries a value.
	ErrHeaderMissing = errors.New("header missing")
	// ErrHeaderAmbiguous: several spellings of the header carry different values.
	ErrHeaderAmbiguous = errors.New("header ambiguous")
)

// Header returns the value of header name from API Gateway's header maps, matching the name in
// any case. For each spelling, single decides (API Gateway puts the last of repeated values
// there), else the last value in multi. When several spellings carry different values, the
// header is ambiguous: choosing one would depend on Go's map order (the same request would be
// accepted or refused at random), and Okta sends each header once, so a request like that did
// not come from Okta. The same value under several spellings is fine. Errors never contain a
// header value.
func Header(single map[string]string, multi map[string][]string, name string) (string, error) {
	var value string
	found, ambiguous := false, false
	seen := func(v string) {
		if found && v != value {
			ambiguous = true
		}
		value, found = v, true
	}
	for k, v := range single {
		if strings.EqualFold(k, name) {
			seen(v)
		}
	}
	for k, vs := range multi {
		if !strings.EqualFold(k, name) || len(vs) == 0 {
			continue
		}
		if _, inSingle := single[k]; !inSingle {
			seen(vs[len(vs)-1])
		}
	}
	switch {
	case ambiguous:
		return "", ErrHeaderAmbiguous
	case !found:
		return "", ErrHeaderMissing
	}
	return value, nil
}

// Challenge returns the verification challenge of a request, under the rules of Header.
func Challenge(single map[string]string, multi map[string][]string) (string, error) {
	return Header(single, multi, ChallengeHeader)
}

// VerificationBody is the JSON Okta expects in reply to a verification challenge.
func VerificationBody(challenge string) []byte {
	b, err := json.Marshal(struct {
		Verification string `json:"verification"`
	}{challenge})
	if err != nil {
		// Marshalling a struct of one string cannot fail.
		return []byte(`{"verification":""}`)
	}
	return b
}

// Authorized reports whether presented equals the configured shared secret. Okta sends the
// secret itself (not a signature), so the comparison must not leak it through timing: both sides
// are hashed to fixed-length digests first, so neither content nor length shows in the time taken.
// An empty configured secret never matches: a missing secret must not open the hook.
func Authorized(presented, configured string) bool {
	if configured == "" {
		return false
	}
	p := sha256.Sum256([]byte(presented))
	c := sha256.Sum256([]byte(configured))
	return subtle.ConstantTimeCompare(p[:], c[:]) == 1
}
