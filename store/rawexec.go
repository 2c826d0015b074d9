package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
)

// execLines inserts n purchase lines through the driver itself, on the
// connection the batch's transaction runs on, and returns how many rows
// it inserted. Through database/sql each of a line's thirteen values is
// checked and converted again, and the connection locked and released,
// for every statement: a few percent of a load's time. args holds the
// lines' values (see insertLines), only of the types the driver takes
// (int64, string). The statement for n lines is prepared once a batch.
func (b *Batch) execLines(ctx context.Context, n int, args []driver.NamedValue) (int64, error) {
	var inserted int64
	err := b.conn.Raw(func(dc any) error {
		st, ok := b.raw[n]
		if !ok {
			p, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("the SQLite driver cannot prepare a statement with a context")
			}
			var err error
			if st, err = p.PrepareContext(ctx, insertLinesQuery(n)); err != nil {
				return err
			}
			b.raw[n] = st
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return errors.New("the SQLite driver cannot run a statement with a context")
		}
		res, err := ex.ExecContext(ctx, args)
		if err != nil {
			return err
		}
		inserted, err = res.RowsAffected()
		return err
	})
	return inserted, err
}

// insertLinesQuery is the insert of n purchase lines in one statement.
func insertLinesQuery(n int) string {
	var q strings.Builder
	q.WriteString(insertLineHead)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return q.String()
}

// closeRaw closes the statements execLines prepared.
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
