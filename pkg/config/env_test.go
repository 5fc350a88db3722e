package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadHookDefaults(t *testing.T) {
	h, err := LoadHook(getenv(map[string]string{
		"SECRET_ID": "okta-aws-sso-sync",
		"QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/changes.fifo",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Hook{
		Common: Common{
			SecretID:         "okta-aws-sso-sync",
			Selection:        Selection{Prefix: "AWS_"},
			LogLevel:         slog.LevelInfo,
			SecretTTL:        5 * time.Minute,
			MetricsNamespace: "OktaAwsSsoSync",
		},
		AuthHeader:   "Authorization",
		QueueURL:     "https://sqs.eu-west-1.amazonaws.com/123456789012/changes.fifo",
		MaxBodyBytes: 6291456, // Lambda's request limit: every body that can arrive is accepted
	}
	if h != want {
		t.Errorf("LoadHook = %+v\nwant %+v", h, want)
	}
}

func TestLoadHookValues(t *testing.T) {
	h, err := LoadHook(getenv(map[string]string{
		"SECRET_ID":         " arn:aws:secretsmanager:eu-west-1:123456789012:secret:x \n",
		"QUEUE_URL":         "http://127.0.0.1:5000/123456789012/q.fifo/",
		"GROUP_PREFIX":      "SSO-",
		"GROUP_REGEX":       "^(AWS|SSO)_[a-z]+$",
		"LOG_LEVEL":         "DEBUG",
		"SECRET_TTL":        "1s",
		"METRICS_NAMESPACE": "Test",
		"AUTH_HEADER":       "x-okta-auth",
		"MAX_BODY_BYTES":    "2048",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if h.SecretID != "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x" {
		t.Errorf("SecretID not trimmed: %q", h.SecretID)
	}
	if h.QueueURL != "http://127.0.0.1:5000/123456789012/q.fifo" {
		t.Errorf("QueueURL = %q", h.QueueURL)
	}
	if h.LogLevel != slog.LevelDebug || h.SecretTTL != time.Second || h.MetricsNamespace != "Test" {
		t.Errorf("common = %+v", h.Common)
	}
	if h.AuthHeader != "X-Okta-Auth" || h.MaxBodyBytes != 2048 {
		t.Errorf("hook = %+v", h)
	}
	// The regex wins over the prefix.
	for name, want := range map[string]bool{"AWS_admins": true, "SSO_dev": true, "SSO-dev": false, "AWS_Admins": false} {
		if got := h.Selection.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSelectionPrefix(t *testing.T) {
	s := Selection{Prefix: "AWS_"}
	for name, want := range map[string]bool{"AWS_admins": true, "AWS_": true, "aws_admins": false, "xAWS_": false, "": false} {
		if got := s.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	base := map[string]string{
		"SECRET_ID":    "s",
		"QUEUE_URL":    "https://sqs.us-east-1.amazonaws.com/1/q.fifo",
		"SCIM_URL":     "https://scim.us-east-1.amazonaws.com/abc/scim/v2",
		"OKTA_ORG_URL": "https://example.okta.com",
	}
	tests := []struct {
		name    string
		load    string // hook, sync, reconcile
		set     map[string]string
		wantVar string
		wantMsg string
	}{
		{"missing secret id", "hook", map[string]string{"SECRET_ID": ""}, "SECRET_ID", "required"},
		{"blank secret id", "sync", map[string]string{"SECRET_ID": "  "}, "SECRET_ID", "required"},
		{"missing queue url", "hook", map[string]string{"QUEUE_URL": ""}, "QUEUE_URL", "required"},
		{"bad regex", "hook", map[string]string{"GROUP_REGEX": "AWS_(["}, "GROUP_REGEX", "invalid regular expression"},
		{"bad log level", "hook", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL", `"loud" is not a log level`},
		{"bad ttl", "hook", map[string]string{"SECRET_TTL": "5"}, "SECRET_TTL", "not a duration"},
		{"negative ttl", "hook", map[string]string{"SECRET_TTL": "-1m"}, "SECRET_TTL", "must be positive"},
		{"bad body size", "hook", map[string]string{"MAX_BODY_BYTES": "1MB"}, "MAX_BODY_BYTES", "not an integer"},
		{"zero body size", "hook", map[string]string{"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES", "out of range"},
		{"bad header", "hook", map[string]string{"AUTH_HEADER": "x okta"}, "AUTH_HEADER", "not a valid HTTP header name"},
		{"queue url not http", "hook", map[string]string{"QUEUE_URL": "sqs://q"}, "QUEUE_URL", "http or https"},
		{"missing scim url", "sync", map[string]string{"SCIM_URL": ""}, "SCIM_URL", "required"},
		{"missing queue url in sync", "sync", map[string]string{"QUEUE_URL": ""}, "QUEUE_URL", "required"},
		{"queue url bad in sync", "sync", map[string]string{"QUEUE_URL": "changes.fifo"}, "QUEUE_URL", "http or https"},
		{"scim url relative", "sync", map[string]string{"SCIM_URL": "scim.example.com/v2"}, "SCIM_URL", "http or https"},
		{"scim url ftp", "reconcile", map[string]string{"SCIM_URL": "ftp://scim.example.com"}, "SCIM_URL", "http or https"},
		{"scim url no host", "sync", map[string]string{"SCIM_URL": "https:///scim/v2"}, "SCIM_URL", "no host"},
		{"scim url credentials", "sync", map[string]string{"SCIM_URL": "https://u:p@scim.example.com"}, "SCIM_URL", "credentials"},
		{"scim url query", "sync", map[string]string{"SCIM_URL": "https://scim.example.com/?a=b"}, "SCIM_URL", "query"},
		{"scim url garbage", "sync", map[string]string{"SCIM_URL": "http://[::1"}, "SCIM_URL", "not a URL"},
		{"okta url bad in sync", "sync", map[string]string{"OKTA_ORG_URL": "example.okta.com"}, "OKTA_ORG_URL", "http or https"},
		{"okta url required for reconcile", "reconcile", map[string]string{"OKTA_ORG_URL": ""}, "OKTA_ORG_URL", "required"},
		{"bad dry run", "sync", map[string]string{"DRY_RUN": "yes"}, "DRY_RUN", `"yes" is not a boolean`},
		{"bad create groups", "reconcile", map[string]string{"CREATE_GROUPS": "maybe"}, "CREATE_GROUPS", "not a boolean"},
		{"bad delete groups", "sync", map[string]string{"DELETE_GROUPS": "2"}, "DELETE_GROUPS", "not a boolean"},
		{"bad allow empty", "reconcile", map[string]string{"ALLOW_EMPTY_GROUPS": "nope"}, "ALLOW_EMPTY_GROUPS", "not a boolean"},
		{"bad max removals", "reconcile", map[string]string{"MAX_REMOVALS": "ten"}, "MAX_REMOVALS", "not an integer"},
		{"negative max removals", "reconcile", map[string]string{"MAX_REMOVALS": "-1"}, "MAX_REMOVALS", "out of range"},
		{"zero concurrency", "reconcile", map[string]string{"RECONCILE_CONCURRENCY": "0"}, "RECONCILE_CONCURRENCY", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			for k, v := range tt.set {
				m[k] = v
			}
			var err error
			switch tt.load {
			case "hook":
				_, err = LoadHook(getenv(m))
			case "sync":
				_, err = LoadSync(getenv(m))
			case "reconcile":
				_, err = LoadReconcile(getenv(m))
			}
			if err == nil {
				t.Fatal("no error")
			}
			var ee *EnvError
			if !errors.As(err, &ee) || ee.Var != tt.wantVar {
				t.Fatalf("error %v: want *EnvError for %s", err, tt.wantVar)
			}
			if !strings.Contains(err.Error(), tt.wantVar+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not name %s with %q", err, tt.wantVar, tt.wantMsg)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := LoadReconcile(getenv(map[string]string{"DRY_RUN": "perhaps", "GROUP_REGEX": "("}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, v := range []string{"SECRET_ID", "SCIM_URL", "OKTA_ORG_URL", "DRY_RUN", "GROUP_REGEX"} {
		if !strings.Contains(err.Error(), v+":") {
			t.Errorf("error %q does not mention %s", err, v)
		}
	}
}

func TestLoadSyncAndReconcile(t *testing.T) {
	s, err := LoadSync(getenv(map[string]string{
		"SECRET_ID": "s", "SCIM_URL": "http://127.0.0.1:9000/tenant/scim/v2/",
		"DRY_RUN": "TRUE", "CREATE_GROUPS": "false", "DELETE_GROUPS": "1", "STATE_TABLE": "state",
		"QUEUE_URL": "http://127.0.0.1:5000/123456789012/q.fifo",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.ScimURL != "http://127.0.0.1:9000/tenant/scim/v2" || s.OktaOrgURL != "" || !s.DryRun || s.CreateGroups || !s.DeleteGroups || s.StateTable != "state" ||
		s.QueueURL != "http://127.0.0.1:5000/123456789012/q.fifo" {
		t.Errorf("LoadSync = %+v", s)
	}

	r, err := LoadReconcile(getenv(map[string]string{
		"SECRET_ID": "s", "SCIM_URL": "https://scim.us-east-1.amazonaws.com/t/scim/v2",
		"OKTA_ORG_URL": "https://example.okta.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if r.DryRun || !r.CreateGroups || r.AllowEmptyGroups || r.MaxRemovals != 100 || r.Concurrency != 4 || r.StateTable != "" {
		t.Errorf("LoadReconcile defaults = %+v", r)
	}
	r, err = LoadReconcile(getenv(map[string]string{
		"SECRET_ID": "s", "SCIM_URL": "https://scim.us-east-1.amazonaws.com/t/scim/v2",
		"OKTA_ORG_URL": "https://example.okta.com", "MAX_REMOVALS": "0", "RECONCILE_CONCURRENCY": "8",
		"ALLOW_EMPTY_GROUPS": "true", "LOG_LEVEL": "warning",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxRemovals != 0 || r.Concurrency != 8 || !r.AllowEmptyGroups || r.LogLevel != slog.LevelWarn {
		t.Errorf("LoadReconcile = %+v", r)
	}
}

// GROUP_REGEX matches whole names, the same for every function.
func TestGroupRegexIsAnchored(t *testing.T) {
	env := map[string]string{"SECRET_ID": "s", "QUEUE_URL": "https://sqs.example/q", "SCIM_URL": "https://scim.example/v2",
		"OKTA_ORG_URL": "https://example.okta.com", "GROUP_REGEX": "AWS_(Admins|Dev)"}
	h, err := LoadHook(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSync(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadReconcile(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"AWS_Admins": true, "AWS_Dev": true,
		"LEGACY_AWS_Dev_x": false, "AWS_Admins_EU": false, "xAWS_Dev": false, "AWS_": false,
	} {
		for fn, sel := range map[string]Selection{"hook": h.Selection, "sync": s.Selection, "reconcile": r.Selection} {
			if got := sel.Match(name); got != want {
				t.Errorf("%s: GROUP_REGEX AWS_(Admins|Dev) selects %q = %v, want %v", fn, name, got, want)
			}
		}
	}
	// An explicit prefix pattern still works, and alternation binds inside the anchors.
	env["GROUP_REGEX"] = "AWS_.*|SSO_Admins"
	h, _ = LoadHook(getenv(env))
	if !h.Selection.Match("AWS_x") || !h.Selection.Match("SSO_Admins") || h.Selection.Match("SSO_Admins_old") || h.Selection.Match("X_AWS_x") {
		t.Error("AWS_.*|SSO_Admins not anchored as a whole")
	}
}

// The sync worker's failure-path settings: defaults, and a bad value names its variable.
func TestSyncRetrySettings(t *testing.T) {
	env := map[string]string{"SECRET_ID": "s", "QUEUE_URL": "https://sqs.example/q", "SCIM_URL": "https://scim.example/v2"}
	s, err := LoadSync(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if s.UnprovisionedUserWait != DefaultUnprovisionedUserWait || s.DLQURL != "" {
		t.Fatalf("defaults: wait %s, DLQ %q", s.UnprovisionedUserWait, s.DLQURL)
	}
	env["UNPROVISIONED_USER_WAIT"], env["DLQ_URL"] = "90m", "https://sqs.example/dlq/"
	if s, err = LoadSync(getenv(env)); err != nil || s.UnprovisionedUserWait != 90*time.Minute || s.DLQURL != "https://sqs.example/dlq" {
		t.Fatalf("set: %+v, %v", s, err)
	}
	for _, bad := range []map[string]string{{"UNPROVISIONED_USER_WAIT": "soon"}, {"UNPROVISIONED_USER_WAIT": "-1h"}, {"DLQ_URL": "not a url"}} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		var name string
		for k, v := range bad {
			e[k], name = v, k
		}
		_, err := LoadSync(getenv(e))
		var ee *EnvError
		if !errors.As(err, &ee) || ee.Var != name {
			t.Errorf("%v: err %v, want an EnvError naming %s", bad, err, name)
		}
	}
}
