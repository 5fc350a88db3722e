package config

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// LoadAWS loads the SDK's default configuration: region and credentials from the Lambda
// environment, and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_<SERVICE>), which the SDK itself
// honours, so tests and `make local` point every client at moto_server without code here.
func LoadAWS(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithAppID("okta-aws-sso-sync"))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}
