package etl_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/store"
	"github.com/otklik/otklik/store/storetest"
)

// An export repeating blocks of lines loaded before ends the database as
// one whose every line is parsed and looked up: the same lines, rejects,
// counts and roll-ups, and roll-ups that are what the lines give.
func TestIngester_ReexportPassesOverLoadedBlocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	first := filepath.Join(dir, "first", "purchases_month.csv")
	os.MkdirAll(filepath.Dir(first), 0o755)
	if _, err := sample.WriteBig(first, sample.Big{Lines: 8000, Now: now, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh.csv")
	added, err := sample.WriteBig(fresh, sample.Big{Lines: 500, Now: now, Seed: 4, From: 900000000})
	if err != nil {
		t.Fatal(err)
	}
	// The next night's export: the month from its 1500th line on, a line
	// changed, a bad line, and new lines.
	old, _ := os.ReadFile(first)
	lines := bytes.SplitAfter(old, []byte("\r\n"))
	next := append([]byte(nil), lines[0]...)
	for i, l := range lines[1500:] {
		switch i {
		case 2000:
			l = append(bytes.TrimSuffix(l, []byte("\r\n")), "x\r\n"...) // an extra column's value
		case 4000:
			next = append(next, "0009-bad;1;31.02.2026 10:00:00;0009;;Т-1;x;y;1;1,00;1,00;\r\n"...)
		}
		next = append(next, l...)
	}
	newer, _ := os.ReadFile(fresh)
	next = append(next, newer[bytes.Index(newer, []byte("\r\n"))+2:]...)
	second := filepath.Join(dir, "second", "purchases_month.csv")
	os.MkdirAll(filepath.Dir(second), 0o755)
	if err := os.WriteFile(second, next, 0o644); err != nil {
		t.Fatal(err)
	}

	var results []etl.Result
	var dumps []map[string]string
	for _, forget := range []bool{false, true} {
		in, db := newIngester(t)
		if _, err := in.IngestFiles(ctx, etl.FeedPurchases, []string{first}); err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite", db.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var blocks int
		raw.QueryRow(`SELECT count(*) FROM purchase_blocks`).Scan(&blocks)
		if blocks < 5 {
			t.Fatalf("%d blocks recorded for 8,000 lines", blocks)
		}
		if forget { // the reference: every line of the next export parsed
			if _, err := raw.Exec(`DELETE FROM purchase_blocks`); err != nil {
				t.Fatal(err)
			}
		}
		res, err := in.IngestFiles(ctx, etl.FeedPurchases, []string{second})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
		dumps = append(dumps, dumpTables(t, raw))
		// The roll-ups, kept up to date batch by batch, are what the
		// lines give.
		for _, month := range []time.Month{10, 11} {
			m := time.Date(2026, month, 1, 0, 0, 0, 0, in.Zone)
			sales, err := db.MonthlySales(ctx, m, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := db.SalesByCategory(ctx, store.Period{From: m, To: m.AddDate(0, 1, 0)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := sales[m.Format("2006-01")]; len(lines) == 0 || !slices.Equal(got, lines) {
				t.Errorf("%s, blocks forgotten %v: roll-up %+v, the lines give %+v", m.Format("2006-01"), forget, got, lines)
			}
		}
	}
	counts := func(r etl.Result) [5]int64 {
		return [5]int64{int64(r.Ingested), int64(r.Failed), r.Loaded, r.Duplicate, r.Rejected}
	}
	if counts(results[0]) != counts(results[1]) {
		t.Fatalf("passing over blocks: %+v; parsing every line: %+v", results[0], results[1])
	}
	if r := results[0]; r.Loaded != int64(added.Lines) || r.Rejected != 1 {
		t.Fatalf("the next export: %+v, want its %d new lines loaded and 1 rejected", r, added.Lines)
	}
	for table, sum := range dumps[1] {
		if dumps[0][table] != sum {
			t.Errorf("%s differs from the load that parsed every line", table)
		}
	}
}

// dumpTables hashes what a load writes, table by table.
func dumpTables(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	storetest.CheckRanges(t, db)
	return storetest.Dump(t, db, map[string]string{
		"purchase_lines": `SELECT store_code, receipt, line, at, customer_code, product_code, product, category,
			qty_milli, price_kop, sum_kop, seller FROM purchase_lines ORDER BY 1, 2, 3`,
		"rejects":       `SELECT line, field, reason FROM rejects ORDER BY file_id, line`,
		"files":         `SELECT status, rows_loaded, rows_duplicate, rows_rejected FROM files ORDER BY id`,
		"sales_daily":   `SELECT * FROM sales_daily ORDER BY 1, 2, 3`,
		"sales_monthly": `SELECT * FROM sales_monthly ORDER BY 1, 2, 3`,
	})
}
