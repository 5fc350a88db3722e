// Command devrun runs okta-aws-sso-sync on a laptop with no AWS account and no network: the real
// function bootstraps under the harness's Lambda Runtime API, moto_server for SQS, Secrets Manager
// and DynamoDB, the SCIM emulator for AWS IAM Identity Center and the Okta API fake, seeded with
// the users and groups of the events/ samples. The Makefile's demo, invoke and local targets call
// it.
//
//	devrun demo [-v]                                  replay events/ through hook → queue → sync, reconcile, print a summary
//	devrun invoke -fn hook|sync|reconcile -event FILE  run one function once (like sam local invoke)
//	devrun local [-addr 127.0.0.1:3000] [-v]           serve the hook over HTTP (like sam local start-api)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  devrun demo [-v]                                   replay events/ through hook → queue → sync, then reconcile; print a summary
  devrun invoke -fn hook|sync|reconcile -event FILE  run one function once, like sam local invoke (response on stdout, logs on stderr)
  devrun local [-addr 127.0.0.1:3000] [-v]           serve the hook over HTTP like sam local start-api; Ctrl-C stops
`

func main() {
	// Ctrl-C ends the context; every process devrun started is stopped before it exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "devrun:", err)
		}
		os.Exit(1)
	}
}

// errReported: the failure was already printed (a function error in invoke).
var errReported = errors.New("reported")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("devrun "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.String("events", "", "directory of the sample events (default: events/ of the repository)")
	verbose := fs.Bool("v", false, "stream the functions' logs to stderr")
	switch cmd {
	case "demo":
		if err := fs.Parse(args); err != nil {
			return err
		}
		opts := demoOptions{eventsDir: *events}
		if *verbose {
			opts.verbose = &syncWriter{w: stderr}
		}
		_, err := runDemo(ctx, opts, stdout)
		return err
	case "invoke":
		fn := fs.String("fn", "", "function: hook, sync or reconcile")
		event := fs.String("event", "", "payload file, e.g. events/hook-delivery-membership.json")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return runInvoke(ctx, invokeOptions{fn: *fn, event: *event}, stdout, stderr)
	case "local":
		addr := fs.String("addr", defaultLocalAddr, "listen address")
		if err := fs.Parse(args); err != nil {
			return err
		}
		opts := localOptions{addr: *addr}
		if *verbose {
			opts.verbose = &syncWriter{w: stderr}
		}
		return runLocal(ctx, opts, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
