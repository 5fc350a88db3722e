package scimtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Request is what a hold matches on: the route key and the request body.
type Request struct {
	Route string // "PATCH /Groups/{id}", ...
	ID    string // the resource id of the route, "" for collections
	Body  []byte
}

// MemberPatch reports whether the request is a PATCH /Groups/{id} whose operations include op
// ("add" or "remove", any case) on members with userID among the values.
func (q Request) MemberPatch(op, userID string) bool {
	if q.Route != "PATCH /Groups/{id}" {
		return false
	}
	var req patchReq
	if json.Unmarshal(q.Body, &req) != nil {
		return false
	}
	for _, o := range req.Operations {
		if !strings.EqualFold(o.Op, op) || o.Path == nil || !strings.EqualFold(*o.Path, "members") {
			continue
		}
		var vals []struct {
			Value string `json:"value"`
		}
		if json.Unmarshal(o.Value, &vals) != nil {
			continue
		}
		for _, v := range vals {
			if v.Value == userID {
				return true
			}
		}
	}
	return false
}

// Held is one request stopped by [Server.Hold].
type Held struct {
	match   func(Request) bool
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

// Reached is closed when the matching request arrived and waits.
func (h *Held) Reached() <-chan struct{} { return h.reached }

// Release lets the held request (or, if none arrived yet, the next matching one) proceed.
func (h *Held) Release() { h.once.Do(func() { close(h.release) }) }

// Hold makes the first request that match accepts wait, authorized and past the rate limits and
// faults but before it is applied, until Release: a slow PATCH as a test scripts it, so another
// writer can act while it is in flight. A request whose client gives up while held is dropped
// unapplied, as AWS drops a request whose connection is closed before it is read.
func (s *Server) Hold(match func(Request) bool) *Held {
	h := &Held{match: match, reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	return h
}

// hold waits if a hold matches the request; false when the client gave up meanwhile.
func (s *Server) hold(r *http.Request, route, id string) bool {
	s.mu.Lock()
	armed := len(s.holds) > 0
	s.mu.Unlock()
	if !armed {
		return true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	q := Request{Route: route, ID: id, Body: body}
	s.mu.Lock()
	var h *Held
	for i, c := range s.holds {
		if c.match(q) {
			h = c
			s.holds = append(s.holds[:i:i], s.holds[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if h == nil {
		return true
	}
	close(h.reached)
	select {
	case <-h.release:
		return true
	case <-r.Context().Done():
		return false
	}
}
