package hookendpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// BenchmarkHookDeliveryLatency is BenchmarkHookDelivery with every delivery timed on its own, so
// that the report can give the distribution Okta's 3 s timeout cares about, not only the mean:
// p50, p99 and the slowest delivery (GC pauses included, as in production). Same path: Lambda
// payload → APIGatewayProxyRequest → auth → parse → expand → send (no-op) → response.
func BenchmarkHookDeliveryLatency(b *testing.B) {
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

			out, err := invoke.Invoke(ctx, payload)
			var resp events.APIGatewayProxyResponse
			if err != nil || json.Unmarshal(out, &resp) != nil || resp.StatusCode != 200 {
				b.Fatalf("warm-up: %v %s", err, out)
			}

			lat := make([]time.Duration, 0, 4096)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if _, err := invoke.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(quantile(lat, 0.50)), "p50-ns/op")
			b.ReportMetric(float64(quantile(lat, 0.99)), "p99-ns/op")
			b.ReportMetric(float64(lat[len(lat)-1]), "max-ns/op")
		})
	}
}

// quantile is the nearest-rank q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
