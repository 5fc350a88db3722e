package okta

import (
	"context"
	"errors"
	"testing"
)

func TestSourceFollowsTheToken(t *testing.T) {
	tok, refreshes := "", 0
	errMissing := errors.New("okta_api_token missing")
	src := NewSource("https://example.okta.com", func(_ context.Context, refresh bool) (string, error) {
		if refresh {
			refreshes++
		}
		if tok == "" {
			return "", errMissing
		}
		return tok, nil
	})
	ctx := context.Background()
	if r, err := src.Reader(ctx, false); !errors.Is(err, errMissing) || r != nil {
		t.Fatalf("no token: %v, %v", r, err)
	}
	tok = "00first"
	a, err := src.Reader(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := src.Reader(ctx, false); b != a {
		t.Error("same token, new reader")
	}
	tok = "00rotated"
	c, err := src.Reader(ctx, true)
	if err != nil || c == a || refreshes != 1 {
		t.Errorf("rotated token: same reader %v, refreshes %d, err %v", c == a, refreshes, err)
	}
}
