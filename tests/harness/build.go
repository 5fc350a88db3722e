// Package harness runs the real function binaries the way AWS Lambda does: it builds them, serves
// the Lambda Runtime API they poll, and starts moto_server for SQS and Secrets Manager. The core
// needs no *testing.T, so dev commands (make invoke, make demo, make local) use it too; the
// Must* wrappers in testing.go are for tests.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// builds caches one build per package per process: every test of a run shares the binaries.
var builds = struct {
	sync.Mutex
	byPkg map[string]*build
}{byPkg: map[string]*build{}}

type build struct {
	once sync.Once
	path string
	err  error
}

// BuildFunction builds ./functions/<name> for the host (CGO_ENABLED=0, as the deployment build)
// and returns the path of its bootstrap. Built once per process.
func BuildFunction(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return "", fmt.Errorf("build function %q: not a function name", name)
	}
	return Build("functions/" + name)
}

// Build builds the main package in dir (relative to the module root, e.g. "functions/hook" or
// "tests/harness/testdata/echo") into <root>/.build/harness/<dir>/bootstrap, git-ignored and
// reused across runs. Built once per process.
func Build(dir string) (string, error) {
	builds.Lock()
	b, ok := builds.byPkg[dir]
	if !ok {
		b = &build{}
		builds.byPkg[dir] = b
	}
	builds.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(dir) })
	return b.path, b.err
}

func goBuild(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	outDir := filepath.Join(root, ".build", "harness", filepath.FromSlash(dir))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	// Build to a fresh name, then rename: test binaries of other packages may be building or
	// running the same bootstrap at the same time, and a rename never disturbs either.
	tmp, err := os.CreateTemp(outDir, "bootstrap-*")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./"+filepath.ToSlash(dir))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		_ = os.Remove(outDir) // only if empty: no litter from a bad package path
		return "", fmt.Errorf("go build ./%s: %w\n%s", dir, err, stderr.String())
	}
	bin := filepath.Join(outDir, "bootstrap")
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	return bin, nil
}

// ModuleRoot is the directory of the go.mod above the working directory (tests run in their
// package directory; dev commands anywhere in the repository).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above")
		}
		dir = parent
	}
}
