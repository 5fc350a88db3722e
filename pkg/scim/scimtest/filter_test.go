package scimtest

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// quote is JSON string quoting without HTML escaping, as pkg/scim sends filter values.
func quote(v string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

// FuzzParseFilter: any non-empty valid UTF-8 value, JSON-quoted, parses back to itself, also
// when followed by an `and` term; and no input makes the parser panic.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`o"brien@example.com`, `back\slash`, "zoë@example.com", `a" and id eq "b`, "x\u2028y", "\t", "<&>", `\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = parseFilter(v, userAttrs) // arbitrary input: must not panic
		if v == "" || !utf8.ValidString(v) {
			return
		}
		uf, err := parseUserFilter("userName eq " + quote(v))
		if err != nil || uf.userName != v {
			t.Fatalf("userName %q: got %q, %v", v, uf.userName, err)
		}
		gf, err := parseGroupFilter("id eq " + quote(v) + " and members eq " + quote(v+"u"))
		if err != nil || gf.id != v || gf.member != v+"u" {
			t.Fatalf("id/members %q: got %+v, %v", v, gf, err)
		}
	})
}
