package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

const (
	tokA = "okta-hook-token-AAAA"
	tokB = "okta-hook-token-BBBB"
	scim = "scim-bearer-XYZ"
)

// fakeSM is a Secrets Manager with one secret whose value tests change.
type fakeSM struct {
	mu    sync.Mutex
	value *string
	err   error
	calls int
	gate  chan struct{} // when set, reads block until it is closed
}

func (f *fakeSM) set(v string) { f.mu.Lock(); f.value = aws.String(v); f.mu.Unlock() }

func (f *fakeSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	f.calls++
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{Name: in.SecretId, SecretString: f.value}, nil
}

func (f *fakeSM) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func secretJSON(auth string) string {
	return fmt.Sprintf(`{"auth_token_for_okta":%q,"aws_sso_scim_key":%q}`, auth, scim)
}

func newTestStore(api SecretsManagerAPI, ttl time.Duration) (*SecretStore, *clock) {
	s := NewSecretStore(api, "okta-aws-sso-sync", ttl)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s.now = c.now
	return s, c
}

func TestSecretStoreTTL(t *testing.T) {
	ctx := context.Background()
	sm := &fakeSM{}
	sm.set(secretJSON(tokA))
	store, clk := newTestStore(sm, time.Minute)

	for range 3 {
		s, err := store.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.AuthTokenForOkta != tokA || s.AWSSSOSCIMKey != scim || s.OktaAPIToken != "" {
			t.Fatalf("Get = %#v", s)
		}
	}
	if sm.count() != 1 {
		t.Fatalf("%d reads within the TTL, want 1", sm.count())
	}

	sm.set(secretJSON(tokB)) // rotation
	clk.advance(59 * time.Second)
	if s, _ := store.Get(ctx); s.AuthTokenForOkta != tokA {
		t.Error("rotated value seen before the TTL expired")
	}
	clk.advance(time.Second)
	s, err := store.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthTokenForOkta != tokB || sm.count() != 2 {
		t.Errorf("after TTL: token %q, %d reads; want rotated token, 2 reads", s.AuthTokenForOkta, sm.count())
	}
}

func TestSecretStoreDefaultTTL(t *testing.T) {
	store := NewSecretStore(&fakeSM{}, "x", 0)
	if store.ttl != DefaultSecretTTL {
		t.Errorf("ttl = %v, want %v", store.ttl, DefaultSecretTTL)
	}
}

func TestSecretStoreRefresh(t *testing.T) {
	ctx := context.Background()
	sm := &fakeSM{}
	sm.set(secretJSON(tokA))
	store, _ := newTestStore(sm, time.Hour)
	if _, err := store.Get(ctx); err != nil {
		t.Fatal(err)
	}
	sm.set(secretJSON(tokB))
	s, err := store.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthTokenForOkta != tokB {
		t.Errorf("Refresh = %q, want the rotated token", s.AuthTokenForOkta)
	}
	if s, _ := store.Get(ctx); s.AuthTokenForOkta != tokB || sm.count() != 2 {
		t.Errorf("Get after Refresh = %q with %d reads", s.AuthTokenForOkta, sm.count())
	}
}

func TestSecretStoreErrorKeepsNothingAndRetries(t *testing.T) {
	ctx := context.Background()
	sm := &fakeSM{err: errors.New("ResourceNotFoundException: Secrets Manager can't find the specified secret")}
	store, _ := newTestStore(sm, time.Hour)
	_, err := store.Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "read secret okta-aws-sso-sync") {
		t.Fatalf("err = %v", err)
	}
	sm.mu.Lock()
	sm.err = nil
	sm.mu.Unlock()
	sm.set(secretJSON(tokA))
	if s, err := store.Get(ctx); err != nil || s.AuthTokenForOkta != tokA {
		t.Errorf("Get after failure = %v, %v", s, err)
	}
}

func TestSecretStoreMalformed(t *testing.T) {
	secret := "sup3r-s3cret-value"
	tests := []struct {
		name, value, want string
	}{
		{"not json", secret, "not valid JSON"},
		{"truncated json", `{"auth_token_for_okta":"` + secret, "not valid JSON"},
		{"array", `["` + secret + `"]`, "is a JSON array"},
		{"string", `"` + secret + `"`, "is a JSON string"},
		{"number value", `{"auth_token_for_okta":12345}`, "key auth_token_for_okta is a JSON number"},
		{"trailing garbage", `{"auth_token_for_okta":"x"} ` + secret, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := &fakeSM{}
			sm.set(tt.value)
			store, _ := newTestStore(sm, time.Hour)
			_, err := store.Get(context.Background())
			if !errors.Is(err, ErrMalformedSecret) {
				t.Fatalf("err = %v, want ErrMalformedSecret", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q does not contain %q", err, tt.want)
			}
			for _, leak := range []string{secret, "12345", "'s'"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("err %q contains secret material %q", err, leak)
				}
			}
		})
	}
}

func TestSecretStoreNoSecretString(t *testing.T) {
	store, _ := newTestStore(&fakeSM{}, time.Hour)
	if _, err := store.Get(context.Background()); !errors.Is(err, ErrMalformedSecret) {
		t.Errorf("err = %v, want ErrMalformedSecret", err)
	}
}

func TestParseSecretsToleratesExtraKeysAndTrims(t *testing.T) {
	s, err := parseSecrets([]byte(`{"auth_token_for_okta":" a\n","aws_sso_scim_key":"b","okta_api_token":"c","note":"rotated"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s != (Secrets{AuthTokenForOkta: "a", AWSSSOSCIMKey: "b", OktaAPIToken: "c"}) {
		t.Errorf("parseSecrets = %#v", s)
	}
}

func TestSecretStoreConcurrentMissReadsOnce(t *testing.T) {
	sm := &fakeSM{gate: make(chan struct{})}
	sm.set(secretJSON(tokA))
	store, _ := newTestStore(sm, time.Hour)

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			s, err := store.Get(context.Background())
			if err == nil && s.AuthTokenForOkta != tokA {
				err = fmt.Errorf("got %q", s.AuthTokenForOkta)
			}
			errs <- err
		})
	}
	// Let the first reader finish only after the others queued up behind it (or raced past).
	for sm.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(sm.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if sm.count() != 1 {
		t.Errorf("%d reads for 20 concurrent misses, want 1", sm.count())
	}
}

func TestSecretStoreWaiterHonoursContext(t *testing.T) {
	sm := &fakeSM{gate: make(chan struct{})}
	defer close(sm.gate)
	sm.set(secretJSON(tokA))
	store, _ := newTestStore(sm, time.Hour)

	go func() { _, _ = store.Get(context.Background()) }() // holds the read
	for sm.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s := Secrets{AuthTokenForOkta: tokA, AWSSSOSCIMKey: scim}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s))
	}
	outputs = append(outputs, s.String(), s.GoString(), fmt.Sprint(struct{ S Secrets }{s}), fmt.Sprintf("%+v", struct{ S Secrets }{s}))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("loaded", "secrets", s, "ptr", &s)
	}
	outputs = append(outputs, buf.String())

	j, err := json.Marshal(struct{ S Secrets }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))

	for _, out := range outputs {
		for _, v := range []string{tokA, scim, fmt.Sprintf("%x", tokA), fmt.Sprintf("%X", tokA)} {
			if strings.Contains(out, v) {
				t.Errorf("output %q contains a secret value", out)
			}
		}
	}
	if got := s.String(); got != "config.Secrets{auth_token_for_okta:redacted aws_sso_scim_key:redacted okta_api_token:empty}" {
		t.Errorf("String() = %q", got)
	}
	if !strings.Contains(buf.String(), `"auth_token_for_okta":"redacted"`) || !strings.Contains(buf.String(), `"okta_api_token":"empty"`) {
		t.Errorf("slog output does not say which keys are set: %s", buf.String())
	}
}

func TestSecretsRequire(t *testing.T) {
	s := Secrets{AuthTokenForOkta: tokA}
	if err := s.Require(KeyAuthTokenForOkta); err != nil {
		t.Errorf("Require(auth) = %v", err)
	}
	err := s.Require(KeyAuthTokenForOkta, KeyAWSSSOSCIMKey, KeyOktaAPIToken)
	if !errors.Is(err, ErrMissingSecretKey) || !strings.Contains(err.Error(), "aws_sso_scim_key, okta_api_token") {
		t.Errorf("Require = %v", err)
	}
	if strings.Contains(err.Error(), tokA) {
		t.Error("error contains a secret value")
	}
	if err := s.Require("password"); err == nil || errors.Is(err, ErrMissingSecretKey) {
		t.Errorf("unknown key: err = %v", err)
	}
}
