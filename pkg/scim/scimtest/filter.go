package scimtest

import (
	"encoding/json"
	"errors"
	"strings"
)

// clause is one `attr eq "value"` term of a filter.
type clause struct {
	attr  string // canonical spelling, e.g. "userName"
	value string
}

var errFilter = errors.New("invalid filter")

// canonical attribute names per resource. SCIM says attribute names are case-insensitive
// (RFC 7644 §3.4.2.2); AWS does not say, so we accept any case.
var userAttrs = map[string]string{
	"username":     "userName",
	"externalid":   "externalId",
	"groups.value": "groups.value",
	"id":           "id",
}

var groupAttrs = map[string]string{
	"displayname": "displayName",
	"externalid":  "externalId",
	"id":          "id",
	// AWS's text says "member", its examples and real clients use "members".
	"members": "members",
	"member":  "members",
	// The groups of one user: AWS lists (members.value) among ListGroups' supported filters.
	"members.value": "members.value",
}

// parseFilter parses AWS's filter subset: one or more `attr eq "json string"` terms joined by
// `and`. Anything else (other operators, or, not, parentheses, unquoted or empty values) is an
// error, which the handler turns into a 400 like AWS's.
func parseFilter(s string, attrs map[string]string) ([]clause, error) {
	var out []clause
	rest := strings.TrimSpace(s)
	if rest == "" {
		return nil, errFilter
	}
	for {
		attr, after, ok := cutWord(rest)
		if !ok {
			return nil, errFilter
		}
		canon, known := attrs[strings.ToLower(attr)]
		if !known {
			return nil, errFilter
		}
		op, after, ok := cutWord(after)
		if !ok || !strings.EqualFold(op, "eq") {
			return nil, errFilter
		}
		after = strings.TrimLeft(after, " ")
		end := jsonStringEnd(after)
		if end < 0 {
			return nil, errFilter
		}
		var v string
		if err := json.Unmarshal([]byte(after[:end]), &v); err != nil {
			return nil, errFilter
		}
		// AWS rejects an empty value (seen: `members eq ""` → 400).
		if v == "" {
			return nil, errFilter
		}
		out = append(out, clause{attr: canon, value: v})
		rest = strings.TrimSpace(after[end:])
		if rest == "" {
			return out, nil
		}
		conj, after2, ok := cutWord(rest)
		if !ok || !strings.EqualFold(conj, "and") {
			return nil, errFilter
		}
		rest = strings.TrimLeft(after2, " ")
	}
}

// cutWord splits off the first space-delimited word.
func cutWord(s string) (word, rest string, ok bool) {
	s = strings.TrimLeft(s, " ")
	i := strings.IndexByte(s, ' ')
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// jsonStringEnd returns the index just past the JSON string literal at the start of s, or -1.
func jsonStringEnd(s string) int {
	if !strings.HasPrefix(s, `"`) {
		return -1
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// userFilter is a parsed GET /Users filter.
type userFilter struct {
	userName, externalID, groupID, id           string
	hasUserName, hasExternalID, hasGroup, hasID bool
}

// parseUserFilter accepts AWS's documented ListUsers combinations: userName, externalId,
// groups.value, or id alone. (AWS also has "id and manager", which we do not model.)
func parseUserFilter(s string) (userFilter, error) {
	cs, err := parseFilter(s, userAttrs)
	if err != nil || len(cs) != 1 {
		return userFilter{}, errFilter
	}
	var f userFilter
	switch c := cs[0]; c.attr {
	case "userName":
		f.userName, f.hasUserName = c.value, true
	case "externalId":
		f.externalID, f.hasExternalID = c.value, true
	case "groups.value":
		f.groupID, f.hasGroup = c.value, true
	case "id":
		f.id, f.hasID = c.value, true
	}
	return f, nil
}

// groupFilter is a parsed GET /Groups filter.
type groupFilter struct {
	displayName, externalID, id, member, memberValue                string
	hasDisplayName, hasExternalID, hasID, hasMember, hasMemberValue bool
}

// parseGroupFilter accepts AWS's documented ListGroups combinations: displayName, externalId,
// members.value or id alone, and "id and members" in either order.
func parseGroupFilter(s string) (groupFilter, error) {
	cs, err := parseFilter(s, groupAttrs)
	if err != nil {
		return groupFilter{}, err
	}
	var f groupFilter
	switch len(cs) {
	case 1:
		switch c := cs[0]; c.attr {
		case "displayName":
			f.displayName, f.hasDisplayName = c.value, true
		case "externalId":
			f.externalID, f.hasExternalID = c.value, true
		case "id":
			f.id, f.hasID = c.value, true
		case "members.value":
			f.memberValue, f.hasMemberValue = c.value, true
		default: // members alone is not a documented combination
			return groupFilter{}, errFilter
		}
	case 2:
		for _, c := range cs {
			switch c.attr {
			case "id":
				f.id, f.hasID = c.value, true
			case "members":
				f.member, f.hasMember = c.value, true
			}
		}
		if !f.hasID || !f.hasMember {
			return groupFilter{}, errFilter
		}
	default:
		return groupFilter{}, errFilter
	}
	return f, nil
}
