package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// BenchmarkHookColdStart starts a fresh hook bootstrap per iteration under the fake Lambda Runtime
// API (moto_server for Secrets Manager and SQS) and sends it the membership sample delivery twice:
//
//   - cold-start-ms: process start to its first GET /next, i.e. Go runtime start, configuration,
//     AWS SDK set-up and the secret read the hook does during init (Lambda's init phase; AWS adds
//     its own sandbox and code download time, not modelled here);
//   - first-response-ms: the first delivery on that new process, from hand-over to answer
//     (what Okta waits for right after a cold start, SQS round trip to moto included);
//   - warm-response-ms: the second delivery on the same process.
func BenchmarkHookColdStart(b *testing.B) {
	m := harness.MustStartMoto(b)
	bootstrap := harness.MustBuildFunction(b, "hook")
	ctx := context.Background()
	q := harness.MustCreateFIFOQueue(b, m, "bench-hook-cold", 0)
	secret := harness.MustCreateSecret(b, m, "okta-aws-sso-sync/bench-hook-cold", harness.SecretJSON(hookSampleToken, hookSCIMKey, ""))
	env := harness.MergeEnv(m.Env(), map[string]string{"SECRET_ID": secret, "QUEUE_URL": q.URL, "LOG_LEVEL": "info"})

	root, err := harness.ModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", "hook-delivery-membership.json"))
	if err != nil {
		b.Fatal(err)
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		b.Fatal(err)
	}
	invoke := func(rt *harness.Runtime) time.Duration {
		start := time.Now()
		resp, err := rt.InvokeAPIGateway(ctx, req)
		d := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("delivery: %v %d %s\n%s", err, resp.StatusCode, resp.Body, rt.Logs())
		}
		return d
	}

	var cold, first, warm time.Duration
	n := 0
	for b.Loop() {
		rt, err := harness.StartRuntime(bootstrap, env)
		if err != nil {
			b.Fatal(err)
		}
		first += invoke(rt)
		cold += rt.ColdStart()
		warm += invoke(rt)
		n++
		b.StopTimer()
		_ = rt.Close()
		// The sample's events are deduplicated while queued; draining keeps moto's queue short.
		if _, err := m.ReceiveAll(ctx, q.URL); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	b.ReportMetric(ms(cold), "cold-start-ms")
	b.ReportMetric(ms(first), "first-response-ms")
	b.ReportMetric(ms(warm), "warm-response-ms")
}
