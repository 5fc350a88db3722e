// Command plan shows what the reconciler would change, without changing anything (make plan): it
// runs the reconciler's read and plan phases with a SCIM client and a ledger that refuse every
// write (scim.ReadOnlyOf, ledger.ReadOnlyOf) and prints one row per selected group (adds, removes,
// renames, adoptions, creations, blocked removals, identity conflicts), the orphan AWS groups and
// the totals.
//
//	plan [-stack okta-aws-sso-sync] [-group AWS_Admins]... [-prefix AWS_ | -regex 'AWS_.*'] [-json]
//	plan -offline
//
// It uses the operator's own AWS credentials (config.LoadAWS, the SDK's default credential chain:
// environment variables, then the shared config and credentials files with their profiles and IAM
// Identity Center sign-in, per the AWS SDK for Go v2 developer guide, "Configure the SDK") to read the secret (aws_sso_scim_key and okta_api_token, the keys the functions use) and, when
// the stack can be read, the reconcile function's settings: parameters ScimUrl, OktaOrgUrl,
// GroupPrefix, GroupRegex, MaxRemovals, CreateGroups, ReconcileConcurrency and outputs SecretArn,
// StateTableName. Flags win over the environment (the function's variable names: SECRET_ID,
// SCIM_URL, OKTA_ORG_URL, …), which wins over the stack. The state table is only read (the sync
// worker's ordering marks), so the plan leaves to the sync worker what a newer Okta event
// decided, as a run would; -state-table none skips it.
//
// -offline needs no account: the SCIM emulator and the Okta fake run in-process, seeded with a
// small world that has one of each kind of drift.
//
// Exit status: 0 in sync, 2 drift (or something needs a person: an orphan, an identity conflict,
// a skipped group), 1 error (the plan is incomplete: a group could not be read, a -group that is
// not selected, a write refused).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/cmd/internal/stack"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/reconciler"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

const (
	exitError    = reconciler.PlanExitError
	defaultStack = "okta-aws-sso-sync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

type flags struct {
	stack, secretID, scimURL, oktaOrgURL, stateTable string
	prefix, regex, maxRemovals                       string
	groups                                           []string
	offline, json, verbose                           bool
	timeout                                          time.Duration
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := getenv("STACK_NAME")
	if stack == "" {
		stack = defaultStack
	}
	fs.StringVar(&f.stack, "stack", stack, `CloudFormation stack whose settings the plan uses (STACK_NAME); "" reads none`)
	fs.StringVar(&f.secretID, "secret-id", "", "secret id/ARN (else SECRET_ID, else the stack's SecretArn output)")
	fs.StringVar(&f.scimURL, "scim-url", "", "AWS SSO SCIM endpoint (else SCIM_URL, else the stack's ScimUrl)")
	fs.StringVar(&f.oktaOrgURL, "okta-org-url", "", "https://<org>.okta.com (else OKTA_ORG_URL, else the stack's OktaOrgUrl)")
	fs.StringVar(&f.stateTable, "state-table", "", "ordering table, only read (else STATE_TABLE, else the stack's StateTableName); none reads no marks")
	fs.StringVar(&f.prefix, "prefix", "", "select Okta groups by name prefix (else GROUP_PREFIX, else the stack's GroupPrefix, else AWS_)")
	fs.StringVar(&f.regex, "regex", "", "select Okta groups by regular expression (whole name); wins over -prefix")
	fs.StringVar(&f.maxRemovals, "max-removals", "", "the removal cap to plan with (else MAX_REMOVALS, else the stack's MaxRemovals, else 100)")
	fs.Func("group", "plan only this selected Okta group (name or id; repeatable, or comma-separated)", func(v string) error {
		for _, g := range strings.Split(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				f.groups = append(f.groups, g)
			}
		}
		return nil
	})
	fs.BoolVar(&f.offline, "offline", false, "plan against in-process emulators seeded with a small drift world (no account needed)")
	fs.BoolVar(&f.json, "json", false, "print the plan as JSON instead of the table")
	fs.BoolVar(&f.verbose, "v", false, "the reconciler's JSON log (debug) on stderr")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "overall time limit; groups not read by then make the plan incomplete")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return f, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	f, err := parse(args, getenv, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "plan: %v\n", err)
		}
		return exitError
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	if f.verbose {
		log = telemetry.NewLogger(stderr, slog.LevelDebug)
	}

	var cfg reconciler.Config
	var world *offlineWorld
	if f.offline {
		world, err = startOffline()
		if err != nil {
			fmt.Fprintf(stderr, "plan: %v\n", err)
			return exitError
		}
		defer world.Close()
		cfg, err = world.config(f)
	} else {
		cfg, err = online(ctx, f, getenv, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return exitError
	}
	cfg.Log, cfg.MetricsOut = log, io.Discard

	rep, err := reconciler.RunPlan(ctx, cfg, f.groups)
	if err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
	}
	if world != nil {
		if n := world.writes(); n > 0 {
			// RunPlan's read-only client makes this impossible; the emulators' count is the proof.
			rep.Errors = append(rep.Errors, fmt.Sprintf("the emulators saw %d writes", n))
		}
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.Render(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "plan: write the plan: %v\n", err)
		return exitError
	}
	return rep.ExitCode()
}

// flagLayer is what the flags set, under the reconcile function's variable names.
func flagLayer(f flags) map[string]string {
	return map[string]string{
		"SECRET_ID": f.secretID, "SCIM_URL": f.scimURL, "OKTA_ORG_URL": f.oktaOrgURL, "STATE_TABLE": f.stateTable,
		"GROUP_PREFIX": f.prefix, "GROUP_REGEX": f.regex, "MAX_REMOVALS": f.maxRemovals,
	}
}

// online wires the operator's credentials: the stack's settings (when readable), the secret, the
// SCIM client made read-only, the ordering table made read-only, and the Okta reader.
func online(ctx context.Context, f flags, getenv func(string) string, stderr io.Writer) (reconciler.Config, error) {
	awsCfg, err := config.LoadAWS(ctx)
	if err != nil {
		return reconciler.Config{}, err
	}
	layers := []func(string) string{config.Layer(flagLayer(f)), getenv}
	if f.stack != "" {
		params, outputs, err := stack.Describe(ctx, cloudformation.NewFromConfig(awsCfg), f.stack)
		if err == nil {
			layers = append(layers, config.Layer(config.StackEnv(params, outputs)))
		} else if _, perr := config.LoadPlan(layers...); perr != nil {
			return reconciler.Config{}, fmt.Errorf("%w; without the stack: %w (pass -secret-id, -scim-url, -okta-org-url or set SECRET_ID, SCIM_URL, OKTA_ORG_URL)", err, perr)
		} else {
			fmt.Fprintf(stderr, "plan: %v: planning with the flags, the environment and the defaults (GROUP_PREFIX AWS_, MAX_REMOVALS 100 unless set)\n", err)
		}
	}
	p, err := config.LoadPlan(layers...)
	if err != nil {
		return reconciler.Config{}, fmt.Errorf("%w (flags -secret-id, -scim-url, -okta-org-url; the environment; or -stack <name>)", err)
	}
	secrets := config.NewSecretStore(secretsmanager.NewFromConfig(awsCfg), p.SecretID, config.DefaultSecretTTL)
	s, err := secrets.Get(ctx)
	if err != nil {
		return reconciler.Config{}, err
	}
	if err := s.Require(config.KeyAWSSSOSCIMKey, config.KeyOktaAPIToken); err != nil {
		return reconciler.Config{}, fmt.Errorf("secret %s: %w", p.SecretID, err)
	}
	client, err := scim.New(p.ScimURL, config.Token(secrets, config.KeyAWSSSOSCIMKey))
	if err != nil {
		return reconciler.Config{}, fmt.Errorf("scim client: %w", err)
	}
	cfg := planConfig(p)
	cfg.SCIM = scim.ReadOnlyOf(client)
	cfg.Okta = reconciler.OktaSourceOf(okta.NewSource(p.OktaOrgURL, config.Token(secrets, config.KeyOktaAPIToken)))
	if p.StateTable != "" {
		cfg.Ledger = ledger.ReadOnlyOf(ledger.New(dynamodb.NewFromConfig(awsCfg), p.StateTable))
	}
	return cfg, nil
}

// planConfig is the reconciler's configuration of a plan (RunPlan makes it a dry run).
func planConfig(p config.Plan) reconciler.Config {
	return reconciler.Config{
		Selection:        p.Selection,
		CreateGroups:     p.CreateGroups,
		AllowEmptyGroups: p.AllowEmptyGroups,
		MaxRemovals:      p.MaxRemovals,
		Concurrency:      p.Concurrency,
	}
}
