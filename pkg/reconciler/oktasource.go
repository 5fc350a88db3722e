package reconciler

import (
	"context"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
)

// OktaSourceOf adapts an okta.Source (a Reader per current API token, rebuilt when the secret's token
// was rotated) to the OktaSource the handler consumes.
func OktaSourceOf(src *okta.Source) OktaSource {
	return func(ctx context.Context, refresh bool) (Okta, error) {
		r, err := src.Reader(ctx, refresh)
		if err != nil {
			// A nil *okta.Reader in the interface would not compare equal to nil.
			return nil, err
		}
		return r, nil
	}
}
