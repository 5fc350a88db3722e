package config

import (
	"context"
	"fmt"
)

// SecretReader is what a token source needs of a SecretStore.
type SecretReader interface {
	Get(ctx context.Context) (Secrets, error)
	Refresh(ctx context.Context) (Secrets, error)
}

// Token returns a token source for one key of the secret (a Key* constant), in the shape of
// scim.TokenFunc: the cached value, or the value after a forced re-read when refresh is true (the
// service rejected the token: it was rotated or expired). A missing key is an error wrapping
// ErrMissingSecretKey, never an empty token.
func Token(src SecretReader, key string) func(ctx context.Context, refresh bool) (string, error) {
	return func(ctx context.Context, refresh bool) (string, error) {
		get := src.Get
		if refresh {
			get = src.Refresh
		}
		s, err := get(ctx)
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		if err := s.Require(key); err != nil {
			return "", err
		}
		v, _ := s.value(key)
		return v, nil
	}
}
