package config

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// The harness and `make local` rely on the SDK honouring AWS_ENDPOINT_URL by itself.
func TestLoadAWSHonoursEndpointURL(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{"Name":"s","SecretString":"{\"auth_token_for_okta\":\"t\"}"}`))
	}))
	defer srv.Close()

	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")

	ctx := context.Background()
	cfg, err := LoadAWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != srv.URL {
		t.Errorf("BaseEndpoint = %v, want %s", cfg.BaseEndpoint, srv.URL)
	}
	store := NewSecretStore(secretsmanager.NewFromConfig(cfg), "s", 0)
	s, err := store.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthTokenForOkta != "t" || hits.Load() != 1 {
		t.Errorf("got %q after %d requests to the endpoint", s.AuthTokenForOkta, hits.Load())
	}
}
