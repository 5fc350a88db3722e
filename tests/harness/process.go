package harness

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 3 * time.Second

// Output is a process's captured output, safe to read while the process writes.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Lines is everything written so far, one element per complete or trailing line.
func (o *Output) Lines() []string {
	s := strings.TrimRight(o.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// process is a started command with its output captured and its exit observed.
type process struct {
	cmd            *exec.Cmd
	started        time.Time
	output         *Output // stdout and stderr interleaved, as CloudWatch shows them
	stdout, stderr *Output
	exited         chan struct{}
	waitErr        error // set before exited is closed
	stopOnce       sync.Once
}

// startProcess starts cmd in its own process group. tee, when not nil, also receives the
// combined output (a test's log, or the terminal of `make invoke`).
func startProcess(cmd *exec.Cmd, tee io.Writer) (*process, error) {
	p := &process{cmd: cmd, output: &Output{}, stdout: &Output{}, stderr: &Output{}, exited: make(chan struct{})}
	combined := io.Writer(p.output)
	if tee != nil {
		combined = io.MultiWriter(p.output, lockedWriter(tee))
	}
	cmd.Stdout = io.MultiWriter(p.stdout, combined)
	cmd.Stderr = io.MultiWriter(p.stderr, combined)
	// A grandchild holding the pipes open must not block Wait forever.
	cmd.WaitDelay = stopGrace
	ownGroup(cmd)
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop terminates the process group, politely first.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		terminate(p.cmd)
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			kill(p.cmd)
			<-p.exited
		}
	})
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// lockedWriter serialises writes from the stdout and stderr copiers.
func lockedWriter(w io.Writer) io.Writer { return &syncWriter{w: w} }

// tail is the end of s, for error messages.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
