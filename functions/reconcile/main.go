// Command reconcile is the scheduled drift repair: it makes AWS IAM Identity Center group
// membership equal to Okta's for the selected groups (see docs/RECONCILE.md). This file only wires
// configuration, clients and the handler; the behaviour lives in pkg/reconciler.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/reconciler"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

func main() {
	h, err := build(context.Background())
	if err != nil {
		log := telemetry.NewLogger(os.Stdout, slog.LevelInfo)
		log.Error("reconcile: init failed", "error", err.Error())
		os.Exit(1)
	}
	// The Handler implements lambda.Handler: it decodes the payload itself so an empty manual
	// invoke works like {}.
	lambda.Start(h)
}

func build(ctx context.Context) (*reconciler.Handler, error) {
	cfg, err := config.LoadReconcile(os.Getenv)
	if err != nil {
		return nil, err
	}
	log := telemetry.NewLogger(os.Stdout, cfg.LogLevel)
	awsCfg, err := config.LoadAWS(ctx)
	if err != nil {
		return nil, err
	}
	secrets := config.NewSecretStore(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretTTL)
	client, err := scim.New(cfg.ScimURL, config.Token(secrets, config.KeyAWSSSOSCIMKey), scim.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("scim client: %w", err)
	}
	var led ledger.Ledger
	if cfg.StateTable != "" {
		led = ledger.New(dynamodb.NewFromConfig(awsCfg), cfg.StateTable)
	}
	oktaSrc := okta.NewSource(cfg.OktaOrgURL, config.Token(secrets, config.KeyOktaAPIToken))

	return reconciler.NewHandler(reconciler.Config{
		SCIM:   client,
		Okta:   reconciler.OktaSourceOf(oktaSrc),
		Ledger: led,

		Selection:        cfg.Selection,
		DryRun:           cfg.DryRun,
		CreateGroups:     cfg.CreateGroups,
		AllowEmptyGroups: cfg.AllowEmptyGroups,
		MaxRemovals:      cfg.MaxRemovals,
		Concurrency:      cfg.Concurrency,

		Log:        log,
		MetricsOut: os.Stdout,
		Namespace:  cfg.MetricsNamespace,
	}), nil
}
