package config

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadPlanLayers(t *testing.T) {
	stack := StackEnv(
		map[string]string{"ScimUrl": "https://scim.eu-west-1.amazonaws.com/t-1/scim/v2", "OktaOrgUrl": "https://stack.okta.com",
			"GroupPrefix": "AWS_", "GroupRegex": "AWS_(Admins|Dev)", "MaxRemovals": "25", "CreateGroups": "false",
			"ReconcileConcurrency": "8", "AuthHeader": "X-Not-A-Plan-Setting", "DryRun": "true"},
		map[string]string{"SecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:app", "StateTableName": "stack-state", "HookUrl": "https://x"})
	if len(stack) != 9 {
		t.Errorf("StackEnv kept %d settings: %v", len(stack), stack)
	}
	env := Layer(map[string]string{"OKTA_ORG_URL": "https://env.okta.com/", "MAX_REMOVALS": "40"})

	p, err := LoadPlan(Layer(nil), env, Layer(stack))
	if err != nil {
		t.Fatal(err)
	}
	if p.SecretID != stack["SECRET_ID"] || p.ScimURL != stack["SCIM_URL"] || p.OktaOrgURL != "https://env.okta.com" ||
		p.StateTable != "stack-state" || p.MaxRemovals != 40 || p.CreateGroups || p.Concurrency != 8 || p.AllowEmptyGroups ||
		p.Selection.Regex == nil || !p.Selection.Match("AWS_Dev") || p.Selection.Match("AWS_Ops") {
		t.Errorf("stack and env: %+v", p)
	}

	// A prefix on the command line replaces the stack's whole selection, its regex included.
	flags := Layer(map[string]string{"GROUP_PREFIX": "AWS_O", "STATE_TABLE": "none", "SECRET_ID": "flag-secret"})
	p, err = LoadPlan(flags, env, Layer(stack))
	if err != nil {
		t.Fatal(err)
	}
	if p.Selection.Regex != nil || p.Selection.Prefix != "AWS_O" || !p.Selection.Match("AWS_Ops") || p.StateTable != "" || p.SecretID != "flag-secret" {
		t.Errorf("flags: %+v", p)
	}

	// Nothing set: defaults, and every required setting is named.
	p, err = LoadPlan(Layer(nil))
	var ee *EnvError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "SECRET_ID") || !strings.Contains(err.Error(), "SCIM_URL") || !strings.Contains(err.Error(), "OKTA_ORG_URL") {
		t.Errorf("empty: %v", err)
	}
	if p.Selection.Prefix != DefaultGroupPrefix || p.MaxRemovals != DefaultMaxRemovals || !p.CreateGroups || p.Concurrency != DefaultReconcileConcurrency {
		t.Errorf("defaults: %+v", p)
	}

	// Validated as the function's settings are.
	_, err = LoadPlan(Layer(map[string]string{"SECRET_ID": "s", "SCIM_URL": "ftp://x", "OKTA_ORG_URL": "https://o.okta.com", "GROUP_REGEX": "(", "MAX_REMOVALS": "-1"}))
	for _, want := range []string{"SCIM_URL", "GROUP_REGEX", "MAX_REMOVALS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("invalid values: %v lacks %s", err, want)
		}
	}
}
