package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

func TestTableAgainstMoto(t *testing.T) {
	ctx := context.Background()
	db := dynamodb.NewFromConfig(harness.MustStartMoto(t).AWSConfig())
	if err := CreateTable(ctx, db, "sync-state"); err != nil {
		t.Fatal(err)
	}
	tab := New(db, "sync-state")
	var recs []Record
	var keys []Key
	for i := range 150 {
		k := Key{GroupID: "00gA", UserID: fmt.Sprintf("00u%03d", i)}
		keys = append(keys, k)
		recs = append(recs, Record{Key: k, Mark: membership.MarkOf(membership.Change{EventUUID: fmt.Sprint("e", i), Published: t0, Kind: membership.KindAdd})})
	}
	if err := tab.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// An older remove loses the conditional write; a newer one wins.
	k0, k1 := keys[0], keys[1]
	if err := tab.Put(ctx, []Record{
		{Key: k0, Mark: membership.Mark{Published: t0.Add(-time.Second), Kind: membership.KindRemove, EventUUID: "old"}},
		{Key: k1, Mark: membership.Mark{Published: t0.Add(time.Second), Kind: membership.KindRemove, EventUUID: "new"}},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := tab.Get(ctx, append(keys, Key{GroupID: "00gA", UserID: "absent"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 {
		t.Fatalf("got %d entries, want 150", len(got))
	}
	if e := got[k0]; e.Kind != membership.KindAdd || !e.Published.Equal(t0) {
		t.Fatalf("k0 = %+v, want the add kept", e)
	}
	if e := got[k1]; e.Kind != membership.KindRemove || e.EventUUID != "new" {
		t.Fatalf("k1 = %+v, want the newer remove", e)
	}
	if v := membership.Decide(membership.Change{Published: t0, Kind: membership.KindAdd}, got[keys[5]]); v != membership.DecisionApplied {
		t.Fatalf("redelivered change: %v, want already applied", v)
	}
	// A group's name mark keeps the name it records.
	nk := NameKey("00gName")
	if err := tab.Put(ctx, []Record{NameRecord("00gName", "AWS_Admins_EU", t0, "e-name")}); err != nil {
		t.Fatal(err)
	}
	nm, err := tab.Get(ctx, []Key{nk})
	if err != nil || nm[nk].Name != "AWS_Admins_EU" || nm[nk].Kind != "name" {
		t.Fatalf("name mark = %+v, %v", nm[nk], err)
	}
	// Status marks keep their contract on DynamoDB's own conditional writes.
	checkStatusMarks(t, tab)
	// So do claims, and the single-writer protocol under random interleavings (claim.go): the
	// condition expressions are evaluated by the emulator, not by the fake's holds.
	checkClaims(t, tab)
	for seed := range uint64(80) {
		runModel(t, seed, tab, Key{GroupID: "00gM", UserID: fmt.Sprintf("00uM%03d", seed)})
	}
}
