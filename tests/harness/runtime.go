package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Runtime API paths, as aws-lambda-go v1.55.1 calls them (lambda/runtime_api_client.go).
const (
	pathNext       = "/2018-06-01/runtime/invocation/next"
	pathInvocation = "/2018-06-01/runtime/invocation/"
	pathInitError  = "/2018-06-01/runtime/init/error"
	pathExtension  = "/2020-01-01/extension/"

	// DefaultInitTimeout bounds the wait for a process to ask for its first invocation:
	// Lambda's limit on the init phase.
	DefaultInitTimeout = 10 * time.Second

	// DefaultTimeout is the function timeout when WithTimeout is not given: generous, because a
	// loaded CI machine is slow; tests of Okta's 3 s use WithTimeout or their own deadline.
	DefaultTimeout = 30 * time.Second
)

// FunctionError is an invocation the function answered with an error (POST …/error): what
// Lambda returns with X-Amz-Function-Error.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
	Body    []byte `json:"-"` // the raw error document
}

func (e *FunctionError) Error() string { return "function error " + e.Type + ": " + e.Message }

// InitError is an error the runtime reported during initialisation (POST …/init/error).
type InitError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *InitError) Error() string { return "init error " + e.Type + ": " + e.Message }

// ExitError is an invocation during which the function process exited (a panic, os.Exit, a
// log.Fatal): Lambda's Runtime.ExitError. The next Invoke starts a new process (a cold start).
type ExitError struct {
	Err    error  // from exec.Cmd.Wait
	Output string // the end of the process output
}

func (e *ExitError) Error() string { return fmt.Sprintf("Runtime.ExitError: %v\n%s", e.Err, e.Output) }

// TimeoutError is an invocation that outlived the function timeout. Like Lambda, the runtime
// kills the process; the next Invoke starts a new one.
type TimeoutError struct{ Timeout time.Duration }

func (e *TimeoutError) Error() string { return fmt.Sprintf("task timed out after %v", e.Timeout) }

// InitTimeoutError is a process that did not ask for an invocation within the init timeout.
type InitTimeoutError struct {
	Timeout time.Duration
	Output  string
}

func (e *InitTimeoutError) Error() string {
	return fmt.Sprintf("init did not finish within %v\n%s", e.Timeout, e.Output)
}

// RuntimeOption configures StartRuntime.
type RuntimeOption func(*Runtime)

// WithTimeout sets the function timeout: the deadline each invocation gets.
func WithTimeout(d time.Duration) RuntimeOption { return func(r *Runtime) { r.timeout = d } }

// WithInitTimeout sets the limit of the init phase (default DefaultInitTimeout).
func WithInitTimeout(d time.Duration) RuntimeOption { return func(r *Runtime) { r.initTimeout = d } }

// WithLogWriter copies the function's output to w as it is written.
func WithLogWriter(w io.Writer) RuntimeOption { return func(r *Runtime) { r.tee = w } }

// WithFunctionName sets AWS_LAMBDA_FUNCTION_NAME (default: the bootstrap's directory name).
func WithFunctionName(name string) RuntimeOption { return func(r *Runtime) { r.name = name } }

// Runtime serves the Lambda Runtime API to a real bootstrap binary and invokes it.
type Runtime struct {
	bootstrap   string
	env         map[string]string
	timeout     time.Duration
	initTimeout time.Duration
	tee         io.Writer
	name        string
	home        string

	ln  net.Listener
	srv *http.Server

	queue  chan *invocation // invocations waiting for a GET /next
	closed chan struct{}

	mu        sync.Mutex
	proc      *process
	starts    int
	coldStart time.Duration
	sawNext   bool
	initErr   *InitError
	inflight  map[string]*invocation
	output    Output // output of every process started, in order
	closeOnce sync.Once
}

type invocation struct {
	id          string
	payload     []byte
	deadline    time.Time     // written before deadlineSet is closed
	deadlineSet chan struct{} // closed by Invoke right after the hand-over
	done        chan result   // buffered; receives exactly one result
	answered    bool          // guarded by Runtime.mu
}

type result struct {
	body []byte
	err  error
}

// StartRuntime starts a fake Runtime API on a free localhost port and the bootstrap with
// AWS_LAMBDA_RUNTIME_API pointing at it. env is added to a clean, Lambda-like environment (the
// host's AWS profile or ~/.okta never leak in: HOME is an empty directory).
func StartRuntime(bootstrap string, env map[string]string, opts ...RuntimeOption) (*Runtime, error) {
	r := &Runtime{
		bootstrap:   bootstrap,
		env:         env,
		timeout:     DefaultTimeout,
		initTimeout: DefaultInitTimeout,
		name:        filepath.Base(filepath.Dir(bootstrap)),
		queue:       make(chan *invocation),
		closed:      make(chan struct{}),
		inflight:    map[string]*invocation{},
	}
	for _, o := range opts {
		o(r)
	}
	home, err := os.MkdirTemp("", "lambda-home-")
	if err != nil {
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	r.home = home
	r.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(home)
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	r.srv = &http.Server{Handler: r.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(r.ln) }()
	if err := r.startProcess(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Address is the Runtime API's host:port (AWS_LAMBDA_RUNTIME_API).
func (r *Runtime) Address() string { return r.ln.Addr().String() }

func (r *Runtime) environ() []string {
	m := map[string]string{
		"PATH":                            os.Getenv("PATH"),
		"HOME":                            r.home,
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"AWS_LAMBDA_RUNTIME_API":          r.Address(),
		"AWS_LAMBDA_FUNCTION_NAME":        r.name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + r.name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      time.Now().UTC().Format("2006/01/02") + "/[$LATEST]harness",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                filepath.Dir(r.bootstrap),
		"AWS_REGION":                      Region,
		"AWS_DEFAULT_REGION":              Region,
	}
	for k, v := range r.env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func (r *Runtime) startProcess() error {
	cmd := exec.Command(r.bootstrap)
	cmd.Dir = filepath.Dir(r.bootstrap)
	cmd.Env = r.environ()
	var w io.Writer = &r.output
	if r.tee != nil {
		w = io.MultiWriter(&r.output, lockedWriter(r.tee))
	}
	p, err := startProcess(cmd, w)
	if err != nil {
		return fmt.Errorf("start %s: %w", r.bootstrap, err)
	}
	r.mu.Lock()
	r.proc, r.sawNext, r.initErr = p, false, nil
	r.starts++
	r.mu.Unlock()
	go r.watch(p)
	return nil
}

// watch fails the invocations in flight when their process exits.
func (r *Runtime) watch(p *process) {
	<-p.exited
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != p {
		return
	}
	for id, inv := range r.inflight {
		r.answerLocked(inv, result{err: &ExitError{Err: p.waitErr, Output: tail(p.output.String(), 4000)}})
		delete(r.inflight, id)
	}
}

// answerLocked delivers the one result of inv. r.mu must be held.
func (r *Runtime) answerLocked(inv *invocation, res result) bool {
	if inv.answered {
		return false
	}
	inv.answered = true
	inv.done <- res
	return true
}

// Invoke runs one invocation and returns the function's response bytes, or a *FunctionError,
// *ExitError, *InitError, *InitTimeoutError or *TimeoutError. The invocation's deadline is the
// function timeout from when the process takes it, or ctx's deadline, whichever comes first. If the process has exited (after a crash or timeout), a
// new one is started first, as Lambda does.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	select {
	case <-r.closed:
		return nil, errors.New("runtime closed")
	default:
	}
	timeout := r.timeout
	inv := &invocation{id: newID(), payload: payload, deadlineSet: make(chan struct{}), done: make(chan result, 1)}
	// Like Lambda, the function timeout starts with the invocation; waiting for a (cold) process
	// to ask for work is the init phase, bounded separately.
	initTimer := time.NewTimer(r.initTimeout)
	defer initTimer.Stop()
	initC := initTimer.C

	// Hand the invocation to the process's next GET /next. A process that exited (or is exiting
	// after a panic) is replaced once, as Lambda re-initialises an environment.
	var p *process
	for starts := 0; ; {
		r.mu.Lock()
		p = r.proc
		r.mu.Unlock()
		if !p.running() {
			if starts > 0 {
				return nil, r.exitErr(p)
			}
			if err := r.startProcess(); err != nil {
				return nil, err
			}
			starts++
			continue
		}
		select {
		case r.queue <- inv:
		case <-p.exited:
			if r.reportedInitError() != nil {
				return nil, r.exitErr(p)
			}
			continue
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-initC:
			if r.initialised(p) {
				// A warm process busy with another invocation: invocations are serial, as in
				// one execution environment; wait on.
				initC = nil
				continue
			}
			return nil, &InitTimeoutError{Timeout: r.initTimeout, Output: tail(p.output.String(), 4000)}
		case <-r.closed:
			return nil, errors.New("runtime closed")
		}
		break
	}
	inv.deadline = time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(inv.deadline) {
		inv.deadline = d
	}
	close(inv.deadlineSet)
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()

	select {
	case res := <-inv.done:
		return res.body, res.err
	case <-p.exited:
		// watch() normally answers; this covers an exit before /next registered inv.
		r.mu.Lock()
		r.answerLocked(inv, result{err: &ExitError{Err: p.waitErr, Output: tail(p.output.String(), 4000)}})
		r.mu.Unlock()
		res := <-inv.done
		return res.body, res.err
	case <-ctx.Done():
		// The function may still answer; its POST is accepted and dropped, as Lambda would.
		r.mu.Lock()
		inv.answered = true
		r.mu.Unlock()
		return nil, ctx.Err()
	case <-timer.C:
		// Lambda ends a timed-out environment: the process is stopped, the next Invoke cold-starts.
		r.mu.Lock()
		delivered := r.answerLocked(inv, result{err: &TimeoutError{Timeout: timeout}})
		delete(r.inflight, inv.id)
		r.mu.Unlock()
		if delivered {
			p.stop()
		}
		res := <-inv.done
		return res.body, res.err
	}
}

// initialised reports whether p has asked for an invocation.
func (r *Runtime) initialised(p *process) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc == p && r.sawNext
}

func (r *Runtime) reportedInitError() *InitError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.initErr
}

func (r *Runtime) exitErr(p *process) error {
	if ie := r.reportedInitError(); ie != nil {
		return ie
	}
	return &ExitError{Err: p.waitErr, Output: tail(p.output.String(), 4000)}
}

// InvokeJSON marshals in, invokes, and unmarshals the response into out (when not nil).
func (r *Runtime) InvokeJSON(ctx context.Context, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("marshal payload: %w", err)
	}
	resp, err := r.Invoke(ctx, b)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("unmarshal response %q: %w", tail(string(resp), 500), err)
	}
	return nil
}

// InvokeAPIGateway invokes with an API Gateway REST proxy event, as API Gateway does.
func (r *Runtime) InvokeAPIGateway(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	var resp events.APIGatewayProxyResponse
	err := r.InvokeJSON(ctx, req, &resp)
	return resp, err
}

// Output is the combined stdout and stderr of every process this runtime started.
func (r *Runtime) Output() *Output { return &r.output }

// Logs is Output().String().
func (r *Runtime) Logs() string { return r.output.String() }

// Starts is how many processes were started (1 + the cold starts after crashes and timeouts).
func (r *Runtime) Starts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts
}

// ColdStart is the time from starting the current process to its first GET /next: the init
// phase Lambda bills and Okta waits through on a cold hook. Zero until that request came.
func (r *Runtime) ColdStart() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.coldStart
}

// Close stops the process and the Runtime API.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.mu.Lock()
		p := r.proc
		r.mu.Unlock()
		if p != nil {
			p.stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			r.srv.Close()
		}
		os.RemoveAll(r.home)
	})
	return nil
}

func (r *Runtime) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathNext, r.next)
	mux.HandleFunc("POST "+pathInvocation+"{id}/response", r.response)
	mux.HandleFunc("POST "+pathInvocation+"{id}/error", r.invocationError)
	mux.HandleFunc("POST "+pathInitError, r.initError)
	mux.HandleFunc("POST "+pathExtension+"register", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Lambda-Extension-Identifier", newID())
		writeJSON(w, http.StatusOK, map[string]string{"functionName": r.name, "functionVersion": "$LATEST", "handler": "bootstrap"})
	})
	// aws-lambda-go's SIGTERM support registers an extension and parks a GET here forever.
	mux.HandleFunc("GET "+pathExtension+"event/next", func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-r.closed:
		}
	})
	return mux
}

func (r *Runtime) next(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if !r.sawNext && r.proc != nil {
		r.sawNext = true
		r.coldStart = time.Since(r.proc.started)
	}
	r.mu.Unlock()

	var inv *invocation
	for inv == nil {
		select {
		case inv = <-r.queue:
		case <-req.Context().Done():
			return
		case <-r.closed:
			// Like a frozen environment: the process never gets another event.
			<-req.Context().Done()
			return
		}
		r.mu.Lock()
		if inv.answered { // the caller gave up between handing it over and now
			inv = nil
		} else {
			r.inflight[inv.id] = inv
		}
		r.mu.Unlock()
	}

	<-inv.deadlineSet
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:"+Region+":"+AccountID+":function:"+r.name)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+randHex(12)+";Parent="+randHex(8)+";Sampled=0")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// take removes the in-flight invocation id, or answers the request with Lambda's error.
func (r *Runtime) take(w http.ResponseWriter, id string) *invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	inv, ok := r.inflight[id]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"errorType": "InvalidRequestID", "errorMessage": "unknown or finished request id " + id})
		return nil
	}
	delete(r.inflight, id)
	return inv
}

func (r *Runtime) response(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	inv := r.take(w, req.PathValue("id"))
	if inv == nil {
		return
	}
	res := result{body: body}
	switch {
	case err != nil:
		res = result{err: fmt.Errorf("read response body: %w", err)}
	case req.Trailer.Get("Lambda-Runtime-Function-Error-Type") != "":
		// aws-lambda-go reports a failed streamed response in trailers.
		res = result{err: &FunctionError{Type: req.Trailer.Get("Lambda-Runtime-Function-Error-Type"), Message: "response stream failed"}}
	}
	r.mu.Lock()
	r.answerLocked(inv, res)
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (r *Runtime) invocationError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	inv := r.take(w, req.PathValue("id"))
	if inv == nil {
		return
	}
	fe := &FunctionError{Body: body}
	if err := json.Unmarshal(body, fe); err != nil || fe.Type == "" {
		fe.Type = req.Header.Get("Lambda-Runtime-Function-Error-Type")
		if fe.Message == "" {
			fe.Message = string(body)
		}
	}
	r.mu.Lock()
	r.answerLocked(inv, result{err: fe})
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (r *Runtime) initError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ie := &InitError{}
	if err := json.Unmarshal(body, ie); err != nil || ie.Type == "" {
		ie.Type = req.Header.Get("Lambda-Runtime-Function-Error-Type")
		ie.Message = strings.TrimSpace(string(body))
	}
	r.mu.Lock()
	r.initErr = ie
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newID is a random (version 4) UUID, the form of Lambda's request ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
