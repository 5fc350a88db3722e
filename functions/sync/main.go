// Command sync is the SQS FIFO worker: it applies the membership changes the hook queued to AWS
// IAM Identity Center through SCIM (see docs/SYNC.md). This file only wires configuration,
// clients and the handler; the behaviour lives in pkg/syncer.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/syncer"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

func main() {
	h, err := build(context.Background())
	if err != nil {
		log := telemetry.NewLogger(os.Stdout, slog.LevelInfo)
		// An init error: Lambda reports it and retries the cold start; nothing was consumed.
		log.Error("sync: init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func build(ctx context.Context) (*syncer.Handler, error) {
	cfg, err := config.LoadSync(os.Getenv)
	if err != nil {
		return nil, err
	}
	log := telemetry.NewLogger(os.Stdout, cfg.LogLevel)
	awsCfg, err := config.LoadAWS(ctx)
	if err != nil {
		return nil, err
	}
	secrets := config.NewSecretStore(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretTTL)
	client, err := scim.New(cfg.ScimURL, config.Token(secrets, config.KeyAWSSSOSCIMKey), scim.WithLogger(log),
		scim.WithThrottleRetries(syncer.InvocationThrottleRetries))
	if err != nil {
		return nil, fmt.Errorf("scim client: %w", err)
	}

	var led ledger.Ledger
	if cfg.StateTable != "" {
		led = ledger.New(dynamodb.NewFromConfig(awsCfg), cfg.StateTable)
	} else {
		log.Warn("STATE_TABLE not set: ordering memory lasts only as long as this container")
		led = ledger.NewMemory()
	}

	sqsClient := sqs.NewFromConfig(awsCfg)
	var deadLetter syncer.Requeuer
	if cfg.DLQURL != "" {
		deadLetter = queue.NewSender(sqsClient, cfg.DLQURL)
	} else {
		log.Warn("DLQ_URL not set: changes given up on reach the DLQ only after MaxReceiveCount, without a reason attribute")
	}

	var groups syncer.OktaGroups
	if cfg.OktaOrgURL != "" {
		groups = oktaGroups{okta.NewSource(cfg.OktaOrgURL, config.Token(secrets, config.KeyOktaAPIToken))}
	}

	return syncer.NewHandler(syncer.Config{
		SCIM:   client,
		Dir:    scimapply.NewDirectory(client, scimapply.WithSelection(cfg.Selection.Match)),
		Ledger: led,
		Okta:   groups,
		// Changes that fail on their own are isolated on the queue this worker polls; failed
		// messages get a short backoff there instead of the queue's visibility timeout.
		Requeue:    queue.NewSender(sqsClient, cfg.QueueURL),
		Visibility: queue.NewVisibility(sqsClient, cfg.QueueURL),
		DeadLetter: deadLetter,

		UnprovisionedUserWait: cfg.UnprovisionedUserWait,

		Selected:     cfg.Selection.Match,
		DryRun:       cfg.DryRun,
		CreateGroups: cfg.CreateGroups,
		DeleteGroups: cfg.DeleteGroups,

		Log:        log,
		MetricsOut: os.Stdout,
		Namespace:  cfg.MetricsNamespace,
	}), nil
}

// oktaGroups reads groups, and users' groups, with the Okta API token of the secret (a rotated
// token needs no redeploy); without the token, renames cannot be followed and user lifecycle
// events fall back to what SCIM tells (syncer.OktaUserGroups).
type oktaGroups struct{ src *okta.Source }

// The worker finds the users' groups by asserting this interface on Config.Okta.
var _ syncer.OktaUserGroups = oktaGroups{}

func (o oktaGroups) Group(ctx context.Context, id string) (okta.Group, error) {
	r, err := o.reader(ctx)
	if err != nil {
		return okta.Group{}, err
	}
	return r.Group(ctx, id)
}

func (o oktaGroups) UserGroups(ctx context.Context, userID string) ([]okta.Group, error) {
	r, err := o.reader(ctx)
	if err != nil {
		return nil, err
	}
	return r.UserGroups(ctx, userID)
}

func (o oktaGroups) reader(ctx context.Context) (*okta.Reader, error) {
	r, err := o.src.Reader(ctx, false)
	if errors.Is(err, config.ErrMissingSecretKey) {
		return nil, syncer.ErrOktaUnconfigured
	}
	if err != nil {
		return nil, fmt.Errorf("okta reader: %w", err)
	}
	return r, nil
}
