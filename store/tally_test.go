package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
)

// A tallied load writes the sums of the days it alone filled and leaves
// the others to the refresh; either way the roll-ups end as the lines
// give them.
func TestSalesTally(t *testing.T) {
	ctx := context.Background()
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	db := open(t)
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	sameAsRaw := func(step string) {
		t.Helper()
		salesMatchLines(t, db, moscow, step)
	}
	// load loads lines as one file from its first line, in batches of 50
	// lines, and returns the days the tally wrote and those the refresh
	// after it recomputed.
	load := func(lines []store.PurchaseLine) (tallied, refreshed int) {
		t.Helper()
		tally, err := db.BeginTally(ctx)
		if err != nil || tally == nil {
			t.Fatalf("tally %v, %v", tally, err)
		}
		for len(lines) > 0 {
			n := min(50, len(lines))
			b, err := db.BeginBatch(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			b.SetTally(tally)
			for _, l := range lines[:n] {
				if err := b.QueuePurchaseLine(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			lines = lines[n:]
		}
		if tallied, err = db.ApplyTally(ctx, tally); err != nil {
			t.Fatal(err)
		}
		if refreshed, err = db.RefreshRollups(ctx, moscow); err != nil {
			t.Fatal(err)
		}
		return tallied, refreshed
	}
	// receipts makes the lines of receipts numbered from first to last, a
	// receipt every 37 minutes from at: one to three lines each, some in
	// two categories, some returns, some near midnight in Moscow.
	receipts := func(at time.Time, first, last int) []store.PurchaseLine {
		var out []store.PurchaseLine
		for r := first; r <= last; r++ {
			when := at.Add(time.Duration(r-first) * 37 * time.Minute)
			for ln := 1; ln <= 1+r%3; ln++ {
				qty := int64(1000)
				if r%11 == 0 {
					qty = -1000
				}
				out = append(out, store.PurchaseLine{StoreCode: fmt.Sprint(1 + r%2), Receipt: fmt.Sprintf("R%06d", r), Line: ln,
					At: when, Category: []string{"Диваны", "Свет"}[(r+ln)%2], QtyMilli: qty, SumKop: qty * int64(1+r%50)})
			}
		}
		return out
	}
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

	// Days that held nothing, receipts in order: the tally writes them all.
	if tallied, refreshed := load(receipts(oct, 1, 400)); tallied < 10 || refreshed != 0 {
		t.Fatalf("a first load: %d days tallied, %d refreshed; want all tallied", tallied, refreshed)
	}
	sameAsRaw("a first load")

	// Receipts out of order: the days of those that come back are left to
	// the refresh.
	lines := receipts(oct.AddDate(0, 0, 12), 1000, 1200)
	back := receipts(oct.AddDate(0, 0, 12).Add(52*37*time.Minute), 1052, 1052) // three lines
	var mixed []store.PurchaseLine
	for _, l := range lines {
		if l.Receipt == back[0].Receipt && l.Line > 1 {
			continue // its other lines come later
		}
		mixed = append(mixed, l)
	}
	mixed = append(mixed, back[1:]...)
	if tallied, refreshed := load(mixed); tallied == 0 || refreshed == 0 {
		t.Fatalf("receipts out of order: %d days tallied, %d refreshed; want some of each", tallied, refreshed)
	}
	sameAsRaw("receipts out of order")

	// Days that held lines, and lines loaded already: the batches add to
	// them or mark them, as without a tally.
	if tallied, _ := load(receipts(oct.AddDate(0, 0, 3), 401, 420)); tallied != 0 {
		t.Fatalf("days held before: %d days tallied, want none", tallied)
	}
	sameAsRaw("days held before")
	if tallied, _ := load(receipts(oct, 1, 30)); tallied != 0 {
		t.Fatalf("lines loaded before: %d days tallied, want none", tallied)
	}
	sameAsRaw("lines loaded before")

	// November, into days never loaded, across the end of the month.
	if tallied, refreshed := load(receipts(time.Date(2026, 10, 30, 20, 0, 0, 0, time.UTC), 2000, 2300)); tallied == 0 {
		t.Fatalf("into November: %d days tallied, %d refreshed", tallied, refreshed)
	}
	sameAsRaw("into November")
}
