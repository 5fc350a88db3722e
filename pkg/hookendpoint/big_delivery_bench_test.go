package hookendpoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// lambdaMaxRequest is the largest synchronous Invoke payload Lambda accepts, minus one: its
// RequestEntityTooLargeException says "Request must be smaller than 6291456 bytes" (the documented
// "6 MB" of the Invoke API is 6 MiB). The payload is API Gateway's whole proxy event, so the Okta
// body inside it is smaller still.
const lambdaMaxRequest = 6<<20 - 1

// acceptingSQS answers every SendMessageBatch entry as sent: the real queue.Sender (packing,
// batching, SDK inputs) without the network, so a benchmark sees what a delivery costs up to
// the wire.
type acceptingSQS struct {
	latency         time.Duration // per call, when set: a model of the round trip
	calls, messages atomic.Int64
}

func (s *acceptingSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	time.Sleep(s.latency)
	s.calls.Add(1)
	s.messages.Add(int64(len(in.Entries)))
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// payloadUnder is benchPayload with as many events as fit in a Lambda payload of at most limit
// bytes, the body base64-encoded (as API Gateway sends binary media types) when b64 is set.
func payloadUnder(b testing.TB, limit int, b64 bool) ([]byte, int) {
	b.Helper()
	build := func(n int) []byte {
		p := benchPayload(b, n)
		if !b64 {
			return p
		}
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(p, &req); err != nil {
			b.Fatal(err)
		}
		req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(req.Body)), true
		out, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	// Payload size is linear in the events: estimate from 100, step down until it fits, then up
	// while another step fits (within one event of the limit).
	per := float64(len(build(100))) / 100
	n := int(float64(limit) / per)
	p := build(n)
	for len(p) > limit {
		n -= max(1, int(float64(len(p)-limit)/per))
		p = build(n)
	}
	for k := int(float64(limit-len(p)) / per); k >= 1; k = int(float64(limit-len(p)) / per) {
		bigger := build(n + k)
		if len(bigger) > limit {
			break
		}
		n, p = n+k, bigger
	}
	return p, n
}

// heapObjects is the heap occupied by objects, live or not yet swept: what the process holds.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap runs f once while sampling the heap, and returns the highest heap above what it was
// before f (after a GC), and what f left behind after another GC.
func peakHeap(f func()) (peak, retained uint64) {
	runtime.GC()
	base := heapObjects()
	var (
		top  atomic.Uint64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	top.Store(base)
	wg.Go(func() {
		for {
			if v := heapObjects(); v > top.Load() {
				top.Store(v)
			}
			select {
			case <-stop:
				return
			default:
				time.Sleep(20 * time.Microsecond)
			}
		}
	})
	f()
	if v := heapObjects(); v > top.Load() {
		top.Store(v)
	}
	close(stop)
	wg.Wait()
	runtime.GC()
	if after := heapObjects(); after > base {
		retained = after - base
	}
	return top.Load() - base, retained
}

// BenchmarkHookBigDelivery is one delivery of the sizes Okta can amalgamate and Lambda can pass,
// through the whole hook path up to the wire: Lambda's decode of the API Gateway event, auth,
// parse, expand, pack, SendMessageBatch inputs (an SQS that accepts everything), response.
//
//   - events=2000: 2,000 real-shaped events (~2.1 kB each, 4 in 5 become changes), ~4.2 MB of body;
//   - lambda-max: as many events as fit in Lambda's largest request (6 MiB, the event included);
//   - lambda-max-base64: the same limit with the body base64-encoded by API Gateway.
//
// Besides ns/op and B/op (everything allocated) it reports, from separate untimed runs, the
// peak of the heap above the idle process (payload held by the caller excluded) and what a
// delivery leaves on the heap after a GC (should be ~0: memory per delivery is released).
func BenchmarkHookBigDelivery(b *testing.B) {
	cases := []struct {
		name  string
		build func(b *testing.B) ([]byte, int)
	}{
		{"events=2000", func(b *testing.B) ([]byte, int) { return benchPayload(b, 2000), 2000 }},
		{"lambda-max", func(b *testing.B) ([]byte, int) { return payloadUnder(b, lambdaMaxRequest, false) }},
		{"lambda-max-base64", func(b *testing.B) ([]byte, int) { return payloadUnder(b, lambdaMaxRequest, true) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			payload, n := c.build(b)
			var req events.APIGatewayProxyRequest
			if err := json.Unmarshal(payload, &req); err != nil {
				b.Fatal(err)
			}
			body := len(req.Body)
			if req.IsBase64Encoded {
				body = base64.StdEncoding.DecodedLen(body)
			}
			cfg := config.Hook{
				Common:       config.Common{Selection: config.Selection{Prefix: "AWS_"}, MetricsNamespace: "OktaAwsSsoSync"},
				AuthHeader:   "Authorization",
				MaxBodyBytes: config.DefaultMaxBodyBytes,
			}
			api := &acceptingSQS{}
			h := New(cfg, fakeSecrets{s: config.Secrets{AuthTokenForOkta: sampleToken}}, queue.NewSender(api, "https://sqs.example/q.fifo"),
				telemetry.NewLogger(io.Discard, slog.LevelInfo), io.Discard)
			invoke := lambda.NewHandler(h.Handle)
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "bench"})
			once := func() {
				out, err := invoke.Invoke(ctx, payload)
				var resp events.APIGatewayProxyResponse
				if err != nil || json.Unmarshal(out, &resp) != nil || resp.StatusCode != 200 {
					b.Fatalf("%d events, %d bytes of payload: %v %.300s", n, len(payload), err, out)
				}
			}

			// Checked, untimed runs: the status, the SQS traffic, and the heap.
			once()
			calls, msgs := api.calls.Load(), api.messages.Load()
			var peak, retained uint64
			for range 3 {
				p, r := peakHeap(once)
				peak, retained = max(peak, p), max(retained, r)
			}

			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				once()
			}
			b.ReportMetric(float64(n), "events")
			b.ReportMetric(float64(body)/1e6, "body-MB")
			b.ReportMetric(float64(msgs), "sqs-messages")
			b.ReportMetric(float64(calls), "sqs-calls")
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
			b.ReportMetric(float64(retained), "retained-B")
			b.Logf("%s: %d events, payload %d bytes, body %d bytes", c.name, n, len(payload), body)
		})
	}
}

// deactivationPayload is n real-shaped user.lifecycle.deactivate events (the deactivation sample
// with fresh uuids and users): each change goes to a message group of its own, so a delivery
// needs n messages, n/10 SendMessageBatch calls.
func deactivationPayload(tb testing.TB, n int) []byte {
	tb.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(readSample(tb, "hook-delivery-user-deactivate.json"), &req); err != nil {
		tb.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(req.Body), &env); err != nil {
		tb.Fatal(err)
	}
	data := env["data"].(map[string]any)
	raw, _ := json.Marshal(data["events"].([]any)[0])
	evs := make([]any, n)
	for i := range n {
		var ev map[string]any
		_ = json.Unmarshal(raw, &ev)
		ev["uuid"] = fmt.Sprintf("%08x-41af-11f0-8719-6d2f0c1a9e01", i)
		t := ev["target"].([]any)[0].(map[string]any)
		t["id"], t["alternateId"] = fmt.Sprintf("00u%017d", i), fmt.Sprintf("user%05d@example.com", i)
		evs[i] = ev
	}
	data["events"] = evs
	body, err := json.Marshal(env)
	if err != nil {
		tb.Fatal(err)
	}
	req.Body = string(body)
	payload, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	return payload
}

// BenchmarkHookEnqueueManyMessages is the delivery that needs the most SQS calls for its size:
// 2,000 user deactivations (~4 MB), each a message of its own, 200 SendMessageBatch calls, sent
// by the real queue.Sender (4 calls in flight) to a model SQS that answers every call after a
// fixed latency. moto cannot stand in here (its FIFO SendMessageBatch slows with the queue's
// depth, to seconds per call at 2,000 messages), and AWS documents no latency for the call:
// sqs-ms=20 is an assumption, ns/op the answer time it gives.
func BenchmarkHookEnqueueManyMessages(b *testing.B) {
	payload := deactivationPayload(b, 2000)
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("sqs-ms=%d", latency.Milliseconds()), func(b *testing.B) {
			cfg := config.Hook{
				Common:       config.Common{Selection: config.Selection{Prefix: "AWS_"}, MetricsNamespace: "OktaAwsSsoSync"},
				AuthHeader:   "Authorization",
				MaxBodyBytes: config.DefaultMaxBodyBytes,
			}
			api := &acceptingSQS{latency: latency}
			h := New(cfg, fakeSecrets{s: config.Secrets{AuthTokenForOkta: sampleToken}}, queue.NewSender(api, "https://sqs.example/q.fifo"),
				telemetry.NewLogger(io.Discard, slog.LevelInfo), io.Discard)
			invoke := lambda.NewHandler(h.Handle)
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "bench"})
			out, err := invoke.Invoke(ctx, payload)
			if err != nil || !strings.Contains(string(out), `"statusCode":200`) {
				b.Fatalf("%v %.300s", err, out)
			}
			calls, msgs := api.calls.Load(), api.messages.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := invoke.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(msgs), "sqs-messages")
			b.ReportMetric(float64(calls), "sqs-calls")
		})
	}
}
