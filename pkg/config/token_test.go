package config

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type stubSecrets struct {
	cur, next Secrets
	refreshes int
}

func (s *stubSecrets) Get(context.Context) (Secrets, error) { return s.cur, nil }
func (s *stubSecrets) Refresh(context.Context) (Secrets, error) {
	s.refreshes++
	s.cur = s.next
	return s.cur, nil
}

func TestTokenReadsKeyAndRefreshesOnDemand(t *testing.T) {
	src := &stubSecrets{
		cur:  Secrets{AWSSSOSCIMKey: "scim-old", OktaAPIToken: "okta-1"},
		next: Secrets{AWSSSOSCIMKey: "scim-new"},
	}
	scimToken := Token(src, KeyAWSSSOSCIMKey)
	ctx := context.Background()
	if v, err := scimToken(ctx, false); err != nil || v != "scim-old" {
		t.Fatalf("cached: %q, %v", v, err)
	}
	if src.refreshes != 0 {
		t.Fatalf("a cached read refreshed the secret")
	}
	if v, err := scimToken(ctx, true); err != nil || v != "scim-new" || src.refreshes != 1 {
		t.Fatalf("refresh: %q, %v, %d refreshes", v, err, src.refreshes)
	}
	// The rotated secret has no Okta token: an error naming the key, never an empty token.
	v, err := Token(src, KeyOktaAPIToken)(ctx, false)
	if !errors.Is(err, ErrMissingSecretKey) || v != "" || !strings.Contains(err.Error(), KeyOktaAPIToken) {
		t.Fatalf("missing key: %q, %v", v, err)
	}
	if strings.Contains(err.Error(), "scim-new") {
		t.Fatal("error carries a secret value")
	}
}
