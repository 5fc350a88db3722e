package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestNewLoggerJSONAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, slog.LevelInfo)
	l.Debug("hidden")
	l.Info("shown", "k", "v")
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1: %s", len(lines), buf.String())
	}
	if lines[0]["msg"] != "shown" || lines[0]["k"] != "v" || lines[0]["level"] != "INFO" {
		t.Errorf("line = %v", lines[0])
	}
}

func TestWithLambda(t *testing.T) {
	var buf bytes.Buffer
	base := NewLogger(&buf, slog.LevelInfo)

	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd"})
	WithLambda(ctx, base).Info("in lambda")
	WithLambda(context.Background(), base).Info("outside")

	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[0]["aws_request_id"] != "8476a536-e9f4-11e8-9739-2dfe598c3fcd" {
		t.Errorf("request id missing: %v", lines[0])
	}
	if _, ok := lines[1]["aws_request_id"]; ok {
		t.Errorf("request id outside Lambda: %v", lines[1])
	}
}

func TestAudit(t *testing.T) {
	var buf bytes.Buffer
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	l := WithLambda(ctx, NewLogger(&buf, slog.LevelInfo))
	at := time.Date(2026, 11, 25, 10, 15, 31, 500e6, time.FixedZone("CET", 3600))

	Audit(l, AuditRecord{
		Time: at, EventUUID: "1f3c6a2e", Group: "AWS_Engineers", GroupID: "00geng", User: "jane@example.com",
		UserID: "00ujane", Op: "add", Result: "applied", ScimRequestID: "scim-req-9",
	})
	Audit(l, AuditRecord{EventUUID: "2a", Group: "AWS_Ops", GroupID: "00gops", Op: "rename", Result: "failed", Reason: "not found"})

	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	first := lines[0]
	want := map[string]any{
		"msg": "audit", "level": "INFO", "time": "2026-11-25T09:15:31.5Z", "aws_request_id": "req-1",
		"event_uuid": "1f3c6a2e", "group": "AWS_Engineers", "group_id": "00geng", "user": "jane@example.com",
		"user_id": "00ujane", "op": "add", "result": "applied", "scim_request_id": "scim-req-9",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	if _, ok := first["reason"]; ok {
		t.Errorf("empty reason written: %v", first)
	}

	second := lines[1]
	for _, k := range []string{"user", "user_id", "scim_request_id"} {
		if _, ok := second[k]; ok {
			t.Errorf("empty %s written: %v", k, second)
		}
	}
	if second["reason"] != "not found" || second["op"] != "rename" {
		t.Errorf("second = %v", second)
	}
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(second["time"]))
	if err != nil || ts.IsZero() || ts.Year() < 2024 {
		t.Errorf("zero Time not replaced by now: %v (%v)", second["time"], err)
	}

	buf.Reset()
	Audit(NewLogger(&buf, slog.LevelError), AuditRecord{EventUUID: "x"})
	if buf.Len() != 0 {
		t.Errorf("audit written below the logger's level: %s", buf.String())
	}
}

// emf is the decoded shape of one EMF line.
type emf struct {
	AWS struct {
		Timestamp         int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
}

func TestMetricsFlush(t *testing.T) {
	m := NewMetrics("OktaAwsSsoSync")
	m.now = func() time.Time { return time.UnixMilli(1764065730123) }
	m.Count("EventsReceived", 3)
	m.Count("EventsReceived", 2)
	m.Count("HookAuthFailures", 0)
	m.Value("LagMs", 120, UnitMilliseconds)
	m.Value("LagMs", 80, "Seconds") // first unit wins
	m.Value("Size", 5, "")

	var buf bytes.Buffer
	m.Flush(&buf)
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("want exactly one line, got %q", out)
	}
	var doc emf
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AWS.Timestamp != 1764065730123 {
		t.Errorf("Timestamp = %d", doc.AWS.Timestamp)
	}
	if len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("directives = %d", len(doc.AWS.CloudWatchMetrics))
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "OktaAwsSsoSync" {
		t.Errorf("Namespace = %q", d.Namespace)
	}
	if len(d.Dimensions) != 1 || len(d.Dimensions[0]) != 0 {
		t.Errorf("Dimensions = %v, want [[]]", d.Dimensions)
	}
	if !strings.Contains(out, `"Dimensions":[[]]`) {
		t.Errorf("Dimensions not written as [[]]: %s", out)
	}
	units := map[string]string{}
	for _, md := range d.Metrics {
		units[md.Name] = md.Unit
	}
	wantUnits := map[string]string{"EventsReceived": "Count", "HookAuthFailures": "Count", "LagMs": "Milliseconds", "Size": "None"}
	if fmt.Sprint(units) != fmt.Sprint(wantUnits) {
		t.Errorf("units = %v, want %v", units, wantUnits)
	}

	var values map[string]any
	if err := json.Unmarshal(buf.Bytes(), &values); err != nil {
		t.Fatal(err)
	}
	if values["EventsReceived"] != 5.0 || values["HookAuthFailures"] != 0.0 || values["Size"] != 5.0 {
		t.Errorf("values = %v", values)
	}
	if fmt.Sprint(values["LagMs"]) != "[120 80]" {
		t.Errorf("LagMs = %v, want both observations", values["LagMs"])
	}

	// Flush resets: a second flush with nothing new writes nothing.
	buf.Reset()
	m.Flush(&buf)
	if buf.Len() != 0 {
		t.Errorf("second flush wrote %q", buf.String())
	}
}

func TestMetricsEmptyAndNonFinite(t *testing.T) {
	m := NewMetrics("NS")
	var buf bytes.Buffer
	m.Flush(&buf)
	if buf.Len() != 0 {
		t.Errorf("empty flush wrote %q", buf.String())
	}
	m.Value("LagMs", math.NaN(), UnitMilliseconds)
	m.Count("EventsReceived", math.Inf(1))
	m.Count("ChangesEnqueued", 1)
	m.Flush(&buf)
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 1 || lines[0]["ChangesEnqueued"] != 1.0 {
		t.Fatalf("lines = %v", lines)
	}
	if _, ok := lines[0]["LagMs"]; ok {
		t.Errorf("NaN written: %v", lines[0])
	}
	if _, ok := lines[0]["EventsReceived"]; ok {
		t.Errorf("Inf written: %v", lines[0])
	}
}

func TestMetricsMoreThan100Values(t *testing.T) {
	m := NewMetrics("NS")
	for i := range 250 {
		m.Value("LagMs", float64(i), UnitMilliseconds)
	}
	m.Count("ChangesApplied", 7)
	var buf bytes.Buffer
	m.Flush(&buf)
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	var total int
	for i, line := range lines {
		vs, _ := line["LagMs"].([]any)
		if len(vs) > 100 {
			t.Errorf("line %d has %d values", i, len(vs))
		}
		total += len(vs)
		_, hasCount := line["ChangesApplied"]
		if hasCount != (i == 0) {
			t.Errorf("line %d: counter present = %v", i, hasCount)
		}
		var doc emf
		b, _ := json.Marshal(line)
		_ = json.Unmarshal(b, &doc)
		names := doc.AWS.CloudWatchMetrics[0].Metrics
		if len(names) != len(line)-1 {
			t.Errorf("line %d declares %d metrics for %d values", i, len(names), len(line)-1)
		}
	}
	if total != 250 {
		t.Errorf("%d values written, want 250", total)
	}
}

func TestMetricsConcurrent(t *testing.T) {
	m := NewMetrics("NS")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				m.Count("EventsReceived", 1)
				m.Value("LagMs", 1, UnitMilliseconds)
			}
		})
	}
	wg.Wait()
	var buf bytes.Buffer
	m.Flush(&buf)
	lines := decodeLines(t, buf.Bytes())
	if lines[0]["EventsReceived"] != 1000.0 {
		t.Errorf("EventsReceived = %v, want 1000", lines[0]["EventsReceived"])
	}
	var n int
	for _, l := range lines {
		n += len(l["LagMs"].([]any))
	}
	if n != 1000 {
		t.Errorf("%d LagMs values, want 1000", n)
	}
}
