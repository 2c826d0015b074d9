package store

import (
	"context"
	"database/sql/driver"
	"errors"
)

// execLines runs an insert of purchase lines through the driver itself,
// on the connection the batch's transaction runs on, and returns how
// many rows it inserted. Through database/sql each of a line's thirteen
// values is checked and converted again, and the connection locked and
// released, for every statement: a few percent of a load's time.
// args holds only the types the driver takes (int64, string).
func (b *Batch) execLines(ctx context.Context, query string, args []driver.NamedValue) (int64, error) {
	var n int64
	err := b.conn.Raw(func(dc any) error {
		st, ok := b.raw[query]
		if !ok {
			p, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("the SQLite driver cannot prepare a statement with a context")
			}
			var err error
			if st, err = p.PrepareContext(ctx, query); err != nil {
				return err
			}
			b.raw[query] = st
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return errors.New("the SQLite driver cannot run a statement with a context")
		}
		res, err := ex.ExecContext(ctx, args)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
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
