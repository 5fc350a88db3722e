package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/eventhooks"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
)

func TestRunWithoutOrgIsAnError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-check"}, func(string) string { return "" }, &out, &errOut)
	if code != exitError || !strings.Contains(errOut.String(), "no Okta org URL") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"-nope"}, func(string) string { return "" }, &out, &errOut); code != exitError {
		t.Errorf("unknown flag: exit %d", code)
	}
}

// check's output and exit codes: 2 without a hook, 2 listing each lack, 0 when complete.
func TestCheckOutputAndExitCodes(t *testing.T) {
	okta := oktatest.New(oktatest.Options{})
	os := httptest.NewServer(okta.Handler())
	defer os.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"verification": r.Header.Get(oktahook.ChallengeHeader)})
	}))
	defer hook.Close()
	c, err := eventhooks.NewClient(os.URL, oktatest.DefaultToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := eventhooks.Desired{Name: "stack", URL: hook.URL, AuthHeader: "Authorization", AuthValue: "v", EventTypes: oktahook.HandledEventTypes()}
	ctx := context.Background()

	var out bytes.Buffer
	if code, err := check(ctx, c, d, &out); code != exitLacking || err != nil || !strings.Contains(out.String(), "no event hook named \"stack\"") {
		t.Errorf("no hook: exit %d, %v, %q", code, err, out.String())
	}
	partial := d
	partial.EventTypes = []string{oktahook.EventMembershipAdd, oktahook.EventMembershipRemove}
	if _, err := eventhooks.Apply(ctx, c, partial, eventhooks.Options{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	code, err := check(ctx, c, d, &out)
	if code != exitLacking || err != nil {
		t.Fatalf("partial: exit %d, %v", code, err)
	}
	lacks := len(oktahook.HandledEventTypes()) - 2
	if !strings.Contains(out.String(), "lacks "+strconv.Itoa(lacks)+" thing(s)") || !strings.Contains(out.String(), "  - missing event type user.lifecycle.deactivate\n") {
		t.Errorf("partial output:\n%s", out.String())
	}
	if _, err := eventhooks.Apply(ctx, c, d, eventhooks.Options{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code, err := check(ctx, c, d, &out); code != exitOK || err != nil || !strings.Contains(out.String(), "is complete") {
		t.Errorf("complete: exit %d, %v, %q", code, err, out.String())
	}
}
