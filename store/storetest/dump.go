// Package storetest helps tests compare otklik databases.
package storetest

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"testing"
)

// Dump runs each named query on db and returns, by name, its row count
// and a hash of its rows: two databases hold the same rows where their
// dumps are equal.
func Dump(tb testing.TB, db *sql.DB, queries map[string]string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for name, q := range queries {
		rows, err := db.Query(q)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		cols, _ := rows.Columns()
		vals, ptrs := make([]any, len(cols)), make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		h, n := sha256.New(), 0
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			fmt.Fprintf(h, "%v\x00", vals)
			n++
		}
		if err := rows.Err(); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		rows.Close()
		out[name] = fmt.Sprintf("%d rows %x", n, h.Sum(nil))
	}
	return out
}

// CheckRanges fails tb unless the ranges of purchase line ids cover every
// line once, each within the times its range gives, and never overlap:
// what queries by time rely on.
func CheckRanges(tb testing.TB, db *sql.DB) {
	tb.Helper()
	for _, c := range []struct{ what, query string }{
		// A line's range is the last one to begin at or before it (ranges
		// that overlap are the next check's to report): one lookup a line,
		// where BETWEEN on both ends scanned every range for each.
		{"lines outside every range, or outside its times", `SELECT count(*) FROM purchase_lines p WHERE NOT EXISTS (
			SELECT 1 FROM (SELECT last_id, first_at, last_at FROM purchase_ranges r
				WHERE r.first_id <= p.id ORDER BY r.first_id DESC LIMIT 1) r
			WHERE p.id <= r.last_id AND p.at BETWEEN r.first_at AND r.last_at)`},
		{"ranges overlapping another", `SELECT count(*) FROM purchase_ranges a JOIN purchase_ranges b
			ON b.first_id > a.first_id AND b.first_id <= a.last_id`},
		{"ranges upside down", `SELECT count(*) FROM purchase_ranges WHERE last_id < first_id OR last_at < first_at`},
	} {
		var n int
		if err := db.QueryRow(c.query).Scan(&n); err != nil {
			tb.Fatalf("check ranges: %v", err)
		}
		if n != 0 {
			tb.Errorf("purchase line ranges: %d %s", n, c.what)
		}
	}
}
