package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
)

// rawKey names a statement that execRaw prepared: the statement a query
// function writes for n rows.
type rawKey struct {
	what string
	n    int
}

// execRaw runs the statement query(n) through the driver itself, on the
// connection the batch's transaction runs on, and returns how many rows
// it changed. Through database/sql each of a row's values is checked and
// converted again, and the connection locked and released, for every
// statement: a few percent of a load's time. args holds only values of
// the types the driver takes (int64, string, nil). The statement is
// prepared once a batch.
func (b *Batch) execRaw(ctx context.Context, what string, n int, query func(n int) string, args []driver.NamedValue) (int64, error) {
	var changed int64
	err := b.conn.Raw(func(dc any) error {
		key := rawKey{what, n}
		st, ok := b.raw[key]
		if !ok {
			p, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("the SQLite driver cannot prepare a statement with a context")
			}
			var err error
			if st, err = p.PrepareContext(ctx, query(n)); err != nil {
				return err
			}
			b.raw[key] = st
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return errors.New("the SQLite driver cannot run a statement with a context")
		}
		res, err := ex.ExecContext(ctx, args)
		if err != nil {
			return err
		}
		changed, err = res.RowsAffected()
		return err
	})
	return changed, err
}

// execLines inserts n purchase lines in one statement (see insertLines)
// and returns how many it inserted.
func (b *Batch) execLines(ctx context.Context, n int, args []driver.NamedValue) (int64, error) {
	return b.execRaw(ctx, "lines", n, insertLinesQuery, args)
}

// insertLinesQuery is the insert of n purchase lines in one statement.
func insertLinesQuery(n int) string {
	return rowsQuery(insertLineHead, lineTuple, n)
}

// rowsQuery is a statement of n rows: head, then n tuples.
func rowsQuery(head, tuple string, n int) string {
	var q strings.Builder
	q.WriteString(head)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(tuple)
	}
	return q.String()
}

// closeRaw closes the statements execRaw prepared.
func (b *Batch) closeRaw() {
	if len(b.raw) == 0 {
		return
	}
	b.conn.Raw(func(any) error {
		for q, st := range b.raw {
			st.Close()
			delete(b.raw, q)
		}
		return nil
	})
}
