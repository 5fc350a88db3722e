package hookendpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

type nopSender struct{}

func (nopSender) Send(context.Context, []membership.Change) error { return nil }

// benchPayload is the membership sample grown to n real-shaped events (about 2.1 kB each): the
// sample's five events repeated with fresh uuids and users, so 4 in 5 events become changes.
func benchPayload(b testing.TB, n int) []byte {
	b.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(readSample(b, "hook-delivery-membership.json"), &req); err != nil {
		b.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(req.Body), &env); err != nil {
		b.Fatal(err)
	}
	data := env["data"].(map[string]any)
	sample := data["events"].([]any)
	evs := make([]any, n)
	for i := range n {
		var ev map[string]any
		raw, _ := json.Marshal(sample[i%len(sample)])
		_ = json.Unmarshal(raw, &ev)
		ev["uuid"] = fmt.Sprintf("%08x-3e2b-11f0-9f7b-6d2f0c1a9e01", i)
		for _, t := range ev["target"].([]any) {
			t := t.(map[string]any)
			if t["type"] == "User" {
				t["id"] = fmt.Sprintf("00u%017d", i)
				t["alternateId"] = fmt.Sprintf("user%05d@example.com", i)
			}
		}
		evs[i] = ev
	}
	data["events"] = evs
	body, err := json.Marshal(env)
	if err != nil {
		b.Fatal(err)
	}
	req.Body = string(body)
	payload, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	return payload
}

// BenchmarkHookDelivery measures one delivery through the real decode path (Lambda payload →
// APIGatewayProxyRequest → auth → parse → expand → send → response), with a no-op sender: the
// hook's own cost against Okta's 3 s budget, without the SQS round trips.
func BenchmarkHookDelivery(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			payload := benchPayload(b, n)
			cfg := config.Hook{
				Common:       config.Common{Selection: config.Selection{Prefix: "AWS_"}, MetricsNamespace: "OktaAwsSsoSync"},
				AuthHeader:   "Authorization",
				MaxBodyBytes: config.DefaultMaxBodyBytes,
			}
			h := New(cfg, fakeSecrets{s: config.Secrets{AuthTokenForOkta: sampleToken}}, nopSender{},
				telemetry.NewLogger(io.Discard, slog.LevelInfo), io.Discard)
			invoke := lambda.NewHandler(h.Handle)
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "bench"})

			// One checked call, so the benchmark cannot silently measure a rejection.
			out, err := invoke.Invoke(ctx, payload)
			var resp events.APIGatewayProxyResponse
			if err != nil || json.Unmarshal(out, &resp) != nil || resp.StatusCode != 200 {
				b.Fatalf("warm-up: %v %s", err, out)
			}

			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := invoke.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
