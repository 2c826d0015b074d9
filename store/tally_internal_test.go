package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A refresh that read a day's lines before a tally wrote the day (with
// lines loaded since) must not write its older sums over the tally's: the
// tally cleared the marks the refresh read, and the refresh's write checks
// them.
func TestApplyTally_DuringRefreshOfTheDay(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	tally, err := db.BeginTally(ctx)
	if err != nil || tally == nil {
		t.Fatalf("tally %v, %v", tally, err)
	}
	at := time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC)
	load := func(first, n int) {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		b.SetTally(tally)
		for i := first; i < first+n; i++ {
			if err := b.QueuePurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: fmt.Sprintf("r%03d", i), Line: 1,
				At: at, Category: "Диваны", QtyMilli: 1000, SumKop: 100}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	load(0, 10)
	var once sync.Once
	rollDayHook = func(day string) {
		if day != "2026-10-20" {
			return
		}
		once.Do(func() {
			load(10, 5)
			if days, err := db.ApplyTally(ctx, tally); err != nil || days != 1 {
				t.Errorf("apply: %d days, %v; want 1", days, err)
			}
		})
	}
	defer func() { rollDayHook = nil }()
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	rollDayHook = nil
	octoberHolds(t, db, moscow, 15)
}
