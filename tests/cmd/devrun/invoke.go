package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// invokeOptions configure runInvoke.
type invokeOptions struct {
	fn    string
	event string
	moto  *harness.Moto // nil: start one (tests share theirs)
	name  string        // resource name suffix within a shared moto
}

// invokeResult is one invocation: the response or the function's error document.
type invokeResult struct {
	response []byte
	err      error
	world    *world            // closed; its emulators' state is still readable
	queued   []harness.Message // hook: what it enqueued
}

// runInvoke is the offline `sam local invoke`: it starts the local world seeded like the demo's,
// runs the real function once with the event file as payload, prints the response JSON on stdout
// and the function's logs on stderr, and fails on a function error.
func runInvoke(ctx context.Context, opts invokeOptions, stdout, stderr io.Writer) error {
	res, err := invoke(ctx, opts, stderr)
	if err != nil {
		return err
	}
	if res.err != nil {
		var fe *harness.FunctionError
		if errors.As(res.err, &fe) && len(fe.Body) > 0 {
			// What Lambda returns for a function error, as sam local invoke prints it.
			fmt.Fprintln(stdout, string(bytes.TrimSpace(fe.Body)))
		}
		fmt.Fprintf(stderr, "devrun: %s: %v\n", opts.fn, res.err)
		return errReported
	}
	if _, err := fmt.Fprintln(stdout, string(bytes.TrimSpace(res.response))); err != nil {
		return err
	}
	if opts.fn == "hook" {
		fmt.Fprintf(stderr, "devrun: %s on the FIFO queue:\n", plural(len(res.queued), "message"))
		for _, m := range res.queued {
			cs, err := queue.Decode(m.Body)
			if err != nil {
				fmt.Fprintf(stderr, "devrun:   undecodable: %v\n", err)
				continue
			}
			// One message per Okta group of the delivery, holding its changes (pkg/queue v2).
			for _, c := range cs {
				fmt.Fprintf(stderr, "devrun:   %-15s %-26s %-14s group %s\n", c.Kind, c.Login, c.GroupName, m.GroupID)
			}
		}
		return nil
	}
	fmt.Fprintln(stderr, "devrun: AWS groups after the invocation (SCIM emulator):")
	for _, g := range res.world.membership() {
		fmt.Fprintf(stderr, "devrun:   %-16s %s\n", g.group, formatMembers(g.members))
	}
	return nil
}

// invoke runs one invocation; logs receives the function's output as it is written.
func invoke(ctx context.Context, opts invokeOptions, logs io.Writer) (*invokeResult, error) {
	switch opts.fn {
	case "hook", "sync", "reconcile":
	case "":
		return nil, errors.New("-fn is required: hook, sync or reconcile")
	default:
		return nil, fmt.Errorf("-fn %q: want hook, sync or reconcile", opts.fn)
	}
	if opts.event == "" {
		return nil, errors.New("-event is required: a payload file such as events/hook-verification.json")
	}
	payload, err := os.ReadFile(opts.event)
	if err != nil {
		return nil, err
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("%s is not JSON", opts.event)
	}
	name := opts.name
	if name == "" {
		name = "invoke"
	}
	prebuild(opts.fn)
	w, err := startWorld(ctx, opts.moto, name)
	if err != nil {
		return nil, err
	}
	defer w.close()
	w.logs = logs
	rt, err := w.start(opts.fn)
	if err != nil {
		return nil, err
	}
	res := &invokeResult{world: w}
	res.response, res.err = rt.Invoke(ctx, payload)
	if opts.fn == "hook" {
		// What the hook enqueued is its effect; read it before the world stops.
		if res.queued, err = w.moto.ReceiveAll(ctx, w.queue.URL); err != nil {
			return nil, err
		}
	}
	return res, nil
}
