package oktahook

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"strings"
)

// ChallengeHeader carries the one-time verification challenge on Okta's GET. HTTP header names
// are case-insensitive and API Gateway passes them as the client sent them.
const ChallengeHeader = "X-Okta-Verification-Challenge"

// RequestIDHeader is Okta's id for one outbound request; worth logging to match Okta's System Log.
const RequestIDHeader = "X-Okta-Request-Id"

// Header returns the value of header name from API Gateway's header maps, matching the name in
// any case. single is consulted first (API Gateway puts the last value there), then multi.
func Header(single map[string]string, multi map[string][]string, name string) (string, bool) {
	if v, ok := single[name]; ok {
		return v, true
	}
	for k, v := range single {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	for k, vs := range multi {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[len(vs)-1], true
		}
	}
	return "", false
}

// Challenge returns the verification challenge of a request, if it carries one.
func Challenge(single map[string]string, multi map[string][]string) (string, bool) {
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
