package syncer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
)

// startMoto runs moto_server on a free localhost port for the test's lifetime (as
// pkg/ledger/moto_test.go does; moto is part of the test toolchain, so a missing moto_server
// fails the test).
func startMoto(t *testing.T) *dynamodb.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("moto_server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server (pip install 'moto[server]'): %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if res, err := http.Get(endpoint + "/moto-api/"); err == nil {
			res.Body.Close()
			return dynamodb.New(dynamodb.Options{
				BaseEndpoint: aws.String(endpoint),
				Region:       "us-east-1",
				Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
			})
		}
	}
	t.Fatal("moto_server did not start")
	return nil
}

// The single-writer interleaving tests on the DynamoDB ledger (ledger.Table, its conditions
// evaluated by moto), one table per scenario.
func TestWriterInterleavingsOnDynamoDB(t *testing.T) {
	db := startMoto(t)
	table := func(name string) ledger.Ledger {
		t.Helper()
		if err := ledger.CreateTable(context.Background(), db, name); err != nil {
			t.Fatal(err)
		}
		return ledger.New(db, name)
	}
	t.Run("path6", func(t *testing.T) { addRacingDeactivation(t, table("writer-path6")) })
	seeds := uint64(25)
	if testing.Short() {
		seeds = 8
	}
	for seed := range seeds {
		runInterleaving(t, seed, table(fmt.Sprintf("writer-seed-%d", seed)))
	}
}
