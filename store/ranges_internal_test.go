package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/store/storetest"
)

// rangeLine is the ith line of a test load: receipts of three lines, a
// minute apart, from 1 November 2026 (UTC).
func rangeLine(i int) PurchaseLine {
	return PurchaseLine{StoreCode: "S1", Receipt: fmt.Sprintf("R%06d", i/3), Line: i%3 + 1,
		At:       time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
		Category: "Диваны", QtyMilli: 1000, PriceKop: 100, SumKop: 100}
}

// rangeCount returns how many ranges of line ids are recorded.
func rangeCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM purchase_ranges`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Each batch records the ids it appends in ranges of about rangeLines
// lines with their times: lines queued and added one by one, lines loaded
// before among them, a batch that adds nothing and one rolled back. A
// query by time then finds exactly the lines of its period.
func TestBatch_RecordsRangesOfLineIDs(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	batch := func(fn func(b *Batch) error, commit bool) {
		t.Helper()
		b, err := db.BeginBatch(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(b); err != nil {
			t.Fatal(err)
		}
		if !commit {
			b.Rollback()
			return
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	queue := func(from, to int) func(b *Batch) error {
		return func(b *Batch) error {
			for i := from; i < to; i++ {
				if err := b.QueuePurchaseLine(ctx, rangeLine(i)); err != nil {
					return err
				}
			}
			return nil
		}
	}

	batch(queue(0, 5000), true)
	// 2048 lines are 32 inserts of 64: three ranges, in time order as
	// the lines came.
	var ranges [][4]int64
	rows, err := db.read.Query(`SELECT first_id, last_id, first_at, last_at FROM purchase_ranges ORDER BY first_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r [4]int64
		if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
			t.Fatal(err)
		}
		ranges = append(ranges, r)
	}
	rows.Close()
	at := func(i int) int64 { return rangeLine(i).At.Unix() }
	want := [][4]int64{{1, 2048, at(0), at(2047)}, {2049, 4096, at(2048), at(4095)}, {4097, 5000, at(4096), at(4999)}}
	if !slices.Equal(ranges, want) {
		t.Errorf("ranges after 5000 lines:\n%v\nwant\n%v", ranges, want)
	}

	batch(queue(4000, 6000), true) // 1000 loaded before, 1000 new
	n := rangeCount(t, db.read)
	batch(queue(100, 200), true) // all loaded before
	if got := rangeCount(t, db.read); got != n {
		t.Errorf("a batch that added no line recorded %d ranges", got-n)
	}
	batch(queue(6000, 7000), false)
	if got := rangeCount(t, db.read); got != n {
		t.Errorf("a batch rolled back left %d ranges", got-n)
	}
	batch(func(b *Batch) error {
		for _, i := range []int{6500, 10, 6501} {
			if _, err := b.AddPurchaseLine(ctx, rangeLine(i)); err != nil {
				return err
			}
		}
		return nil
	}, true)
	// Lines out of time order: a receipt of last month after those.
	batch(func(b *Batch) error {
		for i := range 3 {
			l := rangeLine(i)
			l.Receipt, l.At = "OLD", l.At.AddDate(0, -1, 0)
			if err := b.QueuePurchaseLine(ctx, l); err != nil {
				return err
			}
		}
		return nil
	}, true)
	storetest.CheckRanges(t, db.read)

	var lines int
	if err := db.read.QueryRow(`SELECT count(*) FROM purchase_lines`).Scan(&lines); err != nil || lines != 6005 {
		t.Fatalf("%d lines (%v), want 6005", lines, err)
	}
	for _, p := range [][2]int64{{at(0), at(1)}, {at(2047), at(2049)}, {at(4500), at(6501)}, {at(6500), at(6502)},
		{at(0) - 31*86400, at(0)}, {at(0) - 40*86400, at(9000)}, {at(7000), at(8000)}} {
		var byRange, byScan int64
		if err := db.read.QueryRow(`SELECT count(*) FROM `+linesIn("p")+` WHERE `+linesAt("p"), p[0], p[1]).Scan(&byRange); err != nil {
			t.Fatal(err)
		}
		if err := db.read.QueryRow(`SELECT count(*) FROM purchase_lines WHERE at >= ? AND at < ?`, p[0], p[1]).Scan(&byScan); err != nil {
			t.Fatal(err)
		}
		if byRange != byScan {
			t.Errorf("lines of [%d, %d): %d through the ranges, %d in the table", p[0], p[1], byRange, byScan)
		}
	}
}

// TestMigrate_PurchaseRanges: the rebuild of purchase_lines keeps every
// line with its rowid as its id, ranges cover the lines loaded before,
// the index of uncategorized lines is back, a line cannot be deleted, and
// the next load appends after the last id.
func TestMigrate_PurchaseRanges(t *testing.T) {
	ctx := context.Background()
	db, w := openBefore(t, "0017_")
	// 5000 lines, times in no order, some deleted (which the old table
	// allowed), one not yet categorized.
	for i := range 5000 {
		l := rangeLine(i)
		if _, err := w.Exec(`INSERT INTO purchase_lines (store_code, receipt, line, at, category, qty_milli, price_kop, sum_kop, file_id)
			VALUES (?, ?, ?, ?, ?, 1000, 100, 100, 1)`, l.StoreCode, l.Receipt, l.Line, l.At.Unix()+int64(i%7)*86400, l.Category); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`DELETE FROM purchase_lines WHERE rowid BETWEEN 2000 AND 2999`,
		`UPDATE purchase_lines SET category = '' WHERE rowid = 7`} {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	const linesQ = `SELECT %s, store_code, receipt, line, at, category FROM purchase_lines ORDER BY 1`
	dump := func(id string) string {
		rows, err := w.Query(fmt.Sprintf(linesQ, id))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, line, at int64
			var s, r, c string
			if err := rows.Scan(&id, &s, &r, &line, &at, &c); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, id, s, r, line, at, c)
		}
		return b.String()
	}
	before := dump("rowid")

	if err := db.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if after := dump("id"); after != before {
		t.Error("the lines or their ids changed in the rebuild")
	}
	storetest.CheckRanges(t, w)
	var plan string
	if err := w.QueryRow(`EXPLAIN QUERY PLAN SELECT rowid FROM purchase_lines WHERE product_code = 'x' AND category = ''`).Scan(new(int), new(int), new(int), &plan); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "purchase_lines_uncategorized") {
		t.Errorf("uncategorized lines not found by their index: %s", plan)
	}
	if _, err := w.Exec(`DELETE FROM purchase_lines WHERE id = 1`); err == nil || !strings.Contains(err.Error(), "never deleted") {
		t.Errorf("delete a line: %v, want refused", err)
	}

	db.read = w
	b, err := db.BeginBatch(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4990; i < 5010; i++ { // 10 loaded, 10 new
		if err := b.QueuePurchaseLine(ctx, rangeLine(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var first, last int64
	if err := w.QueryRow(`SELECT min(id), max(id) FROM purchase_lines WHERE file_id = 2`).Scan(&first, &last); err != nil || first != 5001 || last != 5010 {
		t.Errorf("new lines got ids %d-%d (%v), want 5001-5010", first, last, err)
	}
	storetest.CheckRanges(t, w)
}
