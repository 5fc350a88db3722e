package telemetry

import (
	"encoding/json"
	"io"
	"math"
	"sort"
	"sync"
	"time"
)

// EMF units used by this project (CloudWatch's StandardUnit names).
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
	UnitBytes        = "Bytes"
	UnitNone         = "None"
)

// maxValuesPerMetric is CloudWatch EMF's limit on the values of one metric in one log line.
const maxValuesPerMetric = 100

// Metrics collects metric values of one invocation and writes them as CloudWatch Embedded Metric
// Format. No dimensions are used: this project's metrics are few and per function, and every
// dimension set costs a separate custom metric. Safe for concurrent use.
type Metrics struct {
	namespace string
	now       func() time.Time

	mu      sync.Mutex
	metrics map[string]*metric
}

type metric struct {
	unit   string
	count  bool      // Count: summed to one value
	values []float64 // Value: every observation kept
}

// NewMetrics returns an empty collector for namespace (METRICS_NAMESPACE).
func NewMetrics(namespace string) *Metrics {
	return &Metrics{namespace: namespace, now: time.Now, metrics: map[string]*metric{}}
}

// Count adds n to the counter name (unit Count). A counter that was counted, even by zero, is
// written, so dashboards see an explicit 0 rather than a gap.
func (m *Metrics) Count(name string, n float64) {
	if !finite(n) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.metrics[name]
	if mt == nil {
		mt = &metric{unit: UnitCount, count: true, values: []float64{0}}
		m.metrics[name] = mt
	}
	if mt.count {
		mt.values[0] += n
		return
	}
	mt.values = append(mt.values, n)
}

// Value records one observation of name (e.g. LagMs in Milliseconds). All observations are
// written, so CloudWatch computes percentiles over them. The first unit given for a name wins.
func (m *Metrics) Value(name string, v float64, unit string) {
	if !finite(v) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.metrics[name]
	if mt == nil {
		if unit == "" {
			unit = UnitNone
		}
		mt = &metric{unit: unit}
		m.metrics[name] = mt
	}
	if mt.count {
		mt.values[0] += v
		return
	}
	mt.values = append(mt.values, v)
}

// Flush writes the collected metrics as one EMF JSON line to w (stdout in Lambda) and resets the
// collector. Nothing is written when nothing was recorded. A metric with more observations than
// EMF allows in one line (100) continues in further lines.
func (m *Metrics) Flush(w io.Writer) {
	m.mu.Lock()
	metrics := m.metrics
	m.metrics = map[string]*metric{}
	ts := m.now().UnixMilli()
	m.mu.Unlock()
	if len(metrics) == 0 {
		return
	}

	names := make([]string, 0, len(metrics))
	for name := range metrics {
		names = append(names, name)
	}
	sort.Strings(names)

	for part := 0; ; part++ {
		line, more := emfLine(m.namespace, ts, names, metrics, part)
		if line == nil {
			return
		}
		// Lambda's stdout is the only sink; a failed write has nowhere better to go.
		_, _ = w.Write(line)
		if !more {
			return
		}
	}
}

// finite guards the JSON encoding: NaN and ±Inf have no JSON form and would spoil the whole line.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

type emfDirective struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []emfMetricD `json:"Metrics"`
}

type emfMetricD struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// emfLine builds line number part: the metrics that still have values in chunk part. more
// reports whether another part follows.
func emfLine(namespace string, ts int64, names []string, metrics map[string]*metric, part int) (line []byte, more bool) {
	doc := make(map[string]any, len(names)+1)
	dir := emfDirective{Namespace: namespace, Dimensions: [][]string{{}}}
	for _, name := range names {
		vs := metrics[name].values
		lo := part * maxValuesPerMetric
		if lo >= len(vs) {
			continue
		}
		hi := min(lo+maxValuesPerMetric, len(vs))
		if hi < len(vs) {
			more = true
		}
		dir.Metrics = append(dir.Metrics, emfMetricD{Name: name, Unit: metrics[name].unit})
		if hi-lo == 1 {
			doc[name] = vs[lo]
		} else {
			doc[name] = vs[lo:hi]
		}
	}
	if len(dir.Metrics) == 0 {
		return nil, false
	}
	doc["_aws"] = emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{dir}}
	b, err := json.Marshal(doc)
	if err != nil {
		// Unreachable: non-finite values are refused when recorded, names are strings.
		return nil, false
	}
	return append(b, '\n'), more
}
