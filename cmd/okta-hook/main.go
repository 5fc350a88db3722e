// Command okta-hook creates or updates okta-aws-sso-sync's Okta event hook (make okta-hook), or
// lists what an existing one lacks (make okta-hook-check, -check). The event types are the ones
// the hook function handles (oktahook.HandledEventTypes); the URL is the stack's HookUrl output;
// the auth header is the stack's AuthHeader parameter (or AUTH_HEADER) with auth_token_for_okta from the
// stack's secret, read with the AWS SDK so it is never typed or printed.
//
//	okta-hook -org https://example.okta.com [-stack okta-aws-sso-sync] [-check] [-rotate]
//
// Okta API token: OKTA_API_TOKEN, else okta_api_token from the secret. Managing event hooks needs
// a token of an admin allowed to (okta.eventHooks.manage; a read-only admin's token is not enough).
// API Gateway key: HOOK_API_KEY, sent as the custom header x-api-key (the Makefile reads it with
// aws apigateway get-api-key when the stack has an ApiKeyId output).
//
// Exit status: 0 done / nothing lacks, 2 (-check) the hook lacks something, 1 error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/cmd/internal/stack"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/eventhooks"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
)

const (
	exitOK      = 0
	exitError   = 1
	exitLacking = 2
	// apiKeyHeader is the header API Gateway reads the API key from.
	apiKeyHeader = "x-api-key"
	// defaultAuthHeader is the template's AuthHeader default and the hook's AUTH_HEADER default.
	defaultAuthHeader = "Authorization"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

type flags struct {
	org, stack, name, url, secretID, authHeader string
	check, rotate                               bool
	timeout                                     time.Duration
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var f flags
	fs := flag.NewFlagSet("okta-hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.org, "org", getenv("OKTA_ORG_URL"), "Okta org URL, https://<org>.okta.com (OKTA_ORG_URL)")
	fs.StringVar(&f.stack, "stack", envOr(getenv, "STACK_NAME", "okta-aws-sso-sync"), "CloudFormation stack whose HookUrl and SecretArn outputs are used (STACK_NAME)")
	fs.StringVar(&f.name, "name", "", "event hook name (default: the stack name)")
	fs.StringVar(&f.url, "url", "", "hook URL instead of the stack's HookUrl output")
	fs.StringVar(&f.secretID, "secret-id", getenv("SECRET_ID"), "secret id/ARN instead of the stack's SecretArn output (SECRET_ID)")
	fs.StringVar(&f.authHeader, "auth-header", getenv("AUTH_HEADER"), "header Okta sends auth_token_for_okta in (AUTH_HEADER; default: the stack's AuthHeader parameter, else Authorization)")
	fs.BoolVar(&f.check, "check", false, "change nothing: list what the existing hook lacks; exit 2 if anything")
	fs.BoolVar(&f.rotate, "rotate", false, "send the auth header value again (after rotating auth_token_for_okta), then verify")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "okta-hook: unexpected arguments %q\n", fs.Args())
		return exitError
	}
	if f.name == "" {
		f.name = f.stack
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	code, err := execute(ctx, f, getenv, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "okta-hook: %v\n", err)
		return exitError
	}
	return code
}

func execute(ctx context.Context, f flags, getenv func(string) string, stdout io.Writer) (int, error) {
	if f.org == "" {
		return exitError, errors.New("no Okta org URL: pass -org https://<org>.okta.com or set OKTA_ORG_URL")
	}
	cfg, err := config.LoadAWS(ctx)
	if err != nil {
		return exitError, err
	}
	if f.url == "" || f.secretID == "" {
		params, outs, err := stack.Describe(ctx, cloudformation.NewFromConfig(cfg), f.stack)
		if err != nil {
			return exitError, fmt.Errorf("%w (or pass -url and -secret-id)", err)
		}
		if f.authHeader == "" {
			f.authHeader = params["AuthHeader"]
		}
		if f.url == "" {
			if f.url = outs["HookUrl"]; f.url == "" {
				return exitError, fmt.Errorf("stack %s has no HookUrl output", f.stack)
			}
		}
		if f.secretID == "" {
			if f.secretID = outs["SecretArn"]; f.secretID == "" {
				return exitError, fmt.Errorf("stack %s has no SecretArn output", f.stack)
			}
		}
	}
	if f.authHeader == "" {
		f.authHeader = defaultAuthHeader
	}
	secrets, err := config.NewSecretStore(secretsmanager.NewFromConfig(cfg), f.secretID, 0).Get(ctx)
	if err != nil {
		return exitError, err
	}
	oktaToken := getenv("OKTA_API_TOKEN")
	if oktaToken == "" {
		oktaToken = secrets.OktaAPIToken
	}
	if oktaToken == "" {
		return exitError, errors.New("no Okta API token: set OKTA_API_TOKEN (an admin token allowed to manage event hooks) or okta_api_token in the secret")
	}
	d := eventhooks.Desired{
		Name:       f.name,
		URL:        f.url,
		AuthHeader: f.authHeader,
		AuthValue:  secrets.AuthTokenForOkta,
		EventTypes: oktahook.HandledEventTypes(),
	}
	if key := strings.TrimSpace(getenv("HOOK_API_KEY")); key != "" {
		d.Headers = []eventhooks.Header{{Key: apiKeyHeader, Value: key}}
	}
	client, err := eventhooks.NewClient(f.org, oktaToken, &http.Client{Timeout: 30 * time.Second}, d.AuthValue, getenv("HOOK_API_KEY"))
	if err != nil {
		return exitError, err
	}

	if f.check {
		return check(ctx, client, d, stdout)
	}
	if d.AuthValue == "" {
		return exitError, fmt.Errorf("secret %s has no %s: the hook would accept nothing", f.secretID, config.KeyAuthTokenForOkta)
	}
	_, err = eventhooks.Apply(ctx, client, d, eventhooks.Options{
		Rotate: f.rotate,
		Log:    func(line string) { fmt.Fprintln(stdout, "okta-hook: "+line) },
	})
	if err != nil {
		return exitError, err
	}
	return exitOK, nil
}

func check(ctx context.Context, c *eventhooks.Client, d eventhooks.Desired, stdout io.Writer) (int, error) {
	h, problems, err := eventhooks.Check(ctx, c, d)
	if errors.Is(err, eventhooks.ErrNoHook) {
		fmt.Fprintf(stdout, "okta-hook check: %v; create it with make okta-hook\n", err)
		return exitLacking, nil
	}
	if err != nil {
		return exitError, err
	}
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "okta-hook check: event hook %q (id %s) is complete: %s, %d event types, %s, ACTIVE, VERIFIED\n",
			h.Name, h.ID, d.URL, len(d.EventTypes), d.AuthHeader)
		return exitOK, nil
	}
	fmt.Fprintf(stdout, "okta-hook check: event hook %q (id %s) lacks %d thing(s):\n", h.Name, h.ID, len(problems))
	for _, p := range problems {
		fmt.Fprintf(stdout, "  - %s\n", p)
	}
	fmt.Fprintln(stdout, "fix with make okta-hook")
	return exitLacking, nil
}
