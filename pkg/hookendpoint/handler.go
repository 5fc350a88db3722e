package hookendpoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// Sender enqueues changes for the sync worker. pkg/queue's Sender satisfies it and packs one
// delivery's changes of an Okta group into one message, so the worker can batch them.
type Sender interface {
	Send(ctx context.Context, changes []membership.Change) error
}

// SecretSource returns the current secret, cached (pkg/config's SecretStore satisfies it).
type SecretSource interface {
	Get(ctx context.Context) (config.Secrets, error)
}

// Metric names (EMF, no dimensions; the one list is pkg/telemetry's).
const (
	metricEventsReceived  = telemetry.MetricEventsReceived
	metricChangesEnqueued = telemetry.MetricChangesEnqueued
	metricEventsDropped   = telemetry.MetricEventsDropped
	metricAuthFailures    = telemetry.MetricHookAuthFailures
	metricRejected        = telemetry.MetricHookRejected
)

// Handler answers Okta's event hook calls arriving through an API Gateway REST proxy integration.
// It only verifies, expands and enqueues, so it answers far inside Okta's 3 s timeout.
type Handler struct {
	authHeader   string
	maxBodyBytes int64
	selected     func(groupName string) bool
	namespace    string

	secrets    SecretSource
	sender     Sender
	log        *slog.Logger
	metricsOut io.Writer // EMF lines; stdout in Lambda
}

// New returns the Handler for cfg: secrets gives the auth token, snd enqueues, log and
// metricsOut take one summary line and the EMF metrics per request.
func New(cfg config.Hook, secrets SecretSource, snd Sender, log *slog.Logger, metricsOut io.Writer) *Handler {
	return &Handler{
		authHeader:   cfg.AuthHeader,
		maxBodyBytes: cfg.MaxBodyBytes,
		selected:     cfg.Selection.Match,
		namespace:    cfg.MetricsNamespace,
		secrets:      secrets,
		sender:       snd,
		log:          log,
		metricsOut:   metricsOut,
	}
}

// summary is what one request did; Handle turns it into one log line and the metrics.
type summary struct {
	status   int
	kind     string // verification, delivery, rejected (4xx), failed (5xx before parsing)
	reason   string // why a request was rejected or failed; never a header value
	err      error  // internal cause of a 500, logged, not returned to Okta
	eventID  string
	events   int
	enqueued int
	dropped  map[oktahook.DropReason]int
	nDropped int
	body     int           // bytes of the delivery body, decoded
	enqueue  time.Duration // spent in Send
}

// Handle serves one API Gateway proxy request. It never returns an error: API Gateway would turn
// one into a 502 without a body, and every outcome here has a status code of its own.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	start := time.Now()
	log := telemetry.WithLambda(ctx, h.log)
	if id, err := oktahook.Header(req.Headers, req.MultiValueHeaders, oktahook.RequestIDHeader); err == nil {
		log = log.With(slog.String("okta_request_id", id))
	}

	resp, s := h.serve(ctx, log, req)

	m := telemetry.NewMetrics(h.namespace)
	switch {
	case s.status == http.StatusUnauthorized:
		m.Count(metricAuthFailures, 1)
	case s.status >= 400 && s.status < 500:
		m.Count(metricRejected, 1)
	}
	if s.kind == "delivery" {
		m.Count(metricEventsReceived, float64(s.events))
		m.Count(metricChangesEnqueued, float64(s.enqueued))
		m.Count(metricEventsDropped, float64(s.nDropped))
	}
	m.Flush(h.metricsOut)

	attrs := []slog.Attr{
		slog.String("kind", s.kind),
		slog.String("method", truncate(req.HTTPMethod)),
		slog.Int("status", s.status),
	}
	if s.reason != "" {
		attrs = append(attrs, slog.String("reason", s.reason))
	}
	if s.err != nil {
		attrs = append(attrs, slog.String("error", s.err.Error()))
	}
	if s.kind == "delivery" {
		dropped := make([]any, 0, len(s.dropped))
		for r, n := range s.dropped {
			dropped = append(dropped, slog.Int(string(r), n))
		}
		attrs = append(attrs,
			slog.String("okta_event_id", s.eventID),
			slog.Int("events", s.events),
			slog.Int("enqueued", s.enqueued),
			slog.Int("dropped", s.nDropped),
			slog.Group("dropped_by_reason", dropped...),
			slog.Int("body_bytes", s.body),
			slog.Float64("enqueue_ms", millis(s.enqueue)))
	}
	// Okta gives up after 3 s (and retries once): how close a delivery came, from the hand-over
	// of the decoded event to the answer (Lambda's decode of the event itself is not included).
	attrs = append(attrs, slog.Float64("duration_ms", millis(time.Since(start))))
	level := slog.LevelInfo
	switch {
	case s.status >= 500:
		level = slog.LevelError
	case s.status >= 400:
		level = slog.LevelWarn
	}
	log.LogAttrs(ctx, level, "hook request", attrs...)
	return resp, nil
}

func (h *Handler) serve(ctx context.Context, log *slog.Logger, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, summary) {
	method := strings.ToUpper(req.HTTPMethod)
	if method != http.MethodGet && method != http.MethodPost {
		return reject(http.StatusMethodNotAllowed, "method "+truncate(req.HTTPMethod)+" not allowed")
	}

	// Okta sends the configured auth header on every call, the one-time verification GET
	// included (support.okta.com, "Unable to verify event hook"), so the GET is authenticated
	// too: otherwise anyone could make this endpoint look like a verified hook.
	presented, err := oktahook.Header(req.Headers, req.MultiValueHeaders, h.authHeader)
	switch {
	case errors.Is(err, oktahook.ErrHeaderAmbiguous):
		// Different values under several spellings: not Okta, and no value is "the" one.
		return reject(http.StatusUnauthorized, "conflicting "+h.authHeader+" headers")
	case err != nil:
		return reject(http.StatusUnauthorized, "missing "+h.authHeader+" header")
	}
	sec, err := h.secrets.Get(ctx)
	if err != nil {
		return fail("read secret", err)
	}
	if err := sec.Require(config.KeyAuthTokenForOkta); err != nil {
		// Our misconfiguration, not the caller's fault: 5xx, so it shows as a server error.
		return fail("secret unusable", err)
	}
	if !oktahook.Authorized(presented, sec.AuthTokenForOkta) {
		return reject(http.StatusUnauthorized, "wrong "+h.authHeader+" header")
	}

	if method == http.MethodGet {
		return h.verify(req)
	}
	return h.deliver(ctx, log, req)
}

func (h *Handler) verify(req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, summary) {
	challenge, err := oktahook.Challenge(req.Headers, req.MultiValueHeaders)
	if errors.Is(err, oktahook.ErrHeaderAmbiguous) {
		return reject(http.StatusBadRequest, "conflicting "+oktahook.ChallengeHeader+" headers")
	}
	if err != nil || challenge == "" {
		return reject(http.StatusBadRequest, "GET without "+oktahook.ChallengeHeader+" header")
	}
	return events.APIGatewayProxyResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(oktahook.VerificationBody(challenge)),
	}, summary{status: http.StatusOK, kind: "verification"}
}

func (h *Handler) deliver(ctx context.Context, log *slog.Logger, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, summary) {
	// Okta always sends application/json; anything else did not come from an Okta event hook.
	ct, _ := oktahook.Header(req.Headers, req.MultiValueHeaders, "Content-Type")
	if !isJSON(ct) {
		return reject(http.StatusUnsupportedMediaType, "content type "+truncate(ct)+", want application/json")
	}

	body, resp, s, ok := h.body(req)
	if !ok {
		return resp, s
	}

	env, err := oktahook.Parse(body)
	if err != nil {
		return reject(http.StatusBadRequest, err.Error())
	}
	res := oktahook.Expand(env, h.selected)
	res.LogDrops(ctx, log)

	s = summary{
		status:   http.StatusOK,
		kind:     "delivery",
		eventID:  env.EventID,
		events:   res.Events,
		dropped:  res.Dropped,
		nDropped: res.DroppedTotal(),
		body:     len(body),
	}
	if len(res.Changes) > 0 {
		start := time.Now()
		err := h.sender.Send(ctx, res.Changes)
		s.enqueue = time.Since(start)
		if err != nil {
			// Okta retries once on a 5xx; the queue's deduplication id makes the retry safe.
			s.status, s.reason, s.err = http.StatusInternalServerError, "enqueue failed", err
			return jsonError(http.StatusInternalServerError, "enqueue failed"), s
		}
		s.enqueued = len(res.Changes)
	}
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}, s
}

// body returns the request body, decoded from base64 when API Gateway encoded it, refusing bodies
// over the limit before any decoding work is spent on them.
func (h *Handler) body(req events.APIGatewayProxyRequest) ([]byte, events.APIGatewayProxyResponse, summary, bool) {
	limit := h.maxBodyBytes
	if !req.IsBase64Encoded {
		if int64(len(req.Body)) > limit {
			resp, s := tooLarge(limit)
			return nil, resp, s, false
		}
		return []byte(req.Body), events.APIGatewayProxyResponse{}, summary{}, true
	}
	// The encoded form is 4/3 of the decoded one; compare it with the encoded size of the limit
	// first, then check the decoded length exactly.
	if int64(len(req.Body)) > int64(base64.StdEncoding.EncodedLen(int(limit))) {
		resp, s := tooLarge(limit)
		return nil, resp, s, false
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		resp, s := reject(http.StatusBadRequest, "body is not valid base64")
		return nil, resp, s, false
	}
	if int64(len(b)) > limit {
		resp, s := tooLarge(limit)
		return nil, resp, s, false
	}
	return b, events.APIGatewayProxyResponse{}, summary{}, true
}

func tooLarge(limit int64) (events.APIGatewayProxyResponse, summary) {
	return reject(http.StatusRequestEntityTooLarge, "body larger than MAX_BODY_BYTES")
}

// isJSON accepts application/json with no charset or UTF-8, in any case.
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// reject answers a client error with a short JSON body. reason never contains a header value.
func reject(status int, reason string) (events.APIGatewayProxyResponse, summary) {
	resp := jsonError(status, reason)
	if status == http.StatusMethodNotAllowed {
		resp.Headers["Allow"] = "GET, POST"
	}
	return resp, summary{status: status, kind: "rejected", reason: reason}
}

// fail answers a server-side failure. The cause is logged, not sent to the caller.
func fail(reason string, err error) (events.APIGatewayProxyResponse, summary) {
	return jsonError(http.StatusInternalServerError, reason),
		summary{status: http.StatusInternalServerError, kind: "failed", reason: reason, err: err}
}

func jsonError(status int, msg string) events.APIGatewayProxyResponse {
	b, err := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	if err != nil {
		b = []byte(`{"error":"internal error"}`)
	}
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// truncate keeps caller-controlled strings short in responses and logs.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
