package okta

import (
	"context"
	"sync"
)

// Source hands out a Reader for the current Okta API token, and builds a new one when the token
// changed, so a token rotated in the secret needs no redeploy. Safe for concurrent use.
type Source struct {
	orgURL string
	token  func(ctx context.Context, refresh bool) (string, error)
	opts   []Option

	mu     sync.Mutex
	cur    string
	reader *Reader
}

// NewSource returns a Source for orgURL; token returns the API token, re-reading it when refresh
// is true (config.Token has this shape).
func NewSource(orgURL string, token func(ctx context.Context, refresh bool) (string, error), opts ...Option) *Source {
	return &Source{orgURL: orgURL, token: token, opts: opts}
}

// Reader returns the Reader for the current token; refresh re-reads the token first (after Okta
// rejected it).
func (s *Source) Reader(ctx context.Context, refresh bool) (*Reader, error) {
	tok, err := s.token(ctx, refresh)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader == nil || s.cur != tok {
		r, err := NewReader(ctx, s.orgURL, tok, s.opts...)
		if err != nil {
			return nil, err
		}
		s.reader, s.cur = r, tok
	}
	return s.reader, nil
}
