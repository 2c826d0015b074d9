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
