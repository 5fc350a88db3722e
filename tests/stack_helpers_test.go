package tests

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// mustCreateStack creates the stack name in moto with what the operator commands read of a
// deployed stack through DescribeStacks: String parameters (name → default), the values given for
// some of them, and outputs (name → value).
func mustCreateStack(t *testing.T, ctx context.Context, m *harness.Moto, name string, defaults, values, outputs map[string]string) {
	t.Helper()
	params, outs := map[string]any{}, map[string]any{}
	for k, def := range defaults {
		params[k] = map[string]any{"Type": "String", "Default": def}
	}
	for k, v := range outputs {
		outs[k] = map[string]any{"Value": v}
	}
	tmpl, err := json.Marshal(map[string]any{
		"Parameters": params,
		"Resources":  map[string]any{"Marker": map[string]any{"Type": "AWS::SQS::Queue"}},
		"Outputs":    outs,
	})
	if err != nil {
		t.Fatal(err)
	}
	var set []cftypes.Parameter
	for k, v := range values {
		set = append(set, cftypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	if _, err := cloudformation.NewFromConfig(m.AWSConfig()).CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName: aws.String(name), TemplateBody: aws.String(string(tmpl)), Parameters: set}); err != nil {
		t.Fatalf("create stack: %v", err)
	}
}
