package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// File statuses in the ledger.
const (
	FileLoading          = "loading"
	FileIngested         = "ingested"
	FileFailed           = "failed"
	FileSkippedDuplicate = "skipped_duplicate"
)

// FileVersion names one version of a file on a source.
type FileVersion struct {
	Source string
	Name   string
	Size   int64
	MTime  int64 // unix seconds
}

// FileStatus returns the ledger status of a file version, or "" if the
// ledger has never seen it.
func (db *DB) FileStatus(ctx context.Context, v FileVersion) (string, error) {
	var status string
	err := db.read.QueryRowContext(ctx, `SELECT status FROM files
		WHERE source = ? AND name = ? AND size = ? AND mtime = ?`,
		v.Source, v.Name, v.Size, v.MTime).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("file status %s/%s: %w", v.Source, v.Name, err)
	}
	return status, nil
}

// Resume is where the load of a file left off: its checkpoint (the last
// line or document committed) and the counts up to it. It is zero for a
// file loaded from the start.
type Resume struct {
	Checkpoint int
	Counts     FileCounts
}

// BeginFile records that a downloaded file is about to be loaded. If a file
// with the same sha256 was already ingested, the version is recorded as a
// skipped duplicate and dup is true. A version left in "loading" by a crash
// with the same content is taken up again where its last batch ended.
func (db *DB) BeginFile(ctx context.Context, v FileVersion, sha256, feed, encoding string) (id int64, dup bool, resume Resume, err error) {
	now := db.now()
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE sha256 = ? AND status = ?`,
			sha256, FileIngested).Scan(&n); err != nil {
			return err
		}
		status := FileLoading
		if n > 0 {
			status, dup = FileSkippedDuplicate, true
		}
		var old int64
		var oldSHA, oldStatus string
		var r Resume
		err := tx.QueryRowContext(ctx, `SELECT id, sha256, status, checkpoint,
			rows_loaded, rows_duplicate, rows_rejected, values_dropped
			FROM files WHERE source = ? AND name = ? AND size = ? AND mtime = ?`,
			v.Source, v.Name, v.Size, v.MTime).Scan(&old, &oldSHA, &oldStatus, &r.Checkpoint,
			&r.Counts.Loaded, &r.Counts.Duplicate, &r.Counts.Rejected, &r.Counts.Dropped)
		switch {
		case err == nil && !dup && oldSHA == sha256 && oldStatus == FileLoading:
			id, resume = old, r
			_, err = tx.ExecContext(ctx, `UPDATE files SET encoding = ?, started_at = ? WHERE id = ?`, encoding, now, id)
			return err
		case err == nil:
			id = old
			if _, err := tx.ExecContext(ctx, `DELETE FROM rejects WHERE file_id = ?`, id); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE files SET sha256 = ?, feed = ?, encoding = ?, status = ?,
				rows_loaded = 0, rows_duplicate = 0, rows_rejected = 0, values_dropped = 0, checkpoint = 0,
				error = '', started_at = ?, finished_at = NULL
				WHERE id = ?`, sha256, feed, encoding, status, now, id)
			return err
		case errors.Is(err, sql.ErrNoRows):
			var finished any
			if dup {
				finished = now
			}
			id, err = insertFile(ctx, tx, v, sha256, feed, encoding, status, "", now, finished)
			return err
		default:
			return err
		}
	})
	if err != nil {
		return 0, false, Resume{}, fmt.Errorf("begin file %s/%s: %w", v.Source, v.Name, err)
	}
	return id, dup, resume, nil
}

// RefuseFile records a file version as failed without its content (it was
// not downloaded), so that it is not tried again until it changes.
func (db *DB) RefuseFile(ctx context.Context, v FileVersion, feed, reason string) (id int64, err error) {
	now := db.now()
	err = db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM files WHERE source = ? AND name = ? AND size = ? AND mtime = ?`,
			v.Source, v.Name, v.Size, v.MTime).Scan(&id)
		switch {
		case err == nil:
			_, err = tx.ExecContext(ctx, `UPDATE files SET feed = ?, status = ?, error = ?, finished_at = ? WHERE id = ?`,
				feed, FileFailed, reason, now, id)
			return err
		case errors.Is(err, sql.ErrNoRows):
			id, err = insertFile(ctx, tx, v, "", feed, "", FileFailed, reason, now, now)
			return err
		default:
			return err
		}
	})
	if err != nil {
		return 0, fmt.Errorf("refuse file %s/%s: %w", v.Source, v.Name, err)
	}
	return id, nil
}

// insertFile adds a file version to the ledger; finished is nil while it
// loads.
func insertFile(ctx context.Context, tx *sql.Tx, v FileVersion, sha256, feed, encoding, status, errMsg string,
	started int64, finished any) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO files
		(source, name, size, mtime, sha256, feed, encoding, status, error, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.Source, v.Name, v.Size, v.MTime, sha256, feed, encoding, status, errMsg, started, finished)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// FileCounts are the row outcomes of one file.
type FileCounts struct {
	Loaded, Duplicate, Rejected int64
	// Dropped counts the values left out of rows that loaded (see
	// Batch.AddDropped).
	Dropped int64
}

// FinishFile marks a file ingested (errMsg empty) or failed, with its counts.
func (db *DB) FinishFile(ctx context.Context, id int64, c FileCounts, errMsg string) error {
	status := FileIngested
	if errMsg != "" {
		status = FileFailed
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, rows_loaded = ?, rows_duplicate = ?,
			rows_rejected = ?, values_dropped = ?, error = ?, finished_at = ? WHERE id = ?`,
			status, c.Loaded, c.Duplicate, c.Rejected, c.Dropped, errMsg, db.now(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish file %d: %w", id, err)
	}
	return nil
}

// Reject is a row that could not be loaded or, Kept, a value a row
// loaded without.
type Reject struct {
	File   string
	Line   int
	Field  string
	Reason string
	Kept   bool
}

// Rejects returns the most recent rejects across all files, newest first,
// at most limit.
func (db *DB) Rejects(ctx context.Context, limit int) ([]Reject, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT f.name, r.line, r.field, r.reason, r.kept
		FROM rejects r JOIN files f ON f.id = r.file_id ORDER BY r.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list rejects: %w", err)
	}
	defer rows.Close()
	var out []Reject
	for rows.Next() {
		var r Reject
		if err := rows.Scan(&r.File, &r.Line, &r.Field, &r.Reason, &r.Kept); err != nil {
			return nil, fmt.Errorf("list rejects: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// EachReject calls fn with each reject of a file, in line order.
func (db *DB) EachReject(ctx context.Context, fileID int64, fn func(Reject) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT f.name, r.line, r.field, r.reason, r.kept
		FROM rejects r JOIN files f ON f.id = r.file_id WHERE r.file_id = ? ORDER BY r.line, r.id`, fileID)
	if err != nil {
		return fmt.Errorf("rejects of file %d: %w", fileID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Reject
		if err := rows.Scan(&r.File, &r.Line, &r.Field, &r.Reason, &r.Kept); err != nil {
			return fmt.Errorf("rejects of file %d: %w", fileID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ForgetRejects deletes the listed rejects of the files finished before
// t, as the spool's sweep removes those files' copies and the rejects
// files beside them: 1C re-exports its customers every night, and a
// column that went wrong in 1C would otherwise add its thousands of rows
// every night for good (some of them holding the values that were wrong,
// an email or a phone). One file at a time, so that the first sweep of a
// database kept for years does not hold the write lock for long. It
// returns how many rejects were deleted.
func (db *DB) ForgetRejects(ctx context.Context, before time.Time) (int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id FROM files f
		WHERE finished_at < ? AND EXISTS (SELECT 1 FROM rejects WHERE file_id = f.id)`, before.UTC().Unix())
	if err != nil {
		return 0, fmt.Errorf("forget rejects: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("forget rejects: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("forget rejects: %w", err)
	}
	var n int64
	for _, id := range ids {
		err := db.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM rejects WHERE file_id = ?`, id)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			n += k
			return err
		})
		if err != nil {
			return n, fmt.Errorf("forget rejects of file %d: %w", id, err)
		}
	}
	return n, nil
}

// FileErrors returns the reasons of the failed files, oldest first.
func (db *DB) FileErrors(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT source || '/' || name || ': ' || error FROM files WHERE status = 'failed' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("file errors: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("file errors: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
