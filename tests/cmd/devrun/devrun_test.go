package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// One moto_server for the in-process tests of this package.
var shared struct {
	once sync.Once
	moto *harness.Moto
	err  error
}

func sharedMoto(t *testing.T) *harness.Moto {
	t.Helper()
	shared.once.Do(func() { shared.moto, shared.err = harness.StartMoto() })
	if shared.err != nil {
		t.Fatalf("start moto_server: %v", shared.err)
	}
	return shared.moto
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.moto != nil {
		_ = shared.moto.Close()
	}
	os.Exit(code)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func root(t *testing.T) string {
	t.Helper()
	r, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// documented is one row of events/README.md: what a sample must produce.
type documented struct {
	file string
	// hook rows
	status   int
	body     string // "…" matches anything; meaningful when hasBody
	hasBody  bool
	enqueued int
	// sync and reconcile rows: these keys must have these values in the response
	response map[string]any
}

var (
	rowFile      = regexp.MustCompile("^`([^`]+\\.json)`$")
	leadingInt   = regexp.MustCompile(`^(\d+)`)
	firstBacktik = regexp.MustCompile("`([^`]*)`")
)

// readmeRows parses the tables of events/README.md, so the documentation is what the tests check.
func readmeRows(t *testing.T) map[string]documented {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "events", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]documented{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		m := rowFile.FindStringSubmatch(cells[1])
		if m == nil {
			continue
		}
		d := documented{file: m[1]}
		if strings.HasPrefix(d.file, "hook-") {
			// | file | request | response | enqueued |
			resp := cells[3]
			s := leadingInt.FindString(resp)
			if s == "" {
				t.Fatalf("README row %s: response %q has no status", d.file, resp)
			}
			d.status, _ = strconv.Atoi(s)
			if bt := firstBacktik.FindStringSubmatch(resp); bt != nil {
				d.body, d.hasBody = bt[1], true
			} else if strings.Contains(resp, "empty body") {
				d.body, d.hasBody = "", true
			}
			switch enq := cells[4]; {
			case strings.HasPrefix(enq, "nothing"):
			case leadingInt.MatchString(enq):
				d.enqueued, _ = strconv.Atoi(leadingInt.FindString(enq))
			default:
				t.Fatalf("README row %s: enqueued %q is neither a count nor nothing", d.file, enq)
			}
		} else {
			// | file | function | payload | response |
			bt := firstBacktik.FindStringSubmatch(cells[4])
			if bt == nil {
				t.Fatalf("README row %s: response %q has no JSON", d.file, cells[4])
			}
			if err := json.Unmarshal([]byte(bt[1]), &d.response); err != nil {
				t.Fatalf("README row %s: response %q: %v", d.file, bt[1], err)
			}
		}
		rows[d.file] = d
	}
	return rows
}

// matchBody reports whether body matches the documented pattern, "…" standing for anything.
func matchBody(pattern, body string) bool {
	parts := strings.Split(pattern, "…")
	if len(parts) == 1 {
		return body == pattern
	}
	if !strings.HasPrefix(body, parts[0]) || !strings.HasSuffix(body, parts[len(parts)-1]) {
		return false
	}
	rest := body[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return len(rest) >= len(parts[len(parts)-1])
}

func TestMatchBody(t *testing.T) {
	for _, c := range []struct {
		pattern, body string
		want          bool
	}{
		{`{"a":1}`, `{"a":1}`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"error":"malformed JSON: …"}`, `{"error":"malformed JSON: unexpected end"}`, true},
		{`{"error":"malformed JSON: …"}`, `{"error":"wrong shape: x"}`, false},
		{`{"error":"wrong shape: eventType …"}`, `{"error":"wrong shape: eventType \"x\""}`, true},
		{`a…b…c`, `a-b-c`, true},
		{`a…b…c`, `a-c`, false},
		{`ab…bc`, `abc`, false},
	} {
		if got := matchBody(c.pattern, c.body); got != c.want {
			t.Errorf("matchBody(%q, %q) = %v", c.pattern, c.body, got)
		}
	}
}

// functionOf is the function a sample belongs to, by its name.
func functionOf(file string) string {
	switch {
	case strings.HasPrefix(file, "hook-"):
		return "hook"
	case strings.HasPrefix(file, "sqs-"):
		return "sync"
	case strings.HasPrefix(file, "reconcile-"), strings.HasPrefix(file, "schedule-"):
		return "reconcile"
	}
	return ""
}

func sampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in events/: %v", err)
	}
	return files
}

// TestInvokeSamples is `make invoke` for every file in events/: the real bootstrap of the
// sample's function, on the seeded local world, must answer what events/README.md documents.
func TestInvokeSamples(t *testing.T) {
	prebuild("hook", "sync", "reconcile") // in parallel with moto's start
	m := sharedMoto(t)
	rows := readmeRows(t)
	syncSample := decodeSQSSample(t)
	for i, path := range sampleFiles(t) {
		file := filepath.Base(path)
		t.Run(file, func(t *testing.T) {
			fn := functionOf(file)
			if fn == "" {
				t.Fatalf("%s: name does not say its function (hook-*, sqs-*, reconcile-*)", file)
			}
			doc, ok := rows[file]
			if !ok {
				t.Fatalf("%s has no row in events/README.md", file)
			}
			var logs bytes.Buffer
			res, err := invoke(testContext(t), invokeOptions{fn: fn, event: path, moto: m, name: fmt.Sprintf("sample%02d", i)}, &syncWriter{w: &logs})
			if err != nil {
				t.Fatal(err)
			}
			if res.err != nil {
				t.Fatalf("function error: %v\n%s", res.err, logs.String())
			}
			switch fn {
			case "hook":
				checkHook(t, res, doc, syncSample)
			default:
				checkSubset(t, res.response, doc.response)
			}
			if strings.Contains(logs.String(), scimToken) || strings.Contains(logs.String(), oktaToken) {
				t.Error("a token appears in the function's logs")
			}
		})
	}
}

func checkHook(t *testing.T, res *invokeResult, doc documented, syncSample []membership.Change) {
	t.Helper()
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(res.response, &resp); err != nil {
		t.Fatalf("response %s: %v", res.response, err)
	}
	if resp.StatusCode != doc.status {
		t.Errorf("status %d, README says %d (body %s)", resp.StatusCode, doc.status, resp.Body)
	}
	if doc.hasBody && !matchBody(doc.body, resp.Body) {
		t.Errorf("body %q, README says %q", resp.Body, doc.body)
	}
	// The README counts changes; the hook packs a delivery's changes of a group into one message.
	msgs := res.queued
	var got []membership.Change
	groups := map[string]bool{}
	for _, x := range msgs {
		cs, err := queue.Decode(x.Body)
		if err != nil {
			t.Fatal(err)
		}
		if groups[x.GroupID] {
			t.Errorf("two messages of group %s for one delivery", x.GroupID)
		}
		groups[x.GroupID] = true
		got = append(got, cs...)
	}
	if len(got) != doc.enqueued {
		t.Errorf("%d changes enqueued in %d messages, README says %d", len(got), len(msgs), doc.enqueued)
	}
	if doc.file != "hook-delivery-membership.json" {
		return
	}
	// events/sqs-sync-batch.json is documented as exactly what the hook enqueues for this delivery.
	slices.SortFunc(got, membership.Compare)
	want := slices.Clone(syncSample)
	slices.SortFunc(want, membership.Compare)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the hook enqueued\n%+v\nevents/sqs-sync-batch.json holds\n%+v", got, want)
	}
}

// checkSubset asserts that every documented key has the documented value in the response.
func checkSubset(t *testing.T, response []byte, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(response, &got); err != nil {
		t.Fatalf("response %s: %v", response, err)
	}
	for k, v := range want {
		gv, ok := got[k]
		if !ok && v != nil {
			t.Errorf("response lacks %q (README: %v): %s", k, v, response)
			continue
		}
		if !reflect.DeepEqual(gv, v) {
			t.Errorf("%s = %v, README says %v (response %s)", k, gv, v, response)
		}
	}
}

// decodeSQSSample checks events/sqs-sync-batch.json is what SQS would deliver for its bodies and
// returns its changes.
func decodeSQSSample(t *testing.T) []membership.Change {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "events", "sqs-sync-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) == 0 || len(ev.Records) > batchSize {
		t.Fatalf("%d records; an SQS batch holds 1 to %d", len(ev.Records), batchSize)
	}
	var out []membership.Change
	for _, r := range ev.Records {
		cs, err := queue.Decode(r.Body)
		if err != nil {
			t.Fatalf("record %s: %v", r.MessageId, err)
		}
		ids := make([]string, len(cs))
		for i, c := range cs {
			ids[i] = queue.DedupID(c)
		}
		sum := md5.Sum([]byte(r.Body))
		for k, want := range map[string]string{
			"MessageGroupId":          queue.GroupID(cs[0]),
			"MessageDeduplicationId":  queue.PackDedupID(ids),
			"ApproximateReceiveCount": "1",
		} {
			if r.Attributes[k] != want {
				t.Errorf("record %s: %s = %q, want %q", r.MessageId, k, r.Attributes[k], want)
			}
		}
		for _, k := range []string{"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SequenceNumber", "SenderId"} {
			if r.Attributes[k] == "" {
				t.Errorf("record %s: attribute %s missing", r.MessageId, k)
			}
		}
		if r.Md5OfBody != hex.EncodeToString(sum[:]) || r.EventSource != "aws:sqs" || !strings.HasSuffix(r.EventSourceARN, ".fifo") {
			t.Errorf("record %s: md5 %s, source %s, arn %s", r.MessageId, r.Md5OfBody, r.EventSource, r.EventSourceARN)
		}
		out = append(out, cs...)
	}
	return out
}

// A function error is printed as Lambda's error document and fails the command (main exits 1).
func TestInvokeFunctionError(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`["not", "a", "scheduled", "event"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := runInvoke(testContext(t), invokeOptions{fn: "reconcile", event: bad, moto: sharedMoto(t), name: "bad"}, &stdout, &syncWriter{w: &stderr})
	if !errors.Is(err, errReported) {
		t.Fatalf("err = %v, want a reported function error", err)
	}
	var doc struct{ ErrorType, ErrorMessage string }
	if json.Unmarshal(stdout.Bytes(), &doc) != nil || doc.ErrorType == "" || !strings.Contains(doc.ErrorMessage, "payload") {
		t.Errorf("stdout %q is not the function's error document", stdout.String())
	}
}

func TestInvokeUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"invoke", "-event", "events/hook-verification.json"},
		{"invoke", "-fn", "nope", "-event", "events/hook-verification.json"},
		{"invoke", "-fn", "hook"},
		{"invoke", "-fn", "hook", "-event", filepath.Join(t.TempDir(), "missing.json")},
		{"frobnicate"},
		{},
	} {
		if err := run(ctx, args, io.Discard, io.Discard); err == nil {
			t.Errorf("devrun %v succeeded", args)
		}
	}
}

// TestDemo runs `make demo`'s code in-process and checks what it reports against the world.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	res, err := runDemo(testContext(t), demoOptions{moto: sharedMoto(t)}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Logf("demo output:\n%s", out.String())

	want := []groupMembers{
		{admins, []string{janeLogin}},
		{engineering, []string{bobSCIMName, daveLogin, janeLogin}},
		// Carol's 10:20 add came after her 10:19 deactivation: not applied (the user-status rule), and
		// her reactivation restores only what Okta lists (AWS_ReadOnly was deleted in Okta at 10:18).
		{readOnly, []string{}},
	}
	if !reflect.DeepEqual(res.membership, want) {
		t.Errorf("final membership %v, want %v", res.membership, want)
	}
	if len(res.dlq) != 0 {
		t.Errorf("DLQ holds %+v", res.dlq)
	}
	if res.scim.emptyRemoves != 0 || res.scim.maxPatchValues > scimtest.MaxMemberValues {
		t.Errorf("SCIM wire rules broken: %+v", res.scim)
	}

	// Every hook sample is replayed and answered as events/README.md says.
	rows := readmeRows(t)
	replayed := map[string]bool{}
	for _, a := range res.arrivals {
		replayed[a.file] = true
		doc := rows[a.file]
		if a.invokeErr != nil || a.status != doc.status || a.enqueued != doc.enqueued {
			t.Errorf("%s: status %d, %d enqueued (%v); README says %d, %d", a.file, a.status, a.enqueued, a.invokeErr, doc.status, doc.enqueued)
		}
		for _, b := range a.batches {
			if b.err != nil || len(b.failed) > 0 {
				t.Errorf("%s: sync batch failed %v (%v)", a.file, b.failed, b.err)
			}
		}
	}
	for _, path := range sampleFiles(t) {
		if f := filepath.Base(path); functionOf(f) == "hook" && !replayed[f] {
			t.Errorf("the demo does not replay %s", f)
		}
	}
	applied, notApplied := map[string]int{}, map[string]int{}
	for _, a := range res.arrivals {
		for _, b := range a.batches {
			for _, l := range b.logs {
				if l.msg() != "audit" {
					continue
				}
				switch l.str("result") {
				case "applied":
					applied[l.str("op")]++
				case "not_applied":
					notApplied[l.str("op")+" "+l.str("user")]++
				}
			}
		}
	}
	if want := map[string]int{"add " + carolLogin: 1}; !reflect.DeepEqual(notApplied, want) {
		t.Errorf("sync audit records not_applied %v, want %v", notApplied, want)
	}
	// The demo's AWS groups were made by hand (no externalId): the first change of each adopts it.
	if want := map[string]int{"add": 2, "remove": 2, "rename": 1, "adopt_group": 2}; !reflect.DeepEqual(applied, want) {
		t.Errorf("sync audit records applied %v, want %v", applied, want)
	}

	if len(res.reconciles) != 2 {
		t.Fatalf("%d reconcile runs", len(res.reconciles))
	}
	dry, real := res.reconciles[0], res.reconciles[1]
	if dry.err != nil || !dry.summary.DryRun || dry.summary.Adds != 2 || dry.summary.Removes != 1 || dry.summary.Added+dry.summary.Removed != 0 {
		t.Errorf("dry run %+v (%v)", dry.summary, dry.err)
	}
	if real.err != nil || real.summary.DryRun || real.summary.Added != 2 || real.summary.Removed != 1 || real.summary.GroupsCreated != 1 || real.summary.Failed != 0 {
		t.Errorf("reconcile %+v (%v)", real.summary, real.err)
	}

	text := out.String()
	for _, s := range []string{
		"hook-delivery-membership.json", "POST → 200, 5 events: 4 changes enqueued, dropped 1 not_selected",
		"audit rename        AWS_Engineering  was AWS_Engineers          applied",
		"AWS_Engineering  bob.smith@corp.example, dave.lee@example.com, jane.doe@example.com",
		"DLQ   empty", "4. Requests made", "SCIM  ", "Okta  ", "SQS   11 changes enqueued",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("the summary lacks %q", s)
		}
	}
	if strings.Contains(text, scimToken) || strings.Contains(text, oktaToken) {
		t.Error("the summary shows a token")
	}
}

// TestLocal serves the hook over HTTP in-process, as `make local` does, and stops it.
func TestLocal(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	type started struct {
		base string
		w    *world
	}
	ready := make(chan started, 1)
	var out safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- runLocal(ctx, localOptions{addr: "127.0.0.1:0", moto: sharedMoto(t), ready: func(base string, w *world) { ready <- started{base, w} }}, &out)
	}()
	var s started
	select {
	case s = <-ready:
	case err := <-done:
		t.Fatalf("local ended: %v\n%s", err, out.String())
	}
	url := s.base + hookPath

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", sampleHookToken)
	req.Header.Set("X-Okta-Verification-Challenge", "hello")
	if code, body := do(t, req); code != 200 || body != `{"verification":"hello"}` {
		t.Errorf("verification: %d %s", code, body)
	}
	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(exampleDelivery))
	req.Header.Set("Authorization", sampleHookToken)
	req.Header.Set("Content-Type", "application/json")
	if code, body := do(t, req); code != 200 || body != "" {
		t.Errorf("delivery: %d %q", code, body)
	}
	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(exampleDelivery))
	req.Header.Set("Authorization", "wrong")
	req.Header.Set("Content-Type", "application/json")
	if code, _ := do(t, req); code != 401 {
		t.Errorf("wrong auth: %d", code)
	}
	req, _ = http.NewRequest(http.MethodGet, s.base+"/elsewhere", nil)
	if code, _ := do(t, req); code != 403 {
		t.Errorf("unknown route: %d, want API Gateway's 403", code)
	}

	// The background consumer applies the delivery.
	deadline := time.Now().Add(time.Minute)
	for !slices.Contains(s.w.scim.Snapshot()[engineers], carolLogin) {
		if time.Now().After(deadline) {
			t.Fatalf("Carol never reached AWS_Engineers:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("local: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("local did not stop")
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.base, "http://"), time.Second); err == nil {
		c.Close()
		t.Error("the hook still listens after stop")
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimSuffix(s.w.scimURL, scimBasePath), "http://"), time.Second); err == nil {
		c.Close()
		t.Error("the SCIM emulator still listens after stop")
	}
	text := out.String()
	for _, want := range []string{"curl -i " + url, "Authorization: " + sampleHookToken, "POST /okta/events → 200, 1 event: 1 change enqueued", "audit add", "stopping"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyRequest(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:3000/okta/events?a=1&a=2", bytes.NewReader([]byte{0xff, 0xfe}))
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	r.RemoteAddr = "192.0.2.7:5555"
	req := proxyRequest(r, []byte{0xff, 0xfe})
	if !req.IsBase64Encoded || req.Body != "//4=" {
		t.Errorf("binary body: %q base64=%v", req.Body, req.IsBase64Encoded)
	}
	if req.Headers["X-Multi"] != "two" || !reflect.DeepEqual(req.MultiValueHeaders["X-Multi"], []string{"one", "two"}) {
		t.Errorf("headers %v %v", req.Headers, req.MultiValueHeaders)
	}
	if req.QueryStringParameters["a"] != "2" || len(req.MultiValueQueryStringParameters["a"]) != 2 {
		t.Errorf("query %v %v", req.QueryStringParameters, req.MultiValueQueryStringParameters)
	}
	if req.RequestContext.Identity.SourceIP != "192.0.2.7" || req.Resource != hookPath || req.RequestContext.RequestID == "" {
		t.Errorf("context %+v", req.RequestContext)
	}
}

// TestMakeTargets runs the Makefile's demo, invoke and local targets as a developer would: each
// is a fresh `go run` that builds its bootstraps and starts its own moto_server, so the cases
// here are few and parallel; the samples and the failure paths are covered in-process above.
func TestMakeTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found")
	}
	dir := root(t)

	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, err := runMake(t, dir, "demo")
		if err != nil {
			t.Fatalf("make demo: %v\n%s\n%s", err, stdout, stderr)
		}
		for _, want := range []string{"AWS_Engineering  bob.smith@corp.example, dave.lee@example.com, jane.doe@example.com", "DLQ   empty", "Done in"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("make demo output lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("invoke", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, err := runMake(t, dir, "invoke", "FN=hook", "EVENT=events/hook-verification.json")
		if err != nil {
			t.Fatalf("make invoke: %v\n%s\n%s", err, stdout, stderr)
		}
		// stdout is the response alone, so it can be piped (make invoke … | jq).
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal([]byte(stdout), &resp); err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, "verification") {
			t.Errorf("stdout %q: %v", stdout, err)
		}
		if !strings.Contains(stderr, `"msg":"hook request"`) {
			t.Errorf("stderr lacks the function's log:\n%s", stderr)
		}
	})

	t.Run("local", func(t *testing.T) {
		t.Parallel()
		testMakeLocal(t, dir)
	})
}

// runMake runs make with a clean make environment (the outer `make test` must not leak flags).
func runMake(t *testing.T, dir string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = dir
	cmd.Env = makeEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func makeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ADDR", "FN", "EVENT", "V":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// testMakeLocal starts `make local` in its own process group, uses the hook, then sends the
// group SIGINT as a terminal's Ctrl-C does, and checks that everything stopped.
func testMakeLocal(t *testing.T, dir string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command("make", "--no-print-directory", "local", "ADDR="+addr)
	cmd.Dir = dir
	cmd.Env = makeEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var out safeBuffer
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	killed := false
	defer func() {
		if !killed {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()

	var motoHost string
	queueURL := regexp.MustCompile(`drains (http://[^/]+)/`)
	deadline := time.After(3 * time.Minute)
	for ready := false; !ready; {
		select {
		case l := <-lines:
			if m := queueURL.FindStringSubmatch(l); m != nil {
				motoHost = strings.TrimPrefix(m[1], "http://")
			}
			ready = strings.Contains(l, "Ctrl-C stops everything")
		case err := <-exited:
			t.Fatalf("make local exited: %v\n%s\n%s", err, out.String(), stderr.String())
		case <-deadline:
			t.Fatalf("make local not ready:\n%s\n%s", out.String(), stderr.String())
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+hookPath, nil)
	req.Header.Set("Authorization", sampleHookToken)
	req.Header.Set("X-Okta-Verification-Challenge", "ping")
	if code, body := do(t, req); code != 200 || body != `{"verification":"ping"}` {
		t.Errorf("verification through make local: %d %s", code, body)
	}

	// Ctrl-C: the terminal signals the foreground process group (make, go run, devrun).
	killed = true
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make local did not stop on SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "stopping") {
		t.Errorf("no orderly stop:\n%s\n%s", out.String(), stderr.String())
	}
	for _, hostport := range []string{addr, motoHost} {
		if hostport == "" {
			t.Errorf("moto's address not in the banner:\n%s", out.String())
			continue
		}
		if c, err := net.DialTimeout("tcp", hostport, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after Ctrl-C", hostport)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) WriteString(x string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(x)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMappingRedrive checks the event source mapping the demo and make local play: a change
// sync cannot apply (a user AWS does not know), packed with one it can, is isolated alone and the
// pack acknowledged; the isolated change is reported, backed off by the worker and redelivered
// until UNPROVISIONED_USER_WAIT ends; then the worker dead-letters it with the reason.
func TestMappingRedrive(t *testing.T) {
	ctx := testContext(t)
	w, err := startWorld(ctx, sharedMoto(t), "redrive")
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	rt, err := w.start("sync")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	changes := []membership.Change{
		{EventUUID: "redrive-known", Published: at, Kind: membership.KindAdd, UserID: carolID, Login: carolLogin, GroupID: engineersID, GroupName: engineers},
		{EventUUID: "redrive-ghost", Published: at, Kind: membership.KindAdd, UserID: "00uGHOSTGHOSTGHOST01", Login: "ghost@example.com", GroupID: engineersID, GroupName: engineers},
	}
	if err := queue.NewSender(w.moto.SQS(), w.queue.URL).Send(ctx, changes); err != nil {
		t.Fatal(err)
	}
	m := newMapping(w, rt)
	batches, err := m.drain(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The pack, then the ghost alone, isolated: retried with backoff until UNPROVISIONED_USER_WAIT
	// (20 s here) has passed, then dead-lettered by the worker and acknowledged.
	if len(batches) < 3 {
		t.Errorf("%d batches, want the pack then the ghost alone, retried", len(batches))
	}
	if len(batches) > 0 && (len(batches[0].messages) != 1 || len(batches[0].changes) != 2 || len(batches[0].failed) != 0) {
		t.Errorf("first batch: %d messages, %d changes, %d failed; want the pack of 2, acknowledged", len(batches[0].messages), len(batches[0].changes), len(batches[0].failed))
	}
	rest := batches[min(1, len(batches)):]
	for i, b := range rest {
		wantFailed := 1
		if i == len(rest)-1 {
			wantFailed = 0 // dead-lettered and acknowledged
		}
		if len(b.messages) != 1 || len(b.changes) != 1 || b.changes[0].EventUUID != "redrive-ghost" || len(b.failed) != wantFailed || b.retries() != min(i, 1) {
			t.Errorf("batch %d: %d messages (%d changes), %d failed, %d redelivered; want the ghost alone", i+2, len(b.messages), len(b.changes), len(b.failed), b.retries())
		}
	}
	if !slices.Contains(w.scim.Snapshot()[engineers], carolLogin) {
		t.Error("the known user's add was not applied")
	}
	dead, err := w.dlq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("DLQ holds %d messages", len(dead))
	}
	d := deadLetterOf(dead[0], parseLogs(rt.Output().Lines()))
	if !strings.Contains(d.change, "ghost@example.com") || !strings.Contains(d.reason, "not provisioned in SCIM") || !strings.Contains(d.reason, "UNPROVISIONED_USER_WAIT=20s") {
		t.Errorf("dead letter %+v", d)
	}
}
