package tests

// End-to-end: one big amalgamated Okta delivery (a group rule or an import fires thousands of
// System Log events at once) through the real hook and sync bootstraps. Okta documents no batch
// size and never retries a 4xx, so the hook must accept whatever API Gateway and Lambda pass it
// (6 MiB of request) and enqueue it within Okta's 3 s. Timing is logged here, never asserted:
// BenchmarkBigDeliveryEnqueue measures it.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// bigGroup is one Okta group of the big deliveries.
type bigGroup struct{ id, name string }

// The groups a big delivery spreads over: four selected by the default GROUP_PREFIX, two not.
var (
	bigSelected   = []bigGroup{{"00gB1gAdm1nsQ4Xs5d7", "AWS_Big_Admins"}, {"00gB1gDevR5Yt6Jk5d7", "AWS_Big_Developers"}, {"00gB1gOpsT7Uu8Ll5d7", "AWS_Big_Operations"}, {"00gB1gRdoV9Ww0Mm5d7", "AWS_Big_ReadOnly"}}
	bigUnselected = []bigGroup{{"00gB1gMktX1Yy2Nn5d7", "Marketing"}, {"00gB1gLgcZ3Aa4Pp5d7", "LEGACY_AWS_Big"}}
)

// bigSample is one events/ sample: its API Gateway request, its envelope and its first event,
// the templates every generated event is a copy of.
type bigSample struct {
	req      events.APIGatewayProxyRequest
	envelope map[string]any
	event    []byte // JSON of data.events[0]
}

func loadBigSample(tb testing.TB, name string) bigSample {
	tb.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		tb.Fatal(err)
	}
	var s bigSample
	if err := json.Unmarshal(raw, &s.req); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal([]byte(s.req.Body), &s.envelope); err != nil {
		tb.Fatalf("%s body: %v", name, err)
	}
	data := s.envelope["data"].(map[string]any)
	if s.event, err = json.Marshal(data["events"].([]any)[0]); err != nil {
		tb.Fatal(err)
	}
	return s
}

// bigUser is the i-th user of the big deliveries: an Okta id of 20 characters and a login.
func bigUser(i int) (id, login string) {
	return fmt.Sprintf("00uB%012dd5d7", i), fmt.Sprintf("user%04d.big@example.com", i)
}

// bigEvent is the sample's event for user i (and group g, when the sample names one), with the
// fields that differ between real events changed: uuid, published, targets, transaction and
// request ids, the request URI. Everything else (client, actor, securityContext, request…)
// stays, so the event keeps its real size (~2.1 kB).
func bigEvent(tb testing.TB, s bigSample, run string, i int, at time.Time, g bigGroup) map[string]any {
	tb.Helper()
	var ev map[string]any
	if err := json.Unmarshal(s.event, &ev); err != nil {
		tb.Fatal(err)
	}
	userID, login := bigUser(i)
	ev["uuid"] = fmt.Sprintf("%08x-fb4f-11f0-9718-%012x", i, run)
	ev["published"] = at.UTC().Format("2006-01-02T15:04:05.000Z")
	for _, t := range ev["target"].([]any) {
		t := t.(map[string]any)
		switch t["type"] {
		case "User":
			t["id"], t["alternateId"], t["displayName"] = userID, login, fmt.Sprintf("User %04d", i)
		case "UserGroup":
			t["id"], t["displayName"] = g.id, g.name
		}
	}
	txn := fmt.Sprintf("aB%s%021d", run, i)
	ev["transaction"].(map[string]any)["id"] = txn
	dbg := ev["debugContext"].(map[string]any)["debugData"].(map[string]any)
	dbg["requestId"] = txn
	uri := "/api/v1/users/" + userID + "/lifecycle/deactivate"
	if g.id != "" {
		uri = "/api/v1/groups/" + g.id + "/users/" + userID
	}
	dbg["requestUri"], dbg["url"] = uri, uri+"?"
	return ev
}

// bigRequest is the sample's API Gateway request carrying a delivery of evs, authorized with token.
func bigRequest(tb testing.TB, s bigSample, eventID string, evs []map[string]any, token string) events.APIGatewayProxyRequest {
	tb.Helper()
	env := maps.Clone(s.envelope)
	env["eventId"] = eventID
	env["data"] = map[string]any{"events": evs}
	body, err := json.Marshal(env)
	if err != nil {
		tb.Fatal(err)
	}
	req := withAuth(s.req, token)
	req.Body = string(body)
	return req
}

// membershipDelivery is n real-shaped group.user_membership.add events, user i added to
// group(i), published a millisecond apart.
func membershipDelivery(tb testing.TB, run string, n int, group func(i int) bigGroup, base time.Time) []map[string]any {
	tb.Helper()
	s := loadBigSample(tb, "hook-delivery-membership.json")
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = bigEvent(tb, s, run, i, base.Add(time.Duration(i)*time.Millisecond), group(i))
	}
	return evs
}

// bigSpread puts four in five events in the selected groups, in turn, and one in five in the
// unselected ones.
func bigSpread(i int) bigGroup {
	if i%5 < len(bigSelected) {
		return bigSelected[i%5]
	}
	return bigUnselected[i/5%len(bigUnselected)]
}

// hookSummary is the hook's "hook request" log line of the delivery eventID. The function's stdout
// reaches the harness on its own, possibly after the response: wait for the line a little while.
func hookSummary(tb testing.TB, rt *harness.Runtime, eventID string) map[string]any {
	tb.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var last map[string]any
		for _, line := range strings.Split(rt.Logs(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "hook request" && rec["okta_event_id"] == eventID {
				last = rec
			}
		}
		if last != nil {
			return last
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no hook request log line for delivery %s in:\n%s", eventID, rt.Logs())
		}
	}
}

func TestBigDelivery(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	base := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)

	t.Run("2000 events in one delivery", func(t *testing.T) {
		w := newSyncWorld(t, m, "big", scimtest.Options{Seed: 21})
		// Four in five events add a user to a selected group, one in five to a group that is not.
		evs := membershipDelivery(t, "e2e", 2000, bigSpread, base)
		want := map[string][]string{}
		for i := range evs {
			id, login := bigUser(i)
			w.scim.AddUser(login, id) // provisioned by Okta's AWS app, as in production
			if g := bigSpread(i); strings.HasPrefix(g.name, "AWS_") {
				want[g.name] = append(want[g.name], login)
			}
		}
		req := bigRequest(t, loadBigSample(t, "hook-delivery-membership.json"), "8c1d2e3f-big0-4000-8000-000000002000", evs, e2eHookToken)

		start := time.Now()
		resp, err := w.hook.InvokeAPIGateway(w.ctx, req)
		answered := time.Since(start)
		if err != nil {
			t.Fatalf("hook: %v", err)
		}
		if resp.StatusCode != http.StatusOK || resp.Body != "" {
			t.Fatalf("hook answered %d %q to a delivery of %d events, %d bytes", resp.StatusCode, resp.Body, len(evs), len(req.Body))
		}
		sum := hookSummary(t, w.hook, "8c1d2e3f-big0-4000-8000-000000002000")
		depth, err := m.Depth(w.ctx, w.queue.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Not asserted (the machine is shared; BenchmarkBigDeliveryEnqueue measures it).
		t.Logf("%d events, %d bytes of body: 200 in %v (hook: %v ms, of which enqueue %v ms); %v changes in %d messages, %v dropped",
			len(evs), len(req.Body), answered.Round(time.Millisecond), sum["duration_ms"], sum["enqueue_ms"], sum["enqueued"], depth, sum["dropped"])
		if sum["events"] != float64(len(evs)) || sum["enqueued"] != float64(1600) || sum["dropped"] != float64(400) {
			t.Errorf("hook summary events=%v enqueued=%v dropped=%v, want 2000, 1600, 400", sum["events"], sum["enqueued"], sum["dropped"])
		}

		n := w.pump()
		w.expect(want)
		w.checkWire()
		if got := len(w.dlq()); got != 0 {
			t.Fatalf("%d messages in the DLQ", got)
		}
		t.Logf("1,600 changes in 4 groups applied by %d sync invocations, %d SCIM requests", n, w.scim.TotalRequests())
	})

	t.Run("over MAX_BODY_BYTES", func(t *testing.T) {
		// An operator's lower limit (the default, 6 MiB, is more than Lambda can pass): just over
		// it is refused with 413 and enqueues nothing, at it the delivery is applied.
		const limit = 64 << 10
		w := newSyncWorld(t, m, "big-limit", scimtest.Options{Seed: 22}, map[string]string{"MAX_BODY_BYTES": strconv.Itoa(limit)})
		s := loadBigSample(t, "hook-delivery-membership.json")
		evs := membershipDelivery(t, "lim", 20, func(int) bigGroup { return bigSelected[0] }, base)
		var want []string
		for i := range evs {
			id, login := bigUser(i)
			w.scim.AddUser(login, id)
			want = append(want, login)
		}
		// Whitespace before the closing brace pads the body to an exact size.
		sized := func(n int) events.APIGatewayProxyRequest {
			req := bigRequest(t, s, "8c1d2e3f-big1-4000-8000-000000000020", evs, e2eHookToken)
			if len(req.Body) > n-1 {
				t.Fatalf("the delivery is already %d bytes", len(req.Body))
			}
			req.Body = strings.TrimSuffix(req.Body, "}") + strings.Repeat(" ", n-len(req.Body)) + "}"
			return req
		}
		over64 := sized(limit + 1)
		over64.Body, over64.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(over64.Body)), true
		for name, req := range map[string]events.APIGatewayProxyRequest{"one byte over": sized(limit + 1), "base64, one byte over": over64} {
			resp, err := w.hook.InvokeAPIGateway(w.ctx, req)
			if err != nil {
				t.Fatalf("%s: hook: %v", name, err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(resp.Body, "MAX_BODY_BYTES") {
				t.Errorf("%s: hook answered %d %q, want 413", name, resp.StatusCode, resp.Body)
			}
			if depth, err := m.Depth(w.ctx, w.queue.URL); err != nil || depth != 0 {
				t.Fatalf("%s: %d messages queued (%v), want none", name, depth, err)
			}
		}
		atLimit := sized(limit)
		resp, err := w.hook.InvokeAPIGateway(w.ctx, atLimit)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("a body of exactly MAX_BODY_BYTES: %d %q (%v), want 200", resp.StatusCode, resp.Body, err)
		}
		w.pump()
		w.expect(map[string][]string{bigSelected[0].name: want})
		if got := len(w.dlq()); got != 0 {
			t.Fatalf("%d messages in the DLQ", got)
		}
	})
}

// BenchmarkBigDeliveryEnqueue is the answer time Okta sees for a big delivery: the real hook
// bootstrap under the fake Lambda Runtime API, SQS and Secrets Manager on moto_server, one fresh
// delivery per iteration (new uuids, so nothing is deduplicated), the queue purged in between.
// Real-shaped membership adds, four in five to 4 selected groups, one in five to unselected ones:
//
//   - adds=2000: ~4.3 MB of body, 1,600 changes;
//   - adds=2600: ~5.6 MB, about the largest body that fits in Lambda's 6 MiB request.
//
// answer-ms is hand-over to answer as the harness sees it (payload transfer on localhost
// included); hook-ms and enqueue-ms are what the hook logs (its whole handling, and Send alone).
// Not here: deliveries that need thousands of messages (one per user deactivation) — moto's
// FIFO SendMessageBatch slows with the queue's depth (15 ms empty, 2 s per call at 2,000 queued
// messages), so it would measure moto; pkg/hookendpoint's BenchmarkHookEnqueueManyMessages
// models them.
func BenchmarkBigDeliveryEnqueue(b *testing.B) {
	m := harness.MustStartMoto(b)
	ctx := context.Background()
	q, _ := mustCreateProdQueue(b, m, "bench-big-delivery")
	secret := harness.MustCreateSecret(b, m, "okta-aws-sso-sync/bench-big-delivery", harness.SecretJSON(e2eHookToken, e2eSCIMToken, ""))
	rt := harness.MustStartRuntime(b, harness.MustBuildFunction(b, "hook"), harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "QUEUE_URL": q.URL, "LOG_LEVEL": "info",
	}), harness.WithFunctionName("hook-bench-big"))
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	membership := loadBigSample(b, "hook-delivery-membership.json")

	type benchCase struct {
		name   string
		events int
	}
	cases := []benchCase{{"adds=2000", 2000}, {"adds=2600", 2600}}
	build := func(tb testing.TB, c benchCase, run string) events.APIGatewayProxyRequest {
		req := bigRequest(tb, membership, "bench-"+run, membershipDelivery(tb, run, c.events, bigSpread, base), e2eHookToken)
		if payload, err := json.Marshal(req); err != nil || len(payload) >= 6<<20 {
			tb.Fatalf("%s: a request of %d bytes (%v) would not fit in Lambda's 6 MiB", c.name, len(payload), err)
		}
		return req
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var answer, hook, enqueue time.Duration
			var bodyBytes, messages int
			n := 0
			for b.Loop() {
				b.StopTimer()
				n++
				req := build(b, c, fmt.Sprintf("%04x", n))
				b.StartTimer()
				start := time.Now()
				resp, err := rt.InvokeAPIGateway(ctx, req)
				answer += time.Since(start)
				b.StopTimer()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("delivery: %v %d %s", err, resp.StatusCode, resp.Body)
				}
				sum := hookSummary(b, rt, "bench-"+fmt.Sprintf("%04x", n))
				hook += time.Duration(sum["duration_ms"].(float64) * float64(time.Millisecond))
				enqueue += time.Duration(sum["enqueue_ms"].(float64) * float64(time.Millisecond))
				depth, err := m.Depth(ctx, q.URL)
				if err != nil {
					b.Fatal(err)
				}
				bodyBytes, messages = len(req.Body), depth
				if _, err := m.SQS().PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(q.URL)}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
			b.ReportMetric(ms(answer), "answer-ms")
			b.ReportMetric(ms(hook), "hook-ms")
			b.ReportMetric(ms(enqueue), "enqueue-ms")
			b.ReportMetric(float64(messages), "sqs-messages")
			b.ReportMetric(float64(bodyBytes)/1e6, "body-MB")
		})
	}
}
