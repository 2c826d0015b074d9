package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A batch that commits while a refresh is recomputing a local day from
// its snapshot must not add to that day, even when the line's own UTC day
// is not marked: the local day also covers a marked UTC day, and the
// refresh's write would erase the sums. It marks its day instead, and the
// next refresh counts it.
func TestRollSales_DuringRefreshOfTheLocalDay(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	load := func(at time.Time, receipts ...string) {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range receipts {
			if _, err := b.AddPurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: r, Line: 1, At: at,
				Category: "Диваны", QtyMilli: 1000, SumKop: 100}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	// 15:00 on 31 October in Moscow marks UTC 31 October; 01:00 on 31
	// October in Moscow is still UTC 30 October, which is not marked.
	load(time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC), "a")
	var once sync.Once
	rollDayHook = func() {
		once.Do(func() {
			var many []string
			for i := range 8 {
				many = append(many, fmt.Sprint("b", i))
			}
			load(time.Date(2026, 10, 30, 22, 0, 0, 0, time.UTC), many...)
		})
	}
	defer func() { rollDayHook = nil }()
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	rollDayHook = nil
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, moscow)
	sales, err := db.MonthlySales(ctx, oct, oct, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := db.SalesByCategory(ctx, Period{From: oct, To: oct.AddDate(0, 1, 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sales["2026-10"]; !slices.Equal(got, raw) || len(raw) != 1 || raw[0].Lines != 9 {
		t.Errorf("October: roll-up %+v, the lines give %+v (want 9 lines)", got, raw)
	}
}

// While a load runs, its writes reach the database file through the
// checkpoints run aside, although the writer's own automatic checkpoint
// waits for 20,000 pages; afterwards the writer checkpoints as before.
func TestLoadCache_CheckpointsAside(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "otklik.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	autocheckpoint := func() int {
		t.Helper()
		var n int
		if err := db.write.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	restore, err := db.LoadCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := autocheckpoint(); n != 20000 {
		t.Errorf("during a load: wal_autocheckpoint %d, want 20000", n)
	}
	before := size()
	b, err := db.BeginBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 { // about 250 pages, far below the backstop
		if err := b.QueuePurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: fmt.Sprint(i), Line: 1,
			At: time.Unix(1793361600, 0), Product: "Диван-кровать \"Марсель\"", Category: "Диваны", QtyMilli: 1000, SumKop: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); size() < before+500*1024; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 5 s after the load's commit (was %d): nothing checkpointed", size(), before)
		}
	}
	restore()
	if n := autocheckpoint(); n != 1000 {
		t.Errorf("after the load: wal_autocheckpoint %d, want 1000", n)
	}
}

// Every query that finds purchase lines by time goes through the hours of
// purchase_lines_hour, and retention lists the recent lines once instead
// of searching them for each card: a plan that scans the lines would go
// unnoticed on test data and take hours on a chain's.
func TestQueryPlans_PurchaseLinesByHour(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).Unix()
	for _, tt := range []struct {
		name  string
		query string
		args  []any
		once  bool // the lines are listed once, not searched for each outer row
	}{
		{"sales roll-up of a day", rollups[0].query, []any{from, to}, false},
		{"days of the lines, for a rebuild", rollups[0].daysQuery(), nil, false},
		{"plan: candidates", candidatesQuery, []any{from, to, from}, false},
		{"plan --dry-run: reasons", reasonsQuery, []any{from, to, from, from}, false},
		{"sales by category", salesByCategoryQuery, []any{from, to, "[]", "[]"}, false},
		{"retention of cards", retainCardsQuery, []any{from}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, "INDEX purchase_lines_hour") {
				t.Errorf("purchase lines not found by hour:\n%s", text)
			}
			for _, step := range plan {
				if step == "SCAN purchase_lines" || step == "SCAN p" {
					t.Errorf("a scan of the purchase lines:\n%s", text)
				}
			}
			if tt.once && strings.Contains(text, "CORRELATED") {
				t.Errorf("the recent lines are searched for each card:\n%s", text)
			}
		})
	}
}

// openTestDB opens a new database for a test of the package's insides,
// as open does for the outside tests.
func openTestDB(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
