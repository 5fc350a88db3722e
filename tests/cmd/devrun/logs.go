package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// logLine is one JSON log line of a function (slog's JSON handler).
type logLine map[string]any

func (l logLine) str(key string) string {
	switch v := l[key].(type) {
	case string:
		return v
	case nil:
		return ""
	case float64:
		return fmt.Sprint(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func (l logLine) num(key string) int {
	v, _ := l[key].(float64)
	return int(v)
}

func (l logLine) msg() string { return l.str("msg") }

// parseLogs returns the JSON log lines among lines; EMF metric lines (they carry "_aws") and
// anything that is not JSON are left out.
func parseLogs(lines []string) []logLine {
	var out []logLine
	for _, s := range lines {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		var l logLine
		if json.Unmarshal([]byte(s), &l) != nil {
			continue
		}
		if _, emf := l["_aws"]; emf {
			continue
		}
		out = append(out, l)
	}
	return out
}

// logCursor reads a runtime's output invocation by invocation.
type logCursor struct {
	rt   *harness.Runtime
	seen int // lines already returned
}

// next returns the log lines written since the last call, waiting (briefly) until one with msg
// last has arrived: the function writes its logs before it answers, but they travel through a
// pipe, so the answer can overtake them.
func (c *logCursor) next(last string) []logLine {
	deadline := time.Now().Add(2 * time.Second)
	for {
		lines := c.rt.Output().Lines()
		fresh := parseLogs(lines[min(c.seen, len(lines)):])
		done := last == ""
		for _, l := range fresh {
			if l.msg() == last {
				done = true
			}
		}
		if done || time.Now().After(deadline) {
			c.seen = len(lines)
			return fresh
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// prefixWriter copies a function's output to w line by line, each line prefixed with the
// function's name (as `sam local` does), for -v. w must be safe for concurrent use (syncWriter).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

func newPrefixWriter(w io.Writer, name string) *prefixWriter {
	return &prefixWriter{w: w, prefix: fmt.Sprintf("%-9s| ", name)}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		i := bytes.IndexByte(p.buf.Bytes(), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := p.prefix + string(p.buf.Next(i+1))
		if _, err := io.WriteString(p.w, line); err != nil {
			return len(b), err
		}
	}
}

// syncWriter serialises writes, so lines of several functions never interleave.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
