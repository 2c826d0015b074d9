package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// openBefore opens a new database with the migrations before the one
// whose name starts with prefix applied, on one writer connection, which
// it also returns.
func openBefore(t *testing.T, prefix string) (*DB, *sql.DB) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "otklik.db")
	w, err := sql.Open("sqlite", dsn(file, false))
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	t.Cleanup(func() { w.Close() })
	db := &DB{write: w, path: file, Now: time.Now}
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	slices.Sort(names)
	i := slices.IndexFunc(names, func(n string) bool { return strings.HasPrefix(path.Base(n), prefix) })
	if err := db.applyMigrations(context.Background(), names[:i]); err != nil {
		t.Fatal(err)
	}
	return db, w
}

// TestMigrate_CheckLists: the outbox tables rebuilt by 0014 keep every
// row, index and reference, and a status change no longer builds a
// temporary index of the allowed values.
func TestMigrate_CheckLists(t *testing.T) {
	ctx := context.Background()
	db, w := openBefore(t, "0014_")
	for _, q := range []string{
		`INSERT INTO invitations (id, token, email, customer_code, store_code, receipt, purchased_at, status, planned_at, due_at, expires_at, lease_until, opened_at)
		 VALUES (1, 't1', 'a@example.ru', 'c1', 's1', 'r1', 10, 'sent', 11, 12, 13, NULL, 14),
		        (2, 't2', 'b@example.ru', 'c2', 's1', 'r2', 10, 'planned', 11, 12, 13, 99, NULL)`,
		`INSERT INTO messages (id, kind, invitation_id, email, status, created_at, due_at, expires_at, promo_code)
		 VALUES (7, 'thanks', 1, 'a@example.ru', 'sent', 20, 21, 22, 'OTK-1')`,
		`INSERT INTO responses (invitation_id, store_code, rating, created_at) VALUES (1, 's1', 5, 30)`,
		`INSERT INTO promo_codes (code, origin, added_at, issued_at, message_id) VALUES ('OTK-1', 'file', 1, 2, 7)`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dump := func(q string) string {
		rows, err := w.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var b strings.Builder
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, c := range cols {
				if v, ok := vals[i].([]byte); ok {
					vals[i] = string(v)
				}
				fmt.Fprintf(&b, "%s=%v ", c, vals[i])
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	const indexesQ = `SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('invitations', 'messages') ORDER BY name`
	before := dump(`SELECT * FROM invitations ORDER BY id`) + dump(`SELECT * FROM messages ORDER BY id`)
	indexes := dump(indexesQ)

	if err := db.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if after := dump(`SELECT * FROM invitations ORDER BY id`) + dump(`SELECT * FROM messages ORDER BY id`); after != before {
		t.Errorf("rows changed:\n%s\nwant\n%s", after, before)
	}
	if got := dump(indexesQ); got != indexes {
		t.Errorf("indexes:\n%s\nwant\n%s", got, indexes)
	}
	var fk int
	if err := w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want back on", fk, err)
	}
	// The references now lead to the new tables.
	if _, err := w.ExecContext(ctx, `DELETE FROM invitations WHERE id = 1`); err == nil {
		t.Error("deleted an invitation that a message and a response refer to")
	}
	if _, err := w.ExecContext(ctx, `DELETE FROM messages WHERE id = 7`); err == nil {
		t.Error("deleted a message that a promo code refers to")
	}
	if _, err := w.ExecContext(ctx, `UPDATE invitations SET status = 'lost' WHERE id = 2`); err == nil {
		t.Error("took a status outside the list")
	}
	if _, err := w.ExecContext(ctx, `UPDATE messages SET kind = 'spam' WHERE id = 7`); err == nil {
		t.Error("took a kind outside the list")
	}
	for _, q := range []string{
		`EXPLAIN UPDATE invitations SET status = 'sending' WHERE id = 2`,
		`EXPLAIN UPDATE messages SET status = 'sending' WHERE id = 7`,
	} {
		if plan := dump(q); strings.Contains(plan, "OpenEphemeral") {
			t.Errorf("%s builds a temporary index:\n%s", q, plan)
		}
	}
}

// TestWithoutForeignKeys_RefusesBrokenReferences: a rebuild that leaves a
// row referring to nothing is rolled back, and foreign keys are on again.
func TestWithoutForeignKeys_RefusesBrokenReferences(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	err := db.withoutForeignKeys(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO messages (id, kind, invitation_id, email, status, created_at, due_at, expires_at)
			VALUES (1, 'alert', 404, 'd@example.ru', 'planned', 1, 1, 1)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row 1 of messages refers to a missing row of invitations") {
		t.Fatalf("err = %v", err)
	}
	var n, fk int
	db.write.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	db.write.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk)
	if n != 0 || fk != 1 {
		t.Fatalf("%d messages kept, foreign_keys = %d; want 0 and 1", n, fk)
	}
}
