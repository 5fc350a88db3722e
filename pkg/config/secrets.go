package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Keys of the secret's JSON, the same as the original Python connector's so its secret can be
// reused.
const (
	KeyAuthTokenForOkta = "auth_token_for_okta"
	KeyAWSSSOSCIMKey    = "aws_sso_scim_key"
	KeyOktaAPIToken     = "okta_api_token"
)

// ErrMissingSecretKey is returned by Secrets.Require when a needed key is absent or empty.
var ErrMissingSecretKey = errors.New("secret key missing or empty")

// ErrMalformedSecret means the secret exists but its value is not the expected JSON object.
var ErrMalformedSecret = errors.New("malformed secret")

// Secrets is the content of the Secrets Manager secret. Every way of printing it (fmt verbs,
// slog, encoding/json) shows only which keys are set, never the values: a peer project logged
// its SCIM bearer token.
type Secrets struct {
	AuthTokenForOkta string `json:"auth_token_for_okta"`
	AWSSSOSCIMKey    string `json:"aws_sso_scim_key"`
	OktaAPIToken     string `json:"okta_api_token"`
}

func (s Secrets) fields() [3]struct{ key, val string } {
	return [3]struct{ key, val string }{
		{KeyAuthTokenForOkta, s.AuthTokenForOkta},
		{KeyAWSSSOSCIMKey, s.AWSSSOSCIMKey},
		{KeyOktaAPIToken, s.OktaAPIToken},
	}
}

// value returns the value of key (a Key* constant); false for an unknown key.
func (s Secrets) value(key string) (string, bool) {
	for _, f := range s.fields() {
		if f.key == key {
			return f.val, true
		}
	}
	return "", false
}

func redacted(v string) string {
	if v == "" {
		return "empty"
	}
	return "redacted"
}

// String shows which keys are set, never their values.
func (s Secrets) String() string {
	var b strings.Builder
	b.WriteString("config.Secrets{")
	for i, f := range s.fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.key + ":" + redacted(f.val))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString makes %#v redact too.
func (s Secrets) GoString() string { return s.String() }

// Format covers every fmt verb, including %d and %x, which would otherwise print the fields.
func (s Secrets) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue makes slog print the redacted form.
func (s Secrets) LogValue() slog.Value {
	f := s.fields()
	attrs := make([]slog.Attr, len(f))
	for i, x := range f {
		attrs[i] = slog.String(x.key, redacted(x.val))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON redacts, so a Secrets inside a logged or returned struct cannot leak. Reading the
// secret uses json.Unmarshal, which is unaffected.
func (s Secrets) MarshalJSON() ([]byte, error) {
	m := make(map[string]string, 3)
	for _, f := range s.fields() {
		m[f.key] = redacted(f.val)
	}
	return json.Marshal(m)
}

// Require returns an error wrapping ErrMissingSecretKey that names every empty key of keys
// (Key* constants). The hook needs KeyAuthTokenForOkta, sync KeyAWSSSOSCIMKey, reconcile both
// SCIM and Okta tokens.
func (s Secrets) Require(keys ...string) error {
	var missing []string
	for _, k := range keys {
		v, ok := s.value(k)
		if !ok {
			return fmt.Errorf("unknown secret key %q", k)
		}
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingSecretKey, strings.Join(missing, ", "))
	}
	return nil
}

// SecretsManagerAPI is the one Secrets Manager call the store needs.
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretStore reads the secret and caches it for a TTL, so a rotation reaches warm Lambda
// environments within the TTL without a redeploy. Safe for concurrent use; concurrent misses
// cause one read.
type SecretStore struct {
	api SecretsManagerAPI
	id  string
	ttl time.Duration
	now func() time.Time

	// sem admits one reader of Secrets Manager at a time; a channel rather than a mutex so a
	// waiter can give up when its context (the Lambda deadline) ends.
	sem chan struct{}

	mu      sync.Mutex
	cached  Secrets
	expires time.Time
	valid   bool
	// started counts reads begun; okStart is the number of the last successful one. Together
	// they let a waiting Refresh reuse a read that began after it asked instead of reading twice.
	started, okStart uint64
}

// NewSecretStore returns a store for secretID. ttl <= 0 means DefaultSecretTTL.
func NewSecretStore(api SecretsManagerAPI, secretID string, ttl time.Duration) *SecretStore {
	if ttl <= 0 {
		ttl = DefaultSecretTTL
	}
	return &SecretStore{api: api, id: secretID, ttl: ttl, now: time.Now, sem: make(chan struct{}, 1)}
}

// Get returns the cached secret, reading it when the cache is empty or older than the TTL.
func (s *SecretStore) Get(ctx context.Context) (Secrets, error) {
	if v, ok := s.fresh(); ok {
		return v, nil
	}
	return s.read(ctx, false)
}

// Refresh re-reads the secret whatever the cache holds: call it once after the SCIM endpoint
// answered 401, since the token may have been rotated.
func (s *SecretStore) Refresh(ctx context.Context) (Secrets, error) {
	return s.read(ctx, true)
}

func (s *SecretStore) fresh() (Secrets, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.valid && s.now().Before(s.expires) {
		return s.cached, true
	}
	return Secrets{}, false
}

func (s *SecretStore) read(ctx context.Context, force bool) (Secrets, error) {
	s.mu.Lock()
	seen := s.started
	s.mu.Unlock()

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return Secrets{}, fmt.Errorf("read secret %s: %w", s.id, context.Cause(ctx))
	}
	defer func() { <-s.sem }()

	s.mu.Lock()
	// A read that started after we asked, and succeeded, is as good as our own, even for Refresh.
	reuse := s.valid && s.okStart > seen
	if !force && s.valid && s.now().Before(s.expires) {
		reuse = true
	}
	if reuse {
		v := s.cached
		s.mu.Unlock()
		return v, nil
	}
	s.started++
	n := s.started
	s.mu.Unlock()

	v, err := s.fetch(ctx)
	if err != nil {
		return Secrets{}, err
	}
	s.mu.Lock()
	s.cached, s.expires, s.valid, s.okStart = v, s.now().Add(s.ttl), true, n
	s.mu.Unlock()
	return v, nil
}

func (s *SecretStore) fetch(ctx context.Context) (Secrets, error) {
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id)})
	if err != nil {
		// The SDK's error names the operation and the AWS error code, never the value.
		return Secrets{}, fmt.Errorf("read secret %s: %w", s.id, err)
	}
	var raw []byte
	switch {
	case out.SecretString != nil:
		raw = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		raw = out.SecretBinary
	default:
		return Secrets{}, fmt.Errorf("read secret %s: %w: no SecretString", s.id, ErrMalformedSecret)
	}
	v, err := parseSecrets(raw)
	if err != nil {
		return Secrets{}, fmt.Errorf("read secret %s: %w", s.id, err)
	}
	return v, nil
}

// parseSecrets decodes the secret JSON. encoding/json's syntax errors quote the offending
// character of the input, which is part of a secret, so its errors are never passed on.
func parseSecrets(raw []byte) (Secrets, error) {
	var v Secrets
	if err := json.Unmarshal(raw, &v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ) && typ.Field != "":
			return Secrets{}, fmt.Errorf("%w: key %s is a JSON %s, want a string", ErrMalformedSecret, typ.Field, typ.Value)
		case errors.As(err, &typ):
			return Secrets{}, fmt.Errorf("%w: SecretString is a JSON %s, want an object with keys %s, %s, %s",
				ErrMalformedSecret, typ.Value, KeyAuthTokenForOkta, KeyAWSSSOSCIMKey, KeyOktaAPIToken)
		case errors.As(err, &syn):
			return Secrets{}, fmt.Errorf("%w: SecretString is not valid JSON (syntax error at byte %d)", ErrMalformedSecret, syn.Offset)
		default:
			return Secrets{}, fmt.Errorf("%w: SecretString is not a JSON object", ErrMalformedSecret)
		}
	}
	// A pasted token often carries a newline; no token contains surrounding whitespace.
	v.AuthTokenForOkta = strings.TrimSpace(v.AuthTokenForOkta)
	v.AWSSSOSCIMKey = strings.TrimSpace(v.AWSSSOSCIMKey)
	v.OktaAPIToken = strings.TrimSpace(v.OktaAPIToken)
	return v, nil
}
