// Package stack reads a deployed CloudFormation stack's parameters and outputs for the operator
// commands (cmd/okta-hook, cmd/plan). It lives under cmd/ so that the functions' binaries do not
// link the CloudFormation client.
package stack

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// Describe reads the stack's parameters and outputs, by key, with DescribeStacks.
func Describe(ctx context.Context, api cloudformation.DescribeStacksAPIClient, name string) (params, outputs map[string]string, err error) {
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return nil, nil, fmt.Errorf("read stack %s: %w", name, err)
	}
	if len(out.Stacks) == 0 {
		return nil, nil, fmt.Errorf("stack %s not found", name)
	}
	params, outputs = map[string]string{}, map[string]string{}
	for _, p := range out.Stacks[0].Parameters {
		params[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return params, outputs, nil
}
