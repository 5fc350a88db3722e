package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type echoResponse struct {
	Echo        string            `json:"echo"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMs  int64             `json:"deadlineMs"`
	Env         map[string]string `json:"env"`
	PID         int               `json:"pid"`
}

func startEcho(t *testing.T, env map[string]string, opts ...RuntimeOption) *Runtime {
	t.Helper()
	return MustStartRuntime(t, MustBuild(t, "tests/harness/testdata/echo"), env, opts...)
}

func invokeEcho(t *testing.T, r *Runtime, req map[string]any) echoResponse {
	t.Helper()
	var resp echoResponse
	if err := r.InvokeJSON(context.Background(), req, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// eventually polls cond: process output reaches us through a pipe copier, after the response.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRuntimeInvoke(t *testing.T) {
	r := startEcho(t, map[string]string{"ECHO_EXTRA": "extra"})
	before := time.Now()
	a := invokeEcho(t, r, map[string]any{"echo": "hello"})
	b := invokeEcho(t, r, map[string]any{"echo": "again"})

	if a.Echo != "hello" || b.Echo != "again" {
		t.Errorf("echo %q, %q", a.Echo, b.Echo)
	}
	if !uuidRE.MatchString(a.RequestID) || a.RequestID == b.RequestID {
		t.Errorf("request ids %q, %q", a.RequestID, b.RequestID)
	}
	if a.FunctionARN != "arn:aws:lambda:us-east-1:123456789012:function:echo" {
		t.Errorf("arn %q", a.FunctionARN)
	}
	deadline := time.UnixMilli(a.DeadlineMs)
	if deadline.Before(before.Add(DefaultTimeout-time.Millisecond)) || deadline.After(time.Now().Add(DefaultTimeout)) {
		t.Errorf("deadline %v is not about %v from the invoke", deadline, DefaultTimeout)
	}
	bin := MustBuild(t, "tests/harness/testdata/echo")
	home, _ := os.UserHomeDir()
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "echo",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                filepath.Dir(bin),
		"AWS_REGION":                      "us-east-1",
		"ECHO_EXTRA":                      "extra",
	}
	for k, v := range want {
		if a.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, a.Env[k], v)
		}
	}
	if a.Env["HOME"] == "" || a.Env["HOME"] == home {
		t.Errorf("HOME = %q: the host's home (and its ~/.aws) must not leak in", a.Env["HOME"])
	}
	if !strings.HasPrefix(a.Env["_X_AMZN_TRACE_ID"], "Root=1-") {
		t.Errorf("trace id %q", a.Env["_X_AMZN_TRACE_ID"])
	}
	if a.PID != b.PID || r.Starts() != 1 {
		t.Errorf("pids %d, %d after %d starts: a warm invoke must reuse the process", a.PID, b.PID, r.Starts())
	}
	if r.ColdStart() <= 0 {
		t.Error("no cold start measured")
	}
}

func TestRuntimeDeadlineFromContext(t *testing.T) {
	r := startEcho(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	var resp echoResponse
	if err := r.InvokeJSON(ctx, map[string]any{}, &resp); err != nil {
		t.Fatal(err)
	}
	want, _ := ctx.Deadline()
	if resp.DeadlineMs != want.UnixMilli() {
		t.Errorf("deadline %d, want the context's %d", resp.DeadlineMs, want.UnixMilli())
	}
}

func TestRuntimeFunctionError(t *testing.T) {
	r := startEcho(t, nil)
	first := invokeEcho(t, r, map[string]any{})
	_, err := r.Invoke(context.Background(), []byte(`{"error":"boom"}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "errorString" || fe.Message != "boom" || !strings.Contains(string(fe.Body), `"errorMessage":"boom"`) {
		t.Fatalf("err = %#v", err)
	}
	if after := invokeEcho(t, r, map[string]any{}); after.PID != first.PID {
		t.Error("a returned error must not end the process")
	}
}

func TestRuntimeMalformedPayload(t *testing.T) {
	r := startEcho(t, nil)
	_, err := r.Invoke(context.Background(), []byte(`{not json`))
	var fe *FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a FunctionError from the SDK's decode", err)
	}
}

func TestRuntimePanicRestartsProcess(t *testing.T) {
	r := startEcho(t, nil)
	first := invokeEcho(t, r, map[string]any{})
	_, err := r.Invoke(context.Background(), []byte(`{"panic":true}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != "echo asked to panic" {
		t.Fatalf("err = %v", err)
	}
	after := invokeEcho(t, r, map[string]any{})
	if after.PID == first.PID || r.Starts() != 2 {
		t.Errorf("after a panic: pid %d (was %d), %d starts; want a new process", after.PID, first.PID, r.Starts())
	}
}

func TestRuntimeExit(t *testing.T) {
	r := startEcho(t, nil)
	_, err := r.Invoke(context.Background(), []byte(`{"exit":3,"stderr":"going down"}`))
	var ee *ExitError
	if !errors.As(err, &ee) || !strings.Contains(ee.Err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
	if resp := invokeEcho(t, r, map[string]any{"echo": "back"}); resp.Echo != "back" || r.Starts() != 2 {
		t.Errorf("after exit: %+v, %d starts", resp, r.Starts())
	}
}

func TestRuntimeTimeout(t *testing.T) {
	r := startEcho(t, nil, WithTimeout(300*time.Millisecond))
	_, err := r.Invoke(context.Background(), []byte(`{"block":"30s"}`))
	var te *TimeoutError
	if !errors.As(err, &te) || te.Timeout != 300*time.Millisecond {
		t.Fatalf("err = %v", err)
	}
	// Lambda replaces a timed-out environment.
	if err := r.InvokeJSON(context.Background(), map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	if r.Starts() != 2 {
		t.Errorf("%d starts, want 2", r.Starts())
	}
}

func TestRuntimeAbandonedInvocationKeepsProcess(t *testing.T) {
	r := startEcho(t, nil)
	first := invokeEcho(t, r, map[string]any{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if _, err := r.Invoke(ctx, []byte(`{"block":"500ms"}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// The late answer is accepted and dropped; the process lives on.
	after := invokeEcho(t, r, map[string]any{"echo": "next"})
	if after.Echo != "next" || after.PID != first.PID {
		t.Errorf("after an abandoned invoke: %+v (first pid %d)", after, first.PID)
	}
}

func TestRuntimeCapturesOutput(t *testing.T) {
	var tee Output
	r := startEcho(t, nil, WithLogWriter(&tee))
	invokeEcho(t, r, map[string]any{"log": "to-stdout", "stderr": "to-stderr"})
	for _, s := range []string{"to-stdout", "to-stderr"} {
		eventually(t, s+" in the output", func() bool {
			return strings.Contains(r.Logs(), s) && strings.Contains(tee.String(), s)
		})
	}
	if lines := r.Output().Lines(); len(lines) < 2 {
		t.Errorf("lines %q", lines)
	}
}

func TestRuntimeInitError(t *testing.T) {
	r := startEcho(t, map[string]string{"ECHO_INIT_FAIL": "SECRET_ID: required"})
	_, err := r.Invoke(context.Background(), []byte(`{}`))
	var ie *InitError
	if !errors.As(err, &ie) || ie.Type != "Runtime.InitError" || ie.Message != "SECRET_ID: required" {
		t.Fatalf("err = %v", err)
	}
}

func TestRuntimeInitTimeout(t *testing.T) {
	r := startEcho(t, map[string]string{"ECHO_INIT_SLEEP": "30s"}, WithInitTimeout(200*time.Millisecond))
	_, err := r.Invoke(context.Background(), []byte(`{}`))
	var ite *InitTimeoutError
	if !errors.As(err, &ite) || ite.Timeout != 200*time.Millisecond {
		t.Fatalf("err = %v", err)
	}
}

// A warm process busy with a long invocation is not an init timeout for the next one.
func TestRuntimeSerialInvocations(t *testing.T) {
	r := startEcho(t, nil, WithInitTimeout(300*time.Millisecond))
	invokeEcho(t, r, map[string]any{})
	errc := make(chan error, 1)
	go func() { _, err := r.Invoke(context.Background(), []byte(`{"block":"600ms"}`)); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	if resp := invokeEcho(t, r, map[string]any{"echo": "second"}); resp.Echo != "second" {
		t.Errorf("echo %q", resp.Echo)
	}
	if err := <-errc; err != nil {
		t.Error(err)
	}
}

func TestRuntimeSIGTERMExtension(t *testing.T) {
	r := startEcho(t, map[string]string{"ECHO_SIGTERM": "1"})
	if resp := invokeEcho(t, r, map[string]any{"echo": "x"}); resp.Echo != "x" {
		t.Errorf("echo %q", resp.Echo)
	}
	if strings.Contains(r.Logs(), "Failed to register internal extension") {
		t.Errorf("extension registration failed:\n%s", r.Logs())
	}
}

func TestRuntimeCloseStopsProcess(t *testing.T) {
	bin := MustBuild(t, "tests/harness/testdata/echo")
	r, err := StartRuntime(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	invokeEcho(t, r, map[string]any{})
	p := r.proc
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("process still running after Close")
	}
	if _, err := r.Invoke(context.Background(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Close succeeded")
	}
}

func TestBuildFunctionRejectsPaths(t *testing.T) {
	for _, name := range []string{"", "../hook", "hook/x", "."} {
		if _, err := BuildFunction(name); err == nil {
			t.Errorf("BuildFunction(%q) succeeded", name)
		}
	}
	if _, err := Build("tests/harness/testdata/nonexistent"); err == nil {
		t.Error("building a missing package succeeded")
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/okta-aws-sso-sync/okta-aws-sso-sync") {
		t.Errorf("ModuleRoot = %s", root)
	}
}
