package oktatest

import (
	"errors"
	"strings"
)

// cond is one `<attr> <op> "<value>"` term of a search or filter expression.
type cond struct{ attr, op, value string }

// Attributes and operators the fake understands. Okta supports more (gt/lt on dates, or,
// parentheses); a reader that needs them should fail here loudly rather than get wrong answers.
var (
	searchAttrs = map[string]map[string]bool{
		"profile.name":        {"eq": true, "sw": true},
		"profile.description": {"eq": true, "sw": true},
		"type":                {"eq": true},
		"id":                  {"eq": true},
	}
	filterAttrs = map[string]map[string]bool{
		"type": {"eq": true},
		"id":   {"eq": true},
	}
)

var errInvalidSearch = errors.New("invalid search criteria")

// parseExpr parses terms joined by `and`. Values are double-quoted with backslash escapes.
func parseExpr(s string, allowed map[string]map[string]bool) ([]cond, error) {
	var out []cond
	p := 0
	word := func() string {
		for p < len(s) && s[p] == ' ' {
			p++
		}
		start := p
		for p < len(s) && s[p] != ' ' {
			p++
		}
		return s[start:p]
	}
	for {
		attr := word()
		op := strings.ToLower(word())
		ops, ok := allowed[attr]
		if !ok || !ops[op] {
			return nil, errInvalidSearch
		}
		for p < len(s) && s[p] == ' ' {
			p++
		}
		if p >= len(s) || s[p] != '"' {
			return nil, errInvalidSearch
		}
		p++
		var v strings.Builder
		closed := false
		for p < len(s) {
			c := s[p]
			p++
			if c == '\\' && p < len(s) {
				v.WriteByte(s[p])
				p++
				continue
			}
			if c == '"' {
				closed = true
				break
			}
			v.WriteByte(c)
		}
		if !closed {
			return nil, errInvalidSearch
		}
		out = append(out, cond{attr: attr, op: op, value: v.String()})
		next := word()
		if next == "" {
			return out, nil
		}
		if !strings.EqualFold(next, "and") {
			return nil, errInvalidSearch
		}
	}
}

func matchAll(g *group, conds []cond) bool {
	for _, c := range conds {
		if !match(g, c) {
			return false
		}
	}
	return true
}

func match(g *group, c cond) bool {
	var v string
	switch c.attr {
	case "profile.name":
		v = g.name
	case "profile.description":
		v = g.description
	case "type":
		return g.typ == c.value
	case "id":
		return g.id == c.value
	}
	if c.op == "sw" {
		return hasPrefixFold(v, c.value)
	}
	return strings.EqualFold(v, c.value)
}
