package store

import (
	"context"
	"fmt"
)

// rangeLines is about how many purchase lines a range of ids covers (see
// migration 0017): a query by time reads whole ranges, so a smaller one
// reads fewer lines of other times and a larger one fewer ranges.
const rangeLines = 2048

// idRange is the range of purchase line ids a batch is appending to: the
// ids after after, given to lines at times from first to last.
type idRange struct {
	open        bool
	after       int64
	lines       int
	first, last int64
}

// lastLineID is the largest purchase line id, 0 before the first line: a
// new line gets the next (no line is ever deleted, see migration 0017).
const lastLineID = `SELECT coalesce(max(id), 0) FROM purchase_lines`

// beforeLines opens the batch's range before it inserts lines, and notes
// for the roll-ups where the batch's lines begin (salesDelta.before).
func (b *Batch) beforeLines(ctx context.Context) error {
	if b.ids.open {
		return nil
	}
	var last int64
	if err := b.tx.QueryRowContext(ctx, lastLineID).Scan(&last); err != nil {
		return fmt.Errorf("last purchase line id: %w", err)
	}
	b.ids = idRange{open: true, after: last}
	b.sales.before = last
	return nil
}

// afterLines notes the times of lines offered to an insert: those of the
// lines it inserted are among them. It closes the range once it covers
// rangeLines lines.
func (b *Batch) afterLines(ctx context.Context, q []PurchaseLine) error {
	for _, p := range q {
		at := p.At.UTC().Unix()
		if b.ids.lines == 0 || at < b.ids.first {
			b.ids.first = at
		}
		if b.ids.lines == 0 || at > b.ids.last {
			b.ids.last = at
		}
		b.ids.lines++
	}
	if b.ids.lines < rangeLines {
		return nil
	}
	return b.closeRange(ctx)
}

// closeRange records the ids appended since the range opened, if any:
// the batch holds the write lock, so they are all its lines'.
func (b *Batch) closeRange(ctx context.Context) error {
	if !b.ids.open {
		return nil
	}
	var upto int64
	if err := b.tx.QueryRowContext(ctx, lastLineID).Scan(&upto); err != nil {
		return fmt.Errorf("last purchase line id: %w", err)
	}
	if upto > b.ids.after {
		if _, err := b.tx.ExecContext(ctx, `INSERT INTO purchase_ranges (first_id, last_id, first_at, last_at)
			VALUES (?, ?, ?, ?)`, b.ids.after+1, upto, b.ids.first, b.ids.last); err != nil {
			return fmt.Errorf("record purchase line ids %d-%d: %w", b.ids.after+1, upto, err)
		}
	}
	b.ids = idRange{open: true, after: upto}
	return nil
}
