package syncer

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// The single-writer interleaving tests on the DynamoDB ledger (ledger.Table, its conditions
// evaluated by moto), one table per scenario.
func TestWriterInterleavingsOnDynamoDB(t *testing.T) {
	db := dynamodb.NewFromConfig(harness.MustStartMoto(t).AWSConfig())
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
