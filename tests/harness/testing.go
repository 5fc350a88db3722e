package harness

import (
	"context"
	"testing"
	"time"
)

// MustBuildFunction is BuildFunction for tests.
func MustBuildFunction(t testing.TB, name string) string {
	t.Helper()
	path, err := BuildFunction(name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// MustBuild is Build for tests.
func MustBuild(t testing.TB, dir string) string {
	t.Helper()
	path, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// MustStartMoto starts moto_server for the test and stops it at cleanup. A missing moto_server
// fails the test: skipping would hide it in CI.
func MustStartMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := StartMoto()
	if err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto_server output (end):\n%s", tail(m.Output(), 4000))
		}
		_ = m.Close()
	})
	return m
}

// MustStartRuntime starts the bootstrap under the fake Runtime API and stops it at cleanup,
// logging the function's output if the test failed.
func MustStartRuntime(t testing.TB, bootstrap string, env map[string]string, opts ...RuntimeOption) *Runtime {
	t.Helper()
	r, err := StartRuntime(bootstrap, env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		if t.Failed() {
			t.Logf("%s output:\n%s", bootstrap, tail(r.Logs(), 8000))
		}
	})
	return r
}

// MustCreateFIFOQueue is Moto.CreateFIFOQueue for tests.
func MustCreateFIFOQueue(t testing.TB, m *Moto, name string, maxReceive int) Queue {
	t.Helper()
	q, err := m.CreateFIFOQueue(testContext(t), name, maxReceive)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// MustCreateSecret is Moto.CreateSecret for tests; it returns the ARN.
func MustCreateSecret(t testing.TB, m *Moto, name, value string) string {
	t.Helper()
	arn, err := m.CreateSecret(testContext(t), name, value)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// MustReceiveAll is Moto.ReceiveAll for tests.
func MustReceiveAll(t testing.TB, m *Moto, queueURL string) []Message {
	t.Helper()
	msgs, err := m.ReceiveAll(testContext(t), queueURL)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// MergeEnv returns one map with the entries of all, later ones winning.
func MergeEnv(all ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range all {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
