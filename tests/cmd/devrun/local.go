package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

const (
	defaultLocalAddr = "127.0.0.1:3000"
	// hookPath is the hook's route in template.yaml (GET and POST).
	hookPath = "/okta/events"
	// maxPayload is API Gateway's request payload limit (10 MB); larger requests never reach Lambda.
	maxPayload = 10 << 20
)

// exampleDelivery is a one-event Okta delivery for the printed curl example: Carol added to
// AWS_Engineers.
const exampleDelivery = `{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","cloudEventsVersion":"0.1",` +
	`"source":"https://example.okta.com/api/v1/eventHooks/who8vt36qfNpCGz9H1d7","eventId":"local-example-1",` +
	`"eventTime":"2026-11-25T12:00:00.500Z","contentType":"application/json","data":{"events":[` +
	`{"uuid":"local-example-event-1","published":"2026-11-25T12:00:00.000Z","eventType":"group.user_membership.add",` +
	`"outcome":{"result":"SUCCESS"},"target":[` +
	`{"id":"` + carolID + `","type":"User","alternateId":"` + carolLogin + `","displayName":"Carol White"},` +
	`{"id":"` + engineersID + `","type":"UserGroup","alternateId":"unknown","displayName":"` + engineers + `"}]}]}}`

// localOptions configure runLocal.
type localOptions struct {
	addr    string
	verbose io.Writer
	moto    *harness.Moto               // nil: start one
	ready   func(base string, w *world) // called once the hook is served (tests)
}

// runLocal serves the hook over HTTP like `sam local start-api`: each request becomes an API
// Gateway proxy event for the real hook bootstrap, and a background consumer drains the queue
// into the real sync bootstrap. It returns when ctx ends, after stopping everything it started.
func runLocal(ctx context.Context, opts localOptions, out io.Writer) error {
	if opts.addr == "" {
		opts.addr = defaultLocalAddr
	}
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	prebuild("hook", "sync")
	w, err := startWorld(ctx, opts.moto, "local")
	if err != nil {
		return err
	}
	defer w.close()
	if opts.verbose != nil {
		w.logs, w.prefix = opts.verbose, true
	}
	hook, err := w.start("hook")
	if err != nil {
		return err
	}
	syncRT, err := w.start("sync")
	if err != nil {
		return err
	}

	p := &printer{w: out}
	l := &localHook{hook: hook, logs: logCursor{rt: hook}, p: p}
	srv := &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	printLocalBanner(p, w, base)

	pumpCtx, stopPump := context.WithCancel(ctx)
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		m := newMapping(w, syncRT)
		m.run(pumpCtx, func(b batch) { printBatch(p, b, "") },
			func(err error) { p.line("queue → sync: %v", err) })
	}()
	if opts.ready != nil {
		opts.ready(base, w)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	p.line("stopping: hook server, queue consumer, functions, emulators, moto_server")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	stopPump()
	<-pumped
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func printLocalBanner(p *printer, w *world, base string) {
	url := base + hookPath
	p.line("okta-aws-sso-sync local: the real hook bootstrap behind %s (GET and POST, like sam local start-api)", url)
	p.line("  auth header   Authorization: %s   (the secret's auth_token_for_okta, as in events/)", sampleHookToken)
	p.line("  queue → sync  a background consumer drains %s into the real sync bootstrap", w.queue.URL)
	p.line("  AWS SSO SCIM  %s (emulator, seeded with the events/ users; groups: %s, %s)", w.scimURL, engineers, readOnly)
	p.line("  Okta API      %s (fake)", w.oktaURL)
	p.line("")
	p.line("Try, from another terminal:")
	p.line("  curl -i %s -H 'Authorization: %s' -H 'X-Okta-Verification-Challenge: hello'", url, sampleHookToken)
	p.line("  curl -i -X POST %s -H 'Authorization: %s' -H 'Content-Type: application/json' \\", url, sampleHookToken)
	p.line("    -d '%s'", exampleDelivery)
	p.line("A tunnel (e.g. ngrok http %s) lets a real Okta org's event hook call it (set its Authorization", strings.TrimPrefix(base, "http://"))
	p.line("header to the value above); only the seeded users are in the emulator, other users' adds end in the DLQ.")
	p.line("Ctrl-C stops everything.")
	p.line("")
}

// localHook converts HTTP requests to API Gateway proxy events and back.
type localHook struct {
	mu   sync.Mutex // one execution environment: requests are served one at a time
	hook *harness.Runtime
	logs logCursor
	p    *printer
}

func (l *localHook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != hookPath || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
		// API Gateway's answer for a route or method the API does not define.
		writeGatewayError(rw, http.StatusForbidden, "Missing Authentication Token")
		l.p.line("%s %s → 403 (no such route; the hook is %s)", r.Method, r.URL.Path, hookPath)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeGatewayError(rw, http.StatusBadRequest, "could not read the request body")
		return
	}
	if len(body) > maxPayload {
		writeGatewayError(rw, http.StatusRequestEntityTooLarge, "Request Too Long")
		return
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	resp, err := l.hook.InvokeAPIGateway(r.Context(), proxyRequest(r, body))
	logs := l.logs.next("hook request")
	if err != nil {
		// API Gateway turns a failed Lambda integration into a 502.
		writeGatewayError(rw, http.StatusBadGateway, "Internal server error")
		l.p.line("%s %s → 502 (hook invocation failed: %v)", r.Method, r.URL.Path, err)
		return
	}
	writeProxyResponse(rw, resp)
	a := arrival{method: r.Method, status: resp.StatusCode, body: resp.Body}
	for _, lg := range logs {
		if lg.msg() == "hook request" {
			a.hookLog, a.events, a.enqueued = lg, lg.num("events"), lg.num("enqueued")
			if d, ok := lg["dropped_by_reason"].(map[string]any); ok {
				a.dropped = map[string]int{}
				for k, v := range d {
					n, _ := v.(float64)
					a.dropped[k] = int(n)
				}
			}
		}
	}
	l.p.line("%s %s → %s", r.Method, r.URL.Path, a.result())
}

// proxyRequest is the REST API proxy event API Gateway would send for r.
func proxyRequest(r *http.Request, body []byte) events.APIGatewayProxyRequest {
	headers, multi := map[string]string{}, map[string][]string{}
	for k, vs := range r.Header {
		headers[k], multi[k] = vs[len(vs)-1], vs
	}
	headers["Host"], multi["Host"] = r.Host, []string{r.Host}
	var query map[string]string
	var multiQuery map[string][]string
	if q := r.URL.Query(); len(q) > 0 {
		query, multiQuery = map[string]string{}, map[string][]string{}
		for k, vs := range q {
			query[k], multiQuery[k] = vs[len(vs)-1], vs
		}
	}
	// Without binary media types API Gateway passes text as is; anything else arrives base64.
	text, b64 := string(body), false
	if !utf8.Valid(body) {
		text, b64 = base64.StdEncoding.EncodeToString(body), true
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now().UTC()
	return events.APIGatewayProxyRequest{
		Resource:                        hookPath,
		Path:                            r.URL.Path,
		HTTPMethod:                      r.Method,
		Headers:                         headers,
		MultiValueHeaders:               multi,
		QueryStringParameters:           query,
		MultiValueQueryStringParameters: multiQuery,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:        harness.AccountID,
			ResourceID:       "local",
			Stage:            "local",
			RequestID:        randomID(),
			ResourcePath:     hookPath,
			Path:             "/local" + r.URL.Path,
			HTTPMethod:       r.Method,
			APIID:            "local",
			Protocol:         r.Proto,
			DomainName:       r.Host,
			RequestTime:      now.Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch: now.UnixMilli(),
			Identity:         events.APIGatewayRequestIdentity{SourceIP: ip, UserAgent: r.UserAgent()},
		},
		Body:            text,
		IsBase64Encoded: b64,
	}
}

// writeProxyResponse writes the function's proxy response as API Gateway does.
func writeProxyResponse(rw http.ResponseWriter, resp events.APIGatewayProxyResponse) {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			writeGatewayError(rw, http.StatusBadGateway, "Internal server error")
			return
		}
		body = b
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		// A proxy response without a valid statusCode is a malformed integration response.
		writeGatewayError(rw, http.StatusBadGateway, "Internal server error")
		return
	}
	h := rw.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	rw.WriteHeader(resp.StatusCode)
	_, _ = rw.Write(body)
}

func writeGatewayError(rw http.ResponseWriter, status int, msg string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(map[string]string{"message": msg})
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s := hex.EncodeToString(b)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
