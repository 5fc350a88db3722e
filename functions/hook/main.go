// Command hook is the Okta event hook endpoint: API Gateway (REST proxy) → verify → expand →
// enqueue on the SQS FIFO queue. This file only wires configuration, clients and the handler (pkg/hookendpoint).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/hookendpoint"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadHook(os.Getenv)
	if err != nil {
		// Lambda reports the init failure; stderr carries the variables to fix.
		fmt.Fprintf(os.Stderr, "hook: configuration: %v\n", err)
		os.Exit(1)
	}
	log := telemetry.NewLogger(os.Stdout, cfg.LogLevel)

	awsCfg, err := config.LoadAWS(ctx)
	if err != nil {
		log.Error("hook init failed", "error", err.Error())
		os.Exit(1)
	}
	secrets := config.NewSecretStore(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretTTL)
	snd := queue.NewSender(sqs.NewFromConfig(awsCfg), cfg.QueueURL)

	// Read the secret during init, which is not part of Okta's 3 s budget. Best effort: a failure
	// here is retried by the first request, which then answers 500 if it fails again.
	warm, cancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := secrets.Get(warm); err != nil {
		log.Warn("secret not readable at init", "error", err.Error())
	}
	cancel()

	lambda.Start(hookendpoint.New(cfg, secrets, snd, log, os.Stdout).Handle)
}
