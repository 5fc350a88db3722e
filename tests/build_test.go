package tests

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// TestMakeBuild runs the README's `make build` and checks that it leaves the three bootstraps the
// template deploys: static linux/arm64 executables named bootstrap (provided.al2023).
func TestMakeBuild(t *testing.T) {
	t.Parallel()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("make", "build", "BUILD_DIR="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, b)
	}
	for _, fn := range []string{"hook", "sync", "reconcile"} {
		path := filepath.Join(out, fn, "bootstrap")
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s: machine %v, want arm64 (the template's Architectures)", fn, f.Machine)
		}
		if f.Type != elf.ET_EXEC {
			t.Errorf("%s: ELF type %v, want a static executable (CGO_ENABLED=0)", fn, f.Type)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: has a dynamic loader; provided.al2023 needs a static binary", fn)
			}
		}
		f.Close()
	}
}
