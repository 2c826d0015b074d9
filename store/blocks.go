package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Blocks stand for purchase lines that are never changed or removed once
// loaded. Whatever comes to delete purchase lines must empty
// purchase_blocks as well: a block does not list its lines, and a block
// still recorded would keep its deleted lines from loading again.

// KnownBlock reports whether a block of a purchases export with this hash
// was loaded whole by an earlier batch (see AddBlock). It reads on a
// reader, so it sees committed batches only.
func (db *DB) KnownBlock(ctx context.Context, hash []byte) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM purchase_blocks WHERE hash = ?`, hash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("known block: %w", err)
	}
	return true, nil
}

// AddBlock records that every line of a block of a purchases export,
// identified by its hash, is loaded or was loaded before, and none was
// rejected. Call it once the block's last line is queued: the batch's
// commit makes the lines and the record durable together.
func (b *Batch) AddBlock(ctx context.Context, hash []byte) error {
	if _, err := b.exec(ctx, `INSERT OR IGNORE INTO purchase_blocks (hash, file_id) VALUES (?, ?)`, hash, b.fileID); err != nil {
		return fmt.Errorf("add block: %w", err)
	}
	return nil
}
