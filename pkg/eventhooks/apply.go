package eventhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Desired is the hook okta-aws-sso-sync needs.
type Desired struct {
	// Name identifies our hook among the org's (the stack name by default, so two stacks in one
	// org keep two hooks). A hook with the URL but another name is ours too (made by hand).
	Name string
	// URL is the stack's HookUrl.
	URL string
	// AuthHeader is the header Okta sends AuthValue in (the stack's AUTH_HEADER).
	AuthHeader string
	// AuthValue is auth_token_for_okta from the secret; needed to create or update, not to check.
	AuthValue string
	// Headers are custom headers (x-api-key when API Gateway requires a key).
	Headers []Header
	// EventTypes is exactly what the hook must subscribe to (oktahook.HandledEventTypes).
	EventTypes []string
}

// Format shows the auth value redacted under every fmt verb.
func (d Desired) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "{Name:%s URL:%s AuthHeader:%s AuthValue:%s Headers:%v EventTypes:%v}",
		d.Name, d.URL, d.AuthHeader, redacted(d.AuthValue), d.Headers, d.EventTypes)
}

// hook is the full object to send: PUT replaces, so nothing is left out.
func (d Desired) hook() Hook {
	return Hook{
		Name:   d.Name,
		Events: Events{Type: EventTypeSubscribe, Items: slices.Clone(d.EventTypes)},
		Channel: Channel{Type: ChannelHTTP, Version: ChannelVersion, Config: ChannelConfig{
			URI:        d.URL,
			Headers:    slices.Clone(d.Headers),
			AuthScheme: &AuthScheme{Type: AuthHeaderScheme, Key: d.AuthHeader, Value: d.AuthValue},
		}},
	}
}

func (d Desired) validate(needSecret bool) error {
	var missing []string
	if d.Name == "" {
		missing = append(missing, "name")
	}
	if d.URL == "" {
		missing = append(missing, "hook URL")
	}
	if d.AuthHeader == "" {
		missing = append(missing, "auth header name")
	}
	if needSecret && d.AuthValue == "" {
		missing = append(missing, "auth header value (auth_token_for_okta)")
	}
	if len(d.EventTypes) == 0 {
		missing = append(missing, "event types")
	}
	if len(missing) > 0 {
		return fmt.Errorf("event hook: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Problem is one way a hook differs from Desired.
type Problem struct {
	// Config problems need a PUT; the others (status, verification) a lifecycle call.
	Config bool
	Text   string
}

func (p Problem) String() string { return p.Text }

// Find returns our hook among hooks: the one named d.Name, else the one with d.URL. More than one
// match is an error: which to keep is the operator's call.
func Find(hooks []Hook, d Desired) (*Hook, error) {
	pick := func(match func(Hook) bool, what string) (*Hook, error) {
		var found []Hook
		for _, h := range hooks {
			if match(h) {
				found = append(found, h)
			}
		}
		switch len(found) {
		case 0:
			return nil, nil
		case 1:
			return &found[0], nil
		}
		ids := make([]string, len(found))
		for i, h := range found {
			ids[i] = h.ID
		}
		return nil, fmt.Errorf("%d event hooks %s (%s): delete the extra ones in Okta (Workflow > Event Hooks), then run again",
			len(found), what, strings.Join(ids, ", "))
	}
	h, err := pick(func(h Hook) bool { return h.Name == d.Name }, fmt.Sprintf("are named %q", d.Name))
	if h != nil || err != nil {
		return h, err
	}
	return pick(func(h Hook) bool { return h.Channel.Config.URI == d.URL }, "have the URL "+d.URL)
}

// Diff lists what h lacks compared with d. It never names a header value.
func Diff(h Hook, d Desired) []Problem {
	var out []Problem
	cfg := func(format string, args ...any) {
		out = append(out, Problem{Config: true, Text: fmt.Sprintf(format, args...)})
	}
	if h.Name != d.Name {
		cfg("name is %q, want %q", h.Name, d.Name)
	}
	if h.Events.Type != EventTypeSubscribe {
		cfg("events.type is %q, want %s", h.Events.Type, EventTypeSubscribe)
	}
	for _, t := range d.EventTypes {
		if !slices.Contains(h.Events.Items, t) {
			cfg("missing event type %s", t)
		}
	}
	for _, t := range h.Events.Items {
		if !slices.Contains(d.EventTypes, t) {
			cfg("extra event type %s (not handled by okta-aws-sso-sync)", t)
		}
	}
	if h.Channel.Type != ChannelHTTP {
		cfg("channel.type is %q, want %s", h.Channel.Type, ChannelHTTP)
	}
	if h.Channel.Config.URI != d.URL {
		cfg("wrong URL: %s, want %s", h.Channel.Config.URI, d.URL)
	}
	switch a := h.Channel.Config.AuthScheme; {
	case a == nil || a.Key == "":
		cfg("no auth header, want %s", d.AuthHeader)
	case a.Type != AuthHeaderScheme:
		cfg("authScheme.type is %q, want %s", a.Type, AuthHeaderScheme)
	case !strings.EqualFold(a.Key, d.AuthHeader):
		cfg("wrong auth header name: %s, want %s", a.Key, d.AuthHeader)
	}
	for _, want := range d.Headers {
		i := slices.IndexFunc(h.Channel.Config.Headers, func(x Header) bool { return strings.EqualFold(x.Key, want.Key) })
		switch {
		case i < 0:
			cfg("missing header %s", want.Key)
		case h.Channel.Config.Headers[i].Value != want.Value:
			// Okta returns custom header values; compared, never printed.
			cfg("header %s has another value than wanted", want.Key)
		}
	}
	for _, got := range h.Channel.Config.Headers {
		if !slices.ContainsFunc(d.Headers, func(x Header) bool { return strings.EqualFold(x.Key, got.Key) }) {
			cfg("extra header %s", got.Key)
		}
	}
	if h.Status != StatusActive {
		out = append(out, Problem{Text: fmt.Sprintf("not ACTIVE (status %s)", h.Status)})
	}
	if h.VerificationStatus != StatusVerified {
		out = append(out, Problem{Text: fmt.Sprintf("not VERIFIED (verificationStatus %s)", h.VerificationStatus)})
	}
	return out
}

// ErrNoHook: Check found no hook with the name or the URL.
var ErrNoHook = errors.New("no event hook")

// Check returns our hook and what it lacks; ErrNoHook when there is none. Read-only.
func Check(ctx context.Context, c *Client, d Desired) (*Hook, []Problem, error) {
	if err := d.validate(false); err != nil {
		return nil, nil, err
	}
	hooks, err := c.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	h, err := Find(hooks, d)
	if err != nil {
		return nil, nil, err
	}
	if h == nil {
		return nil, nil, fmt.Errorf("%w named %q or with URL %s", ErrNoHook, d.Name, d.URL)
	}
	return h, Diff(*h, d), nil
}

// Options of Apply.
type Options struct {
	// Rotate sends the auth value (and headers) again although nothing readable differs: Okta never
	// returns the auth value, so a rotated auth_token_for_okta is not visible in a Diff.
	Rotate bool
	// Log receives one line per step taken (never a secret); nil discards.
	Log func(string)
}

// Result says what Apply did.
type Result struct {
	Hook                                  Hook
	Created, Updated, Activated, Verified bool
	// Fixed are the config problems the update repaired.
	Fixed []Problem
}

// Changed reports whether Apply changed anything in Okta.
func (r Result) Changed() bool { return r.Created || r.Updated || r.Activated || r.Verified }

// Apply makes the org's hook equal to d: create it when there is none, replace it when its config
// differs (or opts.Rotate), activate it when INACTIVE and verify it when UNVERIFIED. A hook that
// already matches and is ACTIVE and VERIFIED is left alone (no write at all).
func Apply(ctx context.Context, c *Client, d Desired, opts Options) (Result, error) {
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			opts.Log(fmt.Sprintf(format, args...))
		}
	}
	var res Result
	if err := d.validate(true); err != nil {
		return res, err
	}
	hooks, err := c.List(ctx)
	if err != nil {
		return res, err
	}
	found, err := Find(hooks, d)
	if err != nil {
		return res, err
	}
	var h Hook
	if found == nil {
		h, err = c.Create(ctx, d.hook())
		if err != nil {
			return res, err
		}
		res.Created = true
		logf("created event hook %q (id %s) for %s with %d event types", h.Name, h.ID, d.URL, len(d.EventTypes))
	} else {
		h = *found
		for _, p := range Diff(h, d) {
			if p.Config {
				res.Fixed = append(res.Fixed, p)
			}
		}
		if len(res.Fixed) > 0 || opts.Rotate {
			h, err = c.Update(ctx, found.ID, d.hook())
			if err != nil {
				return res, err
			}
			res.Updated = true
			for _, p := range res.Fixed {
				logf("updated event hook %q (id %s): fixed %s", h.Name, h.ID, p)
			}
			if opts.Rotate {
				logf("updated event hook %q (id %s): auth header value sent again", h.Name, h.ID)
			}
		}
	}
	if h.Status != StatusActive {
		h, err = c.Activate(ctx, h.ID)
		if err != nil {
			return res, err
		}
		res.Activated = true
		logf("activated event hook %q (id %s)", h.Name, h.ID)
	}
	if h.VerificationStatus != StatusVerified {
		h, err = c.Verify(ctx, h.ID)
		if err != nil {
			return res, fmt.Errorf("%w\nthe hook at %s did not answer Okta's verification: is the stack deployed, and do %s and the API key match the secret and the stack?",
				err, d.URL, d.AuthHeader)
		}
		res.Verified = true
		logf("verified event hook %q (id %s): the hook answered Okta's challenge", h.Name, h.ID)
	}
	res.Hook = h
	if !res.Changed() {
		logf("event hook %q (id %s) is up to date: %d event types, ACTIVE, VERIFIED; nothing changed", h.Name, h.ID, len(d.EventTypes))
	}
	return res, nil
}
