package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
)

// SecretSource is the part of config.SecretStore the Okta source needs.
type SecretSource interface {
	Get(ctx context.Context) (config.Secrets, error)
	Refresh(ctx context.Context) (config.Secrets, error)
}

// oktaReaders builds the Okta reader from the secret's okta_api_token and rebuilds it when the
// token changed, so a rotated token needs no redeploy.
type oktaReaders struct {
	orgURL  string
	secrets SecretSource
	opts    []okta.Option

	mu     sync.Mutex
	token  string
	reader *okta.Reader
}

// source returns the OktaSource of r.
func (r *oktaReaders) source(ctx context.Context, refresh bool) (Okta, error) {
	get := r.secrets.Get
	if refresh {
		get = r.secrets.Refresh
	}
	s, err := get(ctx)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	if err := s.Require(config.KeyOktaAPIToken); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reader == nil || r.token != s.OktaAPIToken {
		rd, err := okta.NewReader(ctx, r.orgURL, s.OktaAPIToken, r.opts...)
		if err != nil {
			return nil, err
		}
		r.reader, r.token = rd, s.OktaAPIToken
	}
	return r.reader, nil
}
