package hookendpoint

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// Okta documents no batch size and never retries a 4xx, so every delivery Lambda can pass is
// accepted with the default configuration and all its changes are enqueued in one Send: the
// 2,000-event burst of a group rule or an import (~4.3 MB) and the largest request Lambda takes
// (6 MiB, the API Gateway event included), plain or base64-encoded.
func TestBigDeliveriesAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds deliveries of up to 6 MiB")
	}
	for _, c := range []struct {
		name  string
		build func() ([]byte, int)
	}{
		{"2000 events", func() ([]byte, int) { return benchPayload(t, 2000), 2000 }},
		{"largest Lambda request", func() ([]byte, int) { return payloadUnder(t, lambdaMaxRequest, false) }},
		{"largest Lambda request, base64", func() ([]byte, int) { return payloadUnder(t, lambdaMaxRequest, true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload, n := c.build()
			var req events.APIGatewayProxyRequest
			if err := json.Unmarshal(payload, &req); err != nil {
				t.Fatal(err)
			}
			body := hookRequestBody(t, req)
			f := newFixture(t, nil)
			resp := f.invoke(t, payload)
			if resp.StatusCode != 200 || resp.Body != "" {
				t.Fatalf("%d events, %d bytes of body: status %d %s", n, len(body), resp.StatusCode, resp.Body)
			}
			// benchPayload repeats the membership sample: 4 of its 5 events are selected changes.
			wantChanges := n/5*4 + min(n%5, 2) + max(n%5-3, 0)
			if got := len(f.sender.sent()); got != wantChanges || len(f.sender.calls) != 1 {
				t.Errorf("%d changes in %d sends, want %d in one", got, len(f.sender.calls), wantChanges)
			}
			line := logLine(t, f.logs.String(), "hook request")
			if line["events"] != float64(n) || line["enqueued"] != float64(wantChanges) || line["body_bytes"] != float64(len(body)) {
				t.Errorf("summary events=%v enqueued=%v body_bytes=%v, want %d, %d, %d", line["events"], line["enqueued"], line["body_bytes"], n, wantChanges, len(body))
			}
			for _, k := range []string{"duration_ms", "enqueue_ms"} {
				if _, ok := line[k].(float64); !ok {
					t.Errorf("summary has no %s: %v", k, line)
				}
			}
			t.Logf("%d events, %d bytes of body in %d bytes of payload", n, len(body), len(payload))
		})
	}
}

func hookRequestBody(t *testing.T, req events.APIGatewayProxyRequest) []byte {
	t.Helper()
	if !req.IsBase64Encoded {
		return []byte(req.Body)
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
