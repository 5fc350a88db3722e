package oktahook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestHeader(t *testing.T) {
	tests := []struct {
		name   string
		single map[string]string
		multi  map[string][]string
		want   string
		err    error
	}{
		{"exact", map[string]string{"X-Okta-Verification-Challenge": "c1"}, nil, "c1", nil},
		{"lower case", map[string]string{"x-okta-verification-challenge": "c2"}, nil, "c2", nil},
		{"upper case", map[string]string{"X-OKTA-VERIFICATION-CHALLENGE": "c3"}, nil, "c3", nil},
		{"only multi", nil, map[string][]string{"x-okta-verification-challenge": {"first", "last"}}, "last", nil},
		{"single decides over multi of the same spelling", map[string]string{"x-okta-verification-challenge": "s"}, map[string][]string{"x-okta-verification-challenge": {"m"}}, "s", nil},
		{"single and multi of the same spelling, as API Gateway sends them", map[string]string{"X-Okta-Verification-Challenge": "b"}, map[string][]string{"X-Okta-Verification-Challenge": {"a", "b"}}, "b", nil},
		{"empty value is present", map[string]string{"x-okta-verification-challenge": ""}, nil, "", nil},
		{"empty multi list is absent", nil, map[string][]string{"x-okta-verification-challenge": {}}, "", ErrHeaderMissing},
		{"absent", map[string]string{"Authorization": "x"}, map[string][]string{"Accept": {"application/json"}}, "", ErrHeaderMissing},
		{"nil maps", nil, nil, "", ErrHeaderMissing},
		{"prefix is not a match", map[string]string{"x-okta-verification-challenge-2": "no"}, nil, "", ErrHeaderMissing},
		// Several spellings: fine when they agree, ambiguous when they do not.
		{"same value under three spellings", map[string]string{"x-okta-verification-challenge": "c", "X-OKTA-VERIFICATION-CHALLENGE": "c"}, map[string][]string{"X-Okta-Verification-Challenge": {"c"}}, "c", nil},
		{"two spellings in single", map[string]string{"X-OKTA-VERIFICATION-CHALLENGE": "a", "x-okta-verification-challenge": "b"}, nil, "", ErrHeaderAmbiguous},
		{"exact spelling does not outrank another", map[string]string{"X-Okta-Verification-Challenge": "a", "x-okta-verification-challenge": "b"}, nil, "", ErrHeaderAmbiguous},
		{"two spellings in multi", nil, map[string][]string{"X-OKTA-VERIFICATION-CHALLENGE": {"a"}, "x-okta-verification-challenge": {"b"}}, "", ErrHeaderAmbiguous},
		{"one spelling in single, another in multi", map[string]string{"x-okta-verification-challenge": "s"}, map[string][]string{"X-Okta-Verification-Challenge": {"m"}}, "", ErrHeaderAmbiguous},
		{"empty value against a value", map[string]string{"x-okta-verification-challenge": ""}, map[string][]string{"X-Okta-Verification-Challenge": {"m"}}, "", ErrHeaderAmbiguous},
		{"multi's earlier values do not count", map[string]string{"x-okta-verification-challenge": "b"}, map[string][]string{"X-Okta-Verification-Challenge": {"a", "b"}}, "b", nil},
		{"an empty multi list of another spelling does not count", map[string]string{"x-okta-verification-challenge": "c"}, map[string][]string{"X-Okta-Verification-Challenge": {}}, "c", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Challenge(tt.single, tt.multi)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Challenge = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// The answer for conflicting spellings must not depend on Go's randomised map order: before it
// was ambiguous, Header returned whichever spelling the iteration met first.
func TestHeaderAmbiguityIsDeterministic(t *testing.T) {
	for i := range 200 {
		// Fresh maps each time, so each iteration can start at a different key.
		single := map[string]string{"AUTHORIZATION": "nope", "authorization": "token", "Accept": "*/*"}
		multi := map[string][]string{"AUTHORIZATION": {"nope"}, "authorization": {"token"}}
		if v, err := Header(single, multi, "Authorization"); !errors.Is(err, ErrHeaderAmbiguous) || v != "" {
			t.Fatalf("iteration %d: Header = %q, %v; want ambiguous", i, v, err)
		}
		if v, err := Header(single, nil, "Authorization"); !errors.Is(err, ErrHeaderAmbiguous) || v != "" {
			t.Fatalf("iteration %d (single only): Header = %q, %v; want ambiguous", i, v, err)
		}
		if v, err := Header(nil, multi, "Authorization"); !errors.Is(err, ErrHeaderAmbiguous) || v != "" {
			t.Fatalf("iteration %d (multi only): Header = %q, %v; want ambiguous", i, v, err)
		}
	}
}

func TestVerificationBody(t *testing.T) {
	for _, challenge := range []string{"Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg", `quote" and \ backslash`, "<script>", ""} {
		b := VerificationBody(challenge)
		var got map[string]string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("VerificationBody(%q) = %s: %v", challenge, b, err)
		}
		if len(got) != 1 || got["verification"] != challenge {
			t.Errorf("VerificationBody(%q) = %s", challenge, b)
		}
	}
}

func TestAuthorized(t *testing.T) {
	const secret = "sample-okta-hook-token"
	tests := []struct {
		name       string
		presented  string
		configured string
		want       bool
	}{
		{"equal", secret, secret, true},
		{"different", "wrong-token", secret, false},
		{"prefix", secret[:10], secret, false},
		{"longer", secret + "x", secret, false},
		{"case differs", strings.ToUpper(secret), secret, false},
		{"surrounding space is not trimmed", " " + secret, secret, false},
		{"bearer scheme is not stripped", "Bearer " + secret, secret, false},
		{"empty presented", "", secret, false},
		{"empty configured never matches", "", "", false},
		{"empty configured, something presented", "anything", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Authorized(tt.presented, tt.configured); got != tt.want {
				t.Errorf("Authorized = %v, want %v", got, tt.want)
			}
		})
	}
}
