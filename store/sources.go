package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Listed is one file of a source's listing.
type Listed struct {
	Name  string
	Size  int64
	MTime int64
}

// Stability records a source's listing and returns, for each file, since
// when it has had its current size and mtime. Files no longer listed are
// forgotten.
func (db *DB) Stability(ctx context.Context, source string, files []Listed) (map[string]time.Time, error) {
	now := db.now()
	out := make(map[string]time.Time, len(files))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS listed_now (name TEXT PRIMARY KEY)`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM temp.listed_now`); err != nil {
			return err
		}
		up, err := tx.PrepareContext(ctx, `INSERT INTO listings (source, name, size, mtime, first_seen) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (source, name) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, first_seen = excluded.first_seen
			WHERE (size, mtime) IS NOT (excluded.size, excluded.mtime)
			RETURNING first_seen`)
		if err != nil {
			return err
		}
		defer up.Close()
		get, err := tx.PrepareContext(ctx, `SELECT first_seen FROM listings WHERE source = ? AND name = ?`)
		if err != nil {
			return err
		}
		defer get.Close()
		mark, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO temp.listed_now (name) VALUES (?)`)
		if err != nil {
			return err
		}
		defer mark.Close()
		for _, f := range files {
			var first int64
			err := up.QueryRowContext(ctx, source, f.Name, f.Size, f.MTime, now).Scan(&first)
			if errors.Is(err, sql.ErrNoRows) { // unchanged: the update did nothing
				err = get.QueryRowContext(ctx, source, f.Name).Scan(&first)
			}
			if err != nil {
				return err
			}
			out[f.Name] = time.Unix(first, 0).UTC()
			if _, err := mark.ExecContext(ctx, f.Name); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM listings WHERE source = ? AND name NOT IN (SELECT name FROM temp.listed_now)`, source); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO listing_counts (source, at, entries) VALUES (?, ?, ?)`, source, now, len(files)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM listing_counts WHERE source = ? AND at < ?`, source, now-40*86400)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record listing of %s: %w", source, err)
	}
	return out, nil
}

// SourceHealth is a change in a source's health worth telling the
// administrator about.
type SourceHealth struct {
	Source   string
	Failures int    // consecutive failed runs
	LastErr  string // the latest failure
	// Down is set when the failures have just reached the threshold;
	// Recovered when a source that was reported down works again.
	Down, Recovered bool
}

// SourceRun records the outcome of one run of a source. runErr nil means
// it worked. threshold is the number of consecutive failures after which
// the source is reported down, once.
func (db *DB) SourceRun(ctx context.Context, source string, runErr error, threshold int) (SourceHealth, error) {
	h := SourceHealth{Source: source}
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var alerted bool
		err := tx.QueryRowContext(ctx, `SELECT failures, last_error, alerted FROM source_health WHERE source = ?`, source).
			Scan(&h.Failures, &h.LastErr, &alerted)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if runErr == nil {
			h.Recovered = alerted
			h.Failures, h.LastErr, alerted = 0, "", false
		} else {
			h.Failures++
			h.LastErr = runErr.Error()
			if !alerted && threshold > 0 && h.Failures >= threshold {
				h.Down, alerted = true, true
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO source_health (source, failures, last_error, alerted, updated_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET failures = excluded.failures,
			last_error = excluded.last_error, alerted = excluded.alerted, updated_at = excluded.updated_at`,
			source, h.Failures, h.LastErr, alerted, now)
		return err
	})
	if err != nil {
		return h, fmt.Errorf("record run of source %s: %w", source, err)
	}
	return h, nil
}
