package oktatest

// Event Hooks Management API, as Okta documents it (developer.okta.com/docs/api/openapi/okta-management/
// management/tag/EventHook/ and the older reference developer.okta.com/docs/reference/api/event-hooks/):
//   - POST /api/v1/eventHooks registers a hook "in ACTIVE status", verificationStatus UNVERIFIED.
//   - GET /api/v1/eventHooks lists them all (no paging is documented; an org holds few hooks).
//   - GET/PUT/DELETE /api/v1/eventHooks/{id}; PUT replaces the hook; "Updating the channel property
//     requires you to verify the hook again", so a PUT that changes the channel makes it UNVERIFIED.
//     DELETE needs an INACTIVE hook.
//   - POST …/lifecycle/activate, …/lifecycle/deactivate, …/lifecycle/verify. Verify makes Okta send
//     one GET with X-Okta-Verification-Challenge (and the hook's auth and custom headers) to the URI
//     and expects 200 {"verification": <the challenge>} within 3 s; "One retry is attempted after a
//     timeout or error response. If a successful response still isn't received, this operation
//     returns a 400 error".
//   - channel.config.authScheme.value "is not returned in the response"; custom header values are.
//   - events.type is EVENT_TYPE and every item must be an event-hook-eligible System Log type.
//
// Choices of the fake where Okta documents nothing: a 400 is E0000001 with an errorCauses entry
// naming the bad field; the URI must be https:// except for a loopback host (local tests); at most
// maxEventHooks hooks exist at once (Okta help, "Create an event hook": "A maximum of 25 event
// hooks are allowed for each org").

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Routes of the Event Hooks API.
const (
	RouteListEventHooks    Route = "list_event_hooks"
	RouteCreateEventHook   Route = "create_event_hook"
	RouteGetEventHook      Route = "get_event_hook"
	RouteUpdateEventHook   Route = "update_event_hook"
	RouteDeleteEventHook   Route = "delete_event_hook"
	RouteEventHookLifecyle Route = "event_hook_lifecycle"
)

// Event hook states.
const (
	HookActive     = "ACTIVE"
	HookInactive   = "INACTIVE"
	HookVerified   = "VERIFIED"
	HookUnverified = "UNVERIFIED"
)

const maxEventHooks = 25

// verifyTimeout is Okta's limit for the hook's answer to a verification GET.
const verifyTimeout = 3 * time.Second

// EligibleEventTypes are the System Log event types the fake accepts in a hook's events.items: the
// ones okta-aws-sso-sync subscribes to and a few more, all marked event-hook eligible in Okta's
// Event Types catalogue (developer.okta.com/docs/reference/api/event-types/). Anything else is 400,
// as Okta answers for a type that is unknown or not eligible.
var EligibleEventTypes = []string{
	"group.lifecycle.create",
	"group.lifecycle.delete",
	"group.profile.update",
	"group.user_membership.add",
	"group.user_membership.remove",
	"user.lifecycle.activate",
	"user.lifecycle.create",
	"user.lifecycle.deactivate",
	"user.lifecycle.delete.initiated",
	"user.lifecycle.reactivate",
	"user.lifecycle.suspend",
	"user.lifecycle.unsuspend",
	"user.account.update_profile",
	"user.session.start",
	"application.user_membership.add",
	"application.user_membership.remove",
}

// EventHookHeader is a custom header of a hook.
type EventHookHeader struct{ Key, Value string }

// EventHook is a snapshot of a stored hook, for test assertions. AuthValue is what Okta stored and
// never returns over the API.
type EventHook struct {
	ID, Name, Status, VerificationStatus string
	URI                                  string
	Headers                              []EventHookHeader
	AuthType, AuthKey, AuthValue         string
	Events                               []string
	Created, LastUpdated                 time.Time
	// Verifications counts verification GETs sent to the hook's URI (each attempt).
	Verifications int
}

type eventHookJSON struct {
	ID                 string     `json:"id,omitempty"`
	Name               string     `json:"name"`
	Status             string     `json:"status,omitempty"`
	VerificationStatus string     `json:"verificationStatus,omitempty"`
	Created            string     `json:"created,omitempty"`
	CreatedBy          string     `json:"createdBy,omitempty"`
	LastUpdated        string     `json:"lastUpdated,omitempty"`
	Events             *eventsObj `json:"events"`
	Channel            *channel   `json:"channel"`
	Links              any        `json:"_links,omitempty"`
}

type eventsObj struct {
	Type  string   `json:"type"`
	Items []string `json:"items"`
}

type channel struct {
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Config  *channelConfig `json:"config"`
}

type channelConfig struct {
	URI        string       `json:"uri"`
	Headers    []headerJSON `json:"headers,omitempty"`
	AuthScheme *authScheme  `json:"authScheme,omitempty"`
}

type headerJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type authScheme struct {
	Type  string `json:"type"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// fakeAdminID is the createdBy of every hook (the token's owner).
const fakeAdminID = "00uFakeAdmin00000001"

func (s *Server) registerEventHookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/eventHooks", s.wrap(RouteListEventHooks, s.listEventHooks))
	mux.HandleFunc("POST /api/v1/eventHooks", s.wrap(RouteCreateEventHook, s.createEventHook))
	mux.HandleFunc("GET /api/v1/eventHooks/{hook}", s.wrap(RouteGetEventHook, s.getEventHook))
	mux.HandleFunc("PUT /api/v1/eventHooks/{hook}", s.wrap(RouteUpdateEventHook, s.updateEventHook))
	mux.HandleFunc("DELETE /api/v1/eventHooks/{hook}", s.wrap(RouteDeleteEventHook, s.deleteEventHook))
	mux.HandleFunc("POST /api/v1/eventHooks/{hook}/lifecycle/{op}", s.wrap(RouteEventHookLifecyle, s.eventHookLifecycle))
}

// EventHooks returns every stored hook in creation order.
func (s *Server) EventHooks() []EventHook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EventHook, 0, len(s.hooks))
	for _, id := range sortedIDs(s.hooks) {
		out = append(out, *s.hooks[id])
	}
	return out
}

func (h *EventHook) toJSON(r *http.Request) eventHookJSON {
	cfg := &channelConfig{URI: h.URI}
	for _, hd := range h.Headers {
		cfg.Headers = append(cfg.Headers, headerJSON(hd))
	}
	if h.AuthType != "" {
		// The value is write-only: Okta never returns it.
		cfg.AuthScheme = &authScheme{Type: h.AuthType, Key: h.AuthKey}
	}
	self := baseURL(r) + "/api/v1/eventHooks/" + h.ID
	return eventHookJSON{
		ID: h.ID, Name: h.Name, Status: h.Status, VerificationStatus: h.VerificationStatus,
		Created: h.Created.Format(time.RFC3339Nano), CreatedBy: fakeAdminID, LastUpdated: h.LastUpdated.Format(time.RFC3339Nano),
		Events:  &eventsObj{Type: "EVENT_TYPE", Items: slices.Clone(h.Events)},
		Channel: &channel{Type: "HTTP", Version: "1.0.0", Config: cfg},
		Links:   map[string]any{"self": map[string]any{"href": self}},
	}
}

func (s *Server) listEventHooks(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	s.mu.Lock()
	out := make([]eventHookJSON, 0, len(s.hooks))
	for _, id := range sortedIDs(s.hooks) {
		out = append(out, s.hooks[id].toJSON(r))
	}
	s.mu.Unlock()
	// Okta documents no paging for this list; a limit is honoured as a plain cap.
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 && l < len(out) {
		out = out[:l]
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

func (s *Server) getEventHook(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	s.mu.Lock()
	h, ok := s.hooks[r.PathValue("hook")]
	var body eventHookJSON
	if ok {
		body = h.toJSON(r)
	}
	s.mu.Unlock()
	if !ok {
		return s.hookNotFound(w, r)
	}
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

func (s *Server) hookNotFound(w http.ResponseWriter, r *http.Request) int {
	writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("hook")+" (EventHook)", s.errorID())
	return http.StatusNotFound
}

// validationError answers 400 E0000001 with one cause, as Okta reports API validation failures.
func (s *Server) validationError(w http.ResponseWriter, cause string) int {
	writeJSON(w, http.StatusBadRequest, oktaError{
		ErrorCode: "E0000001", ErrorSummary: "Api validation failed: eventHook", ErrorLink: "E0000001",
		ErrorID: s.errorID(), ErrorCauses: []map[string]string{{"errorSummary": cause}},
	})
	return http.StatusBadRequest
}

// parseHook decodes and validates a create or replace body into h (id, status and times untouched).
// It returns a cause for a 400, "" when valid.
func parseHook(r *http.Request, h *EventHook) string {
	var in eventHookJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&in); err != nil {
		return "The request body was not well-formed."
	}
	if in.Name == "" {
		return "name: The field cannot be left blank."
	}
	if in.Events == nil || in.Events.Type != "EVENT_TYPE" {
		return "events.type: must be EVENT_TYPE."
	}
	if len(in.Events.Items) == 0 {
		return "events.items: The field cannot be left blank."
	}
	for _, t := range in.Events.Items {
		if !slices.Contains(EligibleEventTypes, t) {
			return fmt.Sprintf("events.items: Invalid event type %q: not an event hook eligible event type.", t)
		}
	}
	if in.Channel == nil || in.Channel.Config == nil {
		return "channel: The field cannot be left blank."
	}
	if in.Channel.Type != "HTTP" {
		return "channel.type: must be HTTP."
	}
	if in.Channel.Version == "" {
		return "channel.version: The field cannot be left blank."
	}
	u, err := url.Parse(in.Channel.Config.URI)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return "channel.config.uri: must be a valid HTTPS URL."
	}
	if a := in.Channel.Config.AuthScheme; a != nil {
		if a.Type != "HEADER" {
			return "channel.config.authScheme.type: must be HEADER."
		}
		if a.Key == "" || a.Value == "" {
			return "channel.config.authScheme: key and value are required."
		}
	}
	for _, hd := range in.Channel.Config.Headers {
		if hd.Key == "" {
			return "channel.config.headers: key is required."
		}
	}
	h.Name = in.Name
	h.Events = slices.Clone(in.Events.Items)
	h.URI = in.Channel.Config.URI
	h.Headers = nil
	for _, hd := range in.Channel.Config.Headers {
		h.Headers = append(h.Headers, EventHookHeader(hd))
	}
	h.AuthType, h.AuthKey, h.AuthValue = "", "", ""
	if a := in.Channel.Config.AuthScheme; a != nil {
		h.AuthType, h.AuthKey, h.AuthValue = a.Type, a.Key, a.Value
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) createEventHook(w http.ResponseWriter, r *http.Request, now time.Time) int {
	var h EventHook
	if cause := parseHook(r, &h); cause != "" {
		return s.validationError(w, cause)
	}
	s.mu.Lock()
	if len(s.hooks) >= maxEventHooks {
		s.mu.Unlock()
		return s.validationError(w, fmt.Sprintf("An org may have at most %d event hooks.", maxEventHooks))
	}
	s.seq++
	h.ID = fmt.Sprintf("who%017d", s.seq)
	h.Status, h.VerificationStatus = HookActive, HookUnverified
	h.Created, h.LastUpdated = now, now
	s.hooks[h.ID] = &h
	body := h.toJSON(r)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

func (s *Server) updateEventHook(w http.ResponseWriter, r *http.Request, now time.Time) int {
	var next EventHook
	if cause := parseHook(r, &next); cause != "" {
		return s.validationError(w, cause)
	}
	s.mu.Lock()
	h, ok := s.hooks[r.PathValue("hook")]
	if !ok {
		s.mu.Unlock()
		return s.hookNotFound(w, r)
	}
	channelChanged := h.URI != next.URI || !slices.Equal(h.Headers, next.Headers) ||
		h.AuthType != next.AuthType || h.AuthKey != next.AuthKey || h.AuthValue != next.AuthValue
	h.Name, h.Events, h.URI, h.Headers = next.Name, next.Events, next.URI, next.Headers
	h.AuthType, h.AuthKey, h.AuthValue = next.AuthType, next.AuthKey, next.AuthValue
	if channelChanged {
		h.VerificationStatus = HookUnverified
	}
	h.LastUpdated = now
	body := h.toJSON(r)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

func (s *Server) deleteEventHook(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	s.mu.Lock()
	h, ok := s.hooks[r.PathValue("hook")]
	if ok && h.Status == HookActive {
		s.mu.Unlock()
		return s.validationError(w, "Cannot delete an ACTIVE event hook; deactivate it first.")
	}
	delete(s.hooks, r.PathValue("hook"))
	s.mu.Unlock()
	if !ok {
		return s.hookNotFound(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func (s *Server) eventHookLifecycle(w http.ResponseWriter, r *http.Request, now time.Time) int {
	id, op := r.PathValue("hook"), r.PathValue("op")
	s.mu.Lock()
	h, ok := s.hooks[id]
	var snap EventHook
	if ok {
		snap = *h
	}
	s.mu.Unlock()
	if !ok {
		return s.hookNotFound(w, r)
	}
	switch op {
	case "activate", "deactivate":
		s.mu.Lock()
		if op == "activate" {
			h.Status = HookActive
		} else {
			h.Status = HookInactive
		}
		h.LastUpdated = now
		body := h.toJSON(r)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, body)
		return http.StatusOK
	case "verify":
		// The outbound call runs without the lock: the hook may take up to 3 s per attempt.
		attempts, cause := verifyHook(r.Context(), snap)
		s.mu.Lock()
		h.Verifications += attempts
		if cause == "" {
			h.VerificationStatus, h.LastUpdated = HookVerified, time.Now().UTC()
		}
		body := h.toJSON(r)
		s.mu.Unlock()
		if cause != "" {
			writeJSON(w, http.StatusBadRequest, oktaError{
				ErrorCode: "E0000001", ErrorSummary: "Api validation failed: Verification failed", ErrorLink: "E0000001",
				ErrorID: s.errorID(), ErrorCauses: []map[string]string{{"errorSummary": cause}},
			})
			return http.StatusBadRequest
		}
		writeJSON(w, http.StatusOK, body)
		return http.StatusOK
	}
	return s.notFound(w, r, now)
}

// verifyHook sends Okta's verification GET (one retry after a timeout or an error answer) and
// returns the attempts made and, on failure, a cause without any header value.
func verifyHook(ctx context.Context, h EventHook) (int, string) {
	hc := &http.Client{Timeout: verifyTimeout}
	var cause string
	for attempt := 1; attempt <= 2; attempt++ {
		cause = verifyOnce(ctx, hc, h)
		if cause == "" {
			return attempt, ""
		}
	}
	return 2, cause
}

func verifyOnce(ctx context.Context, hc *http.Client, h EventHook) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	challenge := hex.EncodeToString(b[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URI, nil)
	if err != nil {
		return "The event hook URI is not valid."
	}
	req.Header.Set("X-Okta-Verification-Challenge", challenge)
	req.Header.Set("Accept", "application/json")
	for _, hd := range h.Headers {
		req.Header.Set(hd.Key, hd.Value)
	}
	if h.AuthType == "HEADER" {
		req.Header.Set(h.AuthKey, h.AuthValue)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "The event hook endpoint did not answer within 3 seconds or could not be reached."
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("The event hook endpoint answered HTTP %d to the verification request.", resp.StatusCode)
	}
	var v struct {
		Verification string `json:"verification"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), &v); err != nil || v.Verification != challenge {
		return "The event hook endpoint did not echo the verification challenge."
	}
	return ""
}
