package oktahook_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
)

// Okta sends the shared secret itself, so a comparison whose time depends on how much of the
// presented value matches, or on its length, lets a caller recover the secret byte by byte.
// Timing cannot be asserted in a unit test; the structure that makes it constant can: both sides
// hashed to fixed-length digests, compared with subtle.ConstantTimeCompare, and the presented
// value used for nothing else. BenchmarkAuthCheck shows the resulting times.
func TestAuthorizedComparesDigestsInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "protocol.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range file.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Authorized" && fd.Recv == nil {
			fn = fd
		}
	}
	if fn == nil || len(fn.Type.Params.List) != 1 || len(fn.Type.Params.List[0].Names) != 2 {
		t.Fatal("want func Authorized(presented, configured string) bool in protocol.go")
	}
	presented := fn.Type.Params.List[0].Names[0].Name
	configured := fn.Type.Params.List[0].Names[1].Name

	hashed := map[string]bool{} // which parameters are hashed with sha256.Sum256
	var ctCompare, presentedElsewhere int
	var comparisons []string
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch {
			case selector(n.Fun, "sha256", "Sum256") && len(n.Args) == 1:
				// []byte(param)
				if conv, ok := n.Args[0].(*ast.CallExpr); ok && len(conv.Args) == 1 {
					if id, ok := conv.Args[0].(*ast.Ident); ok {
						hashed[id.Name] = true
						return false // this use of presented is the hashing itself
					}
				}
			case selector(n.Fun, "subtle", "ConstantTimeCompare"):
				ctCompare++
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ || n.Op == token.LSS || n.Op == token.GTR || n.Op == token.LEQ || n.Op == token.GEQ {
				comparisons = append(comparisons, exprString(n))
			}
		case *ast.Ident:
			if n.Name == presented {
				presentedElsewhere++
			}
		}
		return true
	})
	if !hashed[presented] || !hashed[configured] {
		t.Errorf("sha256.Sum256 hashes %v; want both %s and %s hashed", hashed, presented, configured)
	}
	if ctCompare != 1 {
		t.Errorf("subtle.ConstantTimeCompare called %d times, want 1", ctCompare)
	}
	if presentedElsewhere != 0 {
		t.Errorf("%s used %d times outside sha256.Sum256 (a length check or early return would leak)", presented, presentedElsewhere)
	}
	// Allowed: refusing an empty configured secret, and testing ConstantTimeCompare's result.
	for _, c := range comparisons {
		if c != configured+` == ""` && !strings.HasPrefix(c, "subtle.ConstantTimeCompare(") {
			t.Errorf("comparison %q in Authorized", c)
		}
	}
}

func selector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// exprString renders the small expressions Authorized compares (identifiers, literals, calls).
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.BasicLit:
		return e.Value
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		args := make([]string, len(e.Args))
		for i, a := range e.Args {
			args[i] = exprString(a)
		}
		return exprString(e.Fun) + "(" + strings.Join(args, ", ") + ")"
	case *ast.SliceExpr:
		return exprString(e.X) + "[:]"
	case *ast.BinaryExpr:
		return exprString(e.X) + " " + e.Op.String() + " " + exprString(e.Y)
	}
	return "?"
}

func TestAuthorizedNearMisses(t *testing.T) {
	const secret = "s3cr3t-0123456789abcdef0123456789abcdef"
	tests := []struct {
		presented, configured string
		want                  bool
	}{
		{secret, secret, true},
		{"", "", false}, // an unset secret never opens the hook
		{"x", "", false},
		{"", secret, false},
		{secret[:len(secret)-1], secret, false},
		{secret + "\x00", secret, false},
		{secret + " ", secret, false},
		{"S" + secret[1:], secret, false},
		{secret[:len(secret)-1] + "g", secret, false},
		{strings.Repeat(secret, 30000), secret, false}, // 1.1 MB
	}
	for _, tt := range tests {
		if got := oktahook.Authorized(tt.presented, tt.configured); got != tt.want {
			t.Errorf("Authorized(%.20q…, %.20q) = %v, want %v", tt.presented, tt.configured, got, tt.want)
		}
	}
}

var authSink bool

// BenchmarkAuthCheck times Authorized against wrong values that a byte-by-byte comparison would
// answer at different speeds: wrong first byte, wrong last byte, one byte short, one byte long.
// Within a secret length the four should be indistinguishable. The naive sub-benchmarks (plain
// ==) are the contrast: they show what a short-circuiting comparison looks like on this machine.
func BenchmarkAuthCheck(b *testing.B) {
	for _, size := range []int{40, 4096} {
		secret := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCD", size/40+1)[:size]
		wrong := map[string]string{
			"match":       secret,
			"first-byte":  "#" + secret[1:],
			"last-byte":   secret[:size-1] + "#",
			"shorter":     secret[:size-1],
			"longer":      secret + "#",
			"other-value": strings.Repeat("#", size),
		}
		for _, name := range []string{"match", "first-byte", "last-byte", "shorter", "longer", "other-value"} {
			presented := wrong[name]
			b.Run("Authorized/len="+itoa(size)+"/"+name, func(b *testing.B) {
				for b.Loop() {
					authSink = oktahook.Authorized(presented, secret)
				}
			})
		}
		for _, name := range []string{"first-byte", "last-byte"} {
			presented := wrong[name]
			b.Run("naive/len="+itoa(size)+"/"+name, func(b *testing.B) {
				for b.Loop() {
					authSink = naiveEqual(presented, secret)
				}
			})
		}
	}
}

//go:noinline
func naiveEqual(a, b string) bool { return a == b }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for ; n > 0; n /= 10 {
		i--
		buf[i] = byte('0' + n%10)
	}
	return string(buf[i:])
}
