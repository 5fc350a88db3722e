package oktahook

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHeader(t *testing.T) {
	tests := []struct {
		name   string
		single map[string]string
		multi  map[string][]string
		want   string
		found  bool
	}{
		{"exact", map[string]string{"X-Okta-Verification-Challenge": "c1"}, nil, "c1", true},
		{"lower case", map[string]string{"x-okta-verification-challenge": "c2"}, nil, "c2", true},
		{"upper case", map[string]string{"X-OKTA-VERIFICATION-CHALLENGE": "c3"}, nil, "c3", true},
		{"only multi", nil, map[string][]string{"x-okta-verification-challenge": {"first", "last"}}, "last", true},
		{"single wins over multi", map[string]string{"x-okta-verification-challenge": "s"}, map[string][]string{"X-Okta-Verification-Challenge": {"m"}}, "s", true},
		{"empty value is present", map[string]string{"x-okta-verification-challenge": ""}, nil, "", true},
		{"empty multi list is absent", nil, map[string][]string{"x-okta-verification-challenge": {}}, "", false},
		{"absent", map[string]string{"Authorization": "x"}, map[string][]string{"Accept": {"application/json"}}, "", false},
		{"nil maps", nil, nil, "", false},
		{"prefix is not a match", map[string]string{"x-okta-verification-challenge-2": "no"}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Challenge(tt.single, tt.multi)
			if got != tt.want || ok != tt.found {
				t.Errorf("Challenge = %q, %v; want %q, %v", got, ok, tt.want, tt.found)
			}
		})
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
