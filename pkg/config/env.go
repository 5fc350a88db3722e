// Package config reads the runtime contract of the three functions: environment variables (the
// README's "Environment variables the functions read") and the Secrets Manager secret, cached with a TTL so a rotated secret is picked up
// without a redeploy.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of the runtime contract.
const (
	DefaultGroupPrefix          = "AWS_"
	DefaultSecretTTL            = 5 * time.Minute
	DefaultMetricsNamespace     = "OktaAwsSsoSync"
	DefaultAuthHeader           = "Authorization"
	DefaultMaxRemovals          = 100
	DefaultReconcileConcurrency = 4
	// DefaultUnprovisionedUserWait is how long the sync worker retries an add for a user AWS does
	// not know yet before it dead-letters it: assigning a user to an AWS_ group is often what
	// makes Okta's AWS IAM Identity Center app provision the user, seconds to minutes later.
	DefaultUnprovisionedUserWait = time.Hour
	// DefaultMaxBodyBytes accepts every body Lambda can pass to the hook: a synchronous invocation
	// carries at most 6 MB (Lambda's Invoke API reference), enforced as "Request must be smaller
	// than 6291456 bytes", and that is API Gateway's whole proxy event, so the body, plain or
	// base64-decoded, is always smaller. Okta documents no batch size, amalgamates bursts and
	// never retries a 4xx: a lower limit loses changes until the next reconcile.
	DefaultMaxBodyBytes = 6 << 20
)

// Environment variable names.
const (
	envSecretID         = "SECRET_ID"
	envGroupPrefix      = "GROUP_PREFIX"
	envGroupRegex       = "GROUP_REGEX"
	envLogLevel         = "LOG_LEVEL"
	envSecretTTL        = "SECRET_TTL"
	envMetricsNS        = "METRICS_NAMESPACE"
	envAuthHeader       = "AUTH_HEADER"
	envQueueURL         = "QUEUE_URL"
	envMaxBodyBytes     = "MAX_BODY_BYTES"
	envScimURL          = "SCIM_URL"
	envOktaOrgURL       = "OKTA_ORG_URL"
	envStateTable       = "STATE_TABLE"
	envDryRun           = "DRY_RUN"
	envCreateGroups     = "CREATE_GROUPS"
	envDeleteGroups     = "DELETE_GROUPS"
	envMaxRemovals      = "MAX_REMOVALS"
	envConcurrency      = "RECONCILE_CONCURRENCY"
	envAllowEmptyGroups = "ALLOW_EMPTY_GROUPS"
	envDLQURL           = "DLQ_URL"
	envUserWait         = "UNPROVISIONED_USER_WAIT"
)

const (
	maxReconcileConcurrency = 64
	maxEnvValueInError      = 120
)

// EnvError is one missing or invalid environment variable. Load* join all of them, so an
// operator fixes a template in one round; errors.As finds the first.
type EnvError struct {
	Var    string // the variable's name, e.g. SCIM_URL
	Reason string
}

func (e *EnvError) Error() string { return e.Var + ": " + e.Reason }

// Selection decides which Okta groups are synced: Regex when set (matched against the whole
// name), otherwise names with Prefix.
// An empty GROUP_PREFIX means the default AWS_, never "every group": selecting all groups takes
// an explicit GROUP_REGEX such as ".*".
type Selection struct {
	Prefix string
	Regex  *regexp.Regexp
}

// anchored compiles a GROUP_REGEX to match whole group names only. Unanchored, AWS_(Admins|Dev)
// would also select LEGACY_AWS_Dev_x, and a selection that grows by accident writes to groups
// nobody meant to sync; anchored, a prefix takes an explicit AWS_.* . One rule for hook, sync and
// reconcile, since all three select through [Selection.Match].
func anchored(expr string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + expr + `)$`)
}

// Match reports whether the Okta group name is selected.
func (s Selection) Match(name string) bool {
	if s.Regex != nil {
		return s.Regex.MatchString(name)
	}
	return strings.HasPrefix(name, s.Prefix)
}

// Common holds what every function reads.
type Common struct {
	SecretID         string
	Selection        Selection
	LogLevel         slog.Level
	SecretTTL        time.Duration
	MetricsNamespace string
}

// Hook is the configuration of functions/hook.
type Hook struct {
	Common
	AuthHeader   string
	QueueURL     string
	MaxBodyBytes int64
}

// Sync is the configuration of functions/sync. QueueURL is the worker's own queue: it sets the
// visibility of failed messages there and isolates changes that fail on their own. DLQURL
// (optional) is its dead-letter queue: a change given up on is sent there with its reason.
type Sync struct {
	Common
	ScimURL, OktaOrgURL, StateTable, QueueURL, DLQURL string
	DryRun, CreateGroups, DeleteGroups                bool
	UnprovisionedUserWait                             time.Duration
}

// Reconcile is the configuration of functions/reconcile.
type Reconcile struct {
	Common
	ScimURL, OktaOrgURL, StateTable        string
	DryRun, CreateGroups, AllowEmptyGroups bool
	MaxRemovals, Concurrency               int
}

// LoadHook reads the hook's environment. getenv is os.Getenv in production and a map lookup in
// tests. Empty values count as unset.
func LoadHook(getenv func(string) string) (Hook, error) {
	e := env{getenv: getenv}
	h := Hook{
		Common:       e.common(),
		AuthHeader:   e.headerName(envAuthHeader, DefaultAuthHeader),
		QueueURL:     e.url(envQueueURL, true),
		MaxBodyBytes: int64(e.intRange(envMaxBodyBytes, DefaultMaxBodyBytes, 1, 1<<31)),
	}
	return h, e.err()
}

// LoadSync reads the sync worker's environment. STATE_TABLE is optional here; the worker decides
// whether it can run without it.
func LoadSync(getenv func(string) string) (Sync, error) {
	e := env{getenv: getenv}
	s := Sync{
		Common:       e.common(),
		ScimURL:      e.url(envScimURL, true),
		OktaOrgURL:   e.url(envOktaOrgURL, false),
		StateTable:   e.str(envStateTable, ""),
		QueueURL:     e.url(envQueueURL, true),
		DryRun:       e.boolean(envDryRun, false),
		CreateGroups: e.boolean(envCreateGroups, true),
		DeleteGroups: e.boolean(envDeleteGroups, false),
		DLQURL:       e.url(envDLQURL, false),

		UnprovisionedUserWait: e.duration(envUserWait, DefaultUnprovisionedUserWait),
	}
	return s, e.err()
}

// LoadReconcile reads the reconciler's environment.
func LoadReconcile(getenv func(string) string) (Reconcile, error) {
	e := env{getenv: getenv}
	r := Reconcile{
		Common:           e.common(),
		ScimURL:          e.url(envScimURL, true),
		OktaOrgURL:       e.url(envOktaOrgURL, true),
		StateTable:       e.str(envStateTable, ""),
		DryRun:           e.boolean(envDryRun, false),
		CreateGroups:     e.boolean(envCreateGroups, true),
		AllowEmptyGroups: e.boolean(envAllowEmptyGroups, false),
		// 0 is valid: a reconcile that may add but never remove.
		MaxRemovals: e.intRange(envMaxRemovals, DefaultMaxRemovals, 0, 1<<31),
		Concurrency: e.intRange(envConcurrency, DefaultReconcileConcurrency, 1, maxReconcileConcurrency),
	}
	return r, e.err()
}

// env collects every problem instead of stopping at the first.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) fail(name, format string, args ...any) {
	e.errs = append(e.errs, &EnvError{Var: name, Reason: fmt.Sprintf(format, args...)})
}

func (e *env) err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: %w", errors.Join(e.errs...))
}

// get trims the value: SAM parameters and consoles easily add a trailing newline or space.
func (e *env) get(name string) string { return strings.TrimSpace(e.getenv(name)) }

func (e *env) common() Common {
	c := Common{
		SecretID:         e.str(envSecretID, ""),
		Selection:        Selection{Prefix: e.str(envGroupPrefix, DefaultGroupPrefix)},
		LogLevel:         e.level(envLogLevel),
		SecretTTL:        e.duration(envSecretTTL, DefaultSecretTTL),
		MetricsNamespace: e.str(envMetricsNS, DefaultMetricsNamespace),
	}
	if c.SecretID == "" {
		e.fail(envSecretID, "required (Secrets Manager secret id or ARN)")
	}
	if v := e.get(envGroupRegex); v != "" {
		// Compiled as written first, so the error quotes the operator's own fragment.
		if _, err := regexp.Compile(v); err != nil {
			e.fail(envGroupRegex, "invalid regular expression: %v", err)
		} else {
			c.Selection.Regex = anchored(v)
		}
	}
	return c
}

func (e *env) str(name, def string) string {
	if v := e.get(name); v != "" {
		return v
	}
	return def
}

func (e *env) level(name string) slog.Level {
	v := e.get(name)
	if v == "" {
		return slog.LevelInfo
	}
	if strings.EqualFold(v, "warning") {
		return slog.LevelWarn
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		e.fail(name, "%s is not a log level (use debug, info, warn or error)", quote(v))
		return slog.LevelInfo
	}
	return l
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	v := e.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.fail(name, "%s is not a duration (use Go syntax such as 5m or 30s)", quote(v))
		return def
	}
	if d <= 0 {
		e.fail(name, "%s must be positive", quote(v))
		return def
	}
	return d
}

func (e *env) boolean(name string, def bool) bool {
	v := e.get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		e.fail(name, "%s is not a boolean (use true or false)", quote(v))
		return def
	}
	return b
}

func (e *env) intRange(name string, def, lo, hi int) int {
	v := e.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, "%s is not an integer", quote(v))
		return def
	}
	if n < lo || n > hi {
		e.fail(name, "%d is out of range [%d, %d]", n, lo, hi)
		return def
	}
	return n
}

// url accepts http and https: local emulators (moto, the SCIM and Okta fakes) speak http. A
// trailing slash is dropped so clients can append paths.
func (e *env) url(name string, required bool) string {
	v := e.get(name)
	if v == "" {
		if required {
			e.fail(name, "required")
		}
		return ""
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		e.fail(name, "%s is not a URL", quote(v))
	case u.Scheme != "http" && u.Scheme != "https":
		e.fail(name, "%s must be an http or https URL", quote(v))
	case u.Host == "":
		e.fail(name, "%s has no host", quote(v))
	case u.User != nil:
		// Credentials in a URL end up in logs; tokens belong in the secret.
		e.fail(name, "must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "":
		e.fail(name, "%s must not have a query or fragment", quote(v))
	default:
		return strings.TrimRight(v, "/")
	}
	return ""
}

func (e *env) headerName(name, def string) string {
	v := e.get(name)
	if v == "" {
		return def
	}
	if !validHeaderName(v) {
		e.fail(name, "%s is not a valid HTTP header name", quote(v))
		return def
	}
	return http.CanonicalHeaderKey(v)
}

// validHeaderName checks the RFC 9110 token characters.
func validHeaderName(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return s != ""
}

// quote bounds a value echoed in an error: none of these variables is a secret, but an
// accidentally pasted blob should not flood the log.
func quote(v string) string {
	if len(v) > maxEnvValueInError {
		v = v[:maxEnvValueInError] + "…"
	}
	return strconv.Quote(v)
}
