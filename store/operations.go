package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Condition records whether an administrator alert's condition holds and
// reports a change: started is true the first time it holds, ended the
// first time it no longer does.
func (db *DB) Condition(ctx context.Context, key string, active bool, detail string) (started, ended bool, err error) {
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var was bool
		err := tx.QueryRowContext(ctx, `SELECT active FROM admin_alerts WHERE key = ?`, key).Scan(&was)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		started, ended = active && !was, !active && was
		if !started && !ended {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO admin_alerts (key, active, since, detail) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET active = excluded.active, since = excluded.since, detail = excluded.detail`,
			key, active, db.now(), detail)
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("record condition %s: %w", key, err)
	}
	return started, ended, nil
}

// ActiveConditions returns the keys of the conditions that hold now.
func (db *DB) ActiveConditions(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT key FROM admin_alerts WHERE active = 1 ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("active conditions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("active conditions: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Listed records how many files a source listed and returns the count of
// the listing before (-1 if none).
func (db *DB) Listed(ctx context.Context, source string, n int) (int, error) {
	prev := -1
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT listed FROM source_health WHERE source = ?`, source).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO source_health (source, listed, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (source) DO UPDATE SET listed = excluded.listed`, source, n, db.now())
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("record listing of %s: %w", source, err)
	}
	return prev, nil
}

// FeedRows returns, for each of the days [from, from+days), the rows a
// feed's files brought (loaded, duplicate and rejected), and whether any
// file of the feed was ingested that day. Days are cut at the given
// zone's midnights.
func (db *DB) FeedRows(ctx context.Context, feed string, from time.Time, days int) ([]int64, []bool, error) {
	rows := make([]int64, days)
	seen := make([]bool, days)
	for i := range days {
		a, b := from.AddDate(0, 0, i), from.AddDate(0, 0, i+1)
		var n, files int64
		err := db.read.QueryRowContext(ctx, `SELECT coalesce(sum(rows_loaded + rows_duplicate + rows_rejected), 0), count(*)
			FROM files WHERE feed = ? AND status = 'ingested' AND finished_at >= ? AND finished_at < ?`,
			feed, a.UTC().Unix(), b.UTC().Unix()).Scan(&n, &files)
		if err != nil {
			return nil, nil, fmt.Errorf("rows of feed %s: %w", feed, err)
		}
		rows[i], seen[i] = n, files > 0
	}
	return rows, seen, nil
}

// ListingEntries returns, for each of days days from from, the most
// entries a listing of the source showed that day, and whether it was
// listed at all.
func (db *DB) ListingEntries(ctx context.Context, source string, from time.Time, days int) ([]int64, []bool, error) {
	most := make([]int64, days)
	seen := make([]bool, days)
	for i := range days {
		a, b := from.AddDate(0, 0, i), from.AddDate(0, 0, i+1)
		var n sql.NullInt64
		err := db.read.QueryRowContext(ctx, `SELECT max(entries) FROM listing_counts WHERE source = ? AND at >= ? AND at < ?`,
			source, a.UTC().Unix(), b.UTC().Unix()).Scan(&n)
		if err != nil {
			return nil, nil, fmt.Errorf("listings of source %s: %w", source, err)
		}
		most[i], seen[i] = n.Int64, n.Valid
	}
	return most, seen, nil
}

// DaySummary is what happened in a period, for the administrator.
type DaySummary struct {
	FilesIngested, FilesFailed, FilesDuplicate int64
	RowsLoaded, RowsDuplicate, RowsRejected    int64
	ValuesDropped                              int64 // left out of rows that loaded
	RejectReasons                              []ReasonCount
	Sent, Bounced, Failed, Unknown, Expired    int64
	Answers, Alerts, Thanks, Reminders         int64
	Unsubscribed                               int64
}

// ReasonCount is how many of a file's listed rejects are of one column
// (Field; "" for rows that could not be read at all), with the first of
// their reasons as an example: reasons name the values, and so are
// seldom the same twice. Kept: values left out of rows that loaded.
type ReasonCount struct {
	File, Field, Example string
	Count                int64
	Kept                 bool
}

// Summarize counts what happened in p.
func (db *DB) Summarize(ctx context.Context, p Period) (DaySummary, error) {
	var s DaySummary
	from, to := p.args()
	q := func(query string, dst ...any) error {
		if err := db.read.QueryRowContext(ctx, query, from, to).Scan(dst...); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		return nil
	}
	queries := []struct {
		query string
		dst   []any
	}{
		{`SELECT coalesce(sum(status = 'ingested'), 0), coalesce(sum(status = 'failed'), 0), coalesce(sum(status = 'skipped_duplicate'), 0),
			coalesce(sum(rows_loaded), 0), coalesce(sum(rows_duplicate), 0), coalesce(sum(rows_rejected), 0),
			coalesce(sum(values_dropped), 0)
			FROM files WHERE finished_at >= ? AND finished_at < ?`,
			[]any{&s.FilesIngested, &s.FilesFailed, &s.FilesDuplicate, &s.RowsLoaded, &s.RowsDuplicate, &s.RowsRejected, &s.ValuesDropped}},
		{`SELECT coalesce(sum(status = 'sent'), 0), coalesce(sum(status = 'bounced'), 0), coalesce(sum(status = 'failed'), 0),
			coalesce(sum(status = 'unknown'), 0), coalesce(sum(status = 'expired'), 0)
			FROM invitations WHERE due_at >= ? AND due_at < ?`, []any{&s.Sent, &s.Bounced, &s.Failed, &s.Unknown, &s.Expired}},
		{`SELECT count(*) FROM responses WHERE created_at >= ? AND created_at < ?`, []any{&s.Answers}},
		{`SELECT coalesce(sum(kind = 'alert'), 0), coalesce(sum(kind = 'thanks'), 0), coalesce(sum(kind = 'reminder'), 0)
			FROM messages WHERE status = 'sent' AND sent_at >= ? AND sent_at < ?`, []any{&s.Alerts, &s.Thanks, &s.Reminders}},
		{`SELECT count(*) FROM suppressions WHERE reason = 'unsubscribed' AND created_at >= ? AND created_at < ?`, []any{&s.Unsubscribed}},
	}
	for _, x := range queries {
		if err := q(x.query, x.dst...); err != nil {
			return s, err
		}
	}
	// r.reason is the first reject's: SQLite takes a bare column from the
	// row of the query's only min().
	rows, err := db.read.QueryContext(ctx, `SELECT f.name, r.field, r.kept, count(*), r.reason, min(r.id) FROM rejects r JOIN files f ON f.id = r.file_id
		WHERE f.finished_at >= ? AND f.finished_at < ? GROUP BY f.id, r.field, r.kept ORDER BY count(*) DESC, f.id, r.field, r.kept LIMIT 10`, from, to)
	if err != nil {
		return s, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ReasonCount
		var first int64
		if err := rows.Scan(&r.File, &r.Field, &r.Kept, &r.Count, &r.Example, &first); err != nil {
			return s, fmt.Errorf("summary: %w", err)
		}
		s.RejectReasons = append(s.RejectReasons, r)
	}
	return s, rows.Err()
}

// retainCardsQuery anonymizes the cards neither updated nor used in a
// purchase since ?1. The lines since then are listed once, not searched
// for each card: purchase_lines has no index by customer.
var retainCardsQuery = `UPDATE customers SET name = NULL, email = NULL, phone = NULL, birth_date = NULL,
	consent = 0, forgotten = 1
	WHERE forgotten = 0 AND updated_at < ?1
	  AND code NOT IN (SELECT customer_code FROM ` + linesIn("p") + ` WHERE ` + linesSince("p") + `)`

// Retain anonymizes personal data older than the cutoffs: cards neither
// updated by 1C nor used in a purchase since customersBefore keep only
// their code; answers received before answersBefore lose their comment
// and invitations planned before then their address. Ratings and
// categories stay for the trends. It returns how many cards and answers
// were anonymized.
func (db *DB) Retain(ctx context.Context, customersBefore, answersBefore time.Time) (cards, answers int64, err error) {
	cb, ab := customersBefore.UTC().Unix(), answersBefore.UTC().Unix()
	err = db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, retainCardsQuery, cb)
		if err != nil {
			return err
		}
		if cards, err = res.RowsAffected(); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE responses SET comment = '' WHERE created_at < ? AND comment <> ''`, ab)
		if err != nil {
			return err
		}
		if answers, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE invitations SET email = '' WHERE planned_at < ? AND email <> ''
			AND status NOT IN ('planned', 'sending')`, ab)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("retention: %w", err)
	}
	return cards, answers, nil
}

// Backup writes a consistent copy of the database to dir as
// otklik-YYYYMMDD-HHMMSS.db with VACUUM INTO (the daemon keeps running),
// and removes all but the newest keep copies. It returns the new file.
func (db *DB) Backup(ctx context.Context, dir string, keep int) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	path := filepath.Join(dir, "otklik-"+db.Now().UTC().Format("20060102-150405")+".db")
	tmp := path + ".part"
	os.Remove(tmp)
	// On a connection of its own: the readers are query-only, and on the
	// writer's one connection the copy would hold up every write. In WAL
	// mode VACUUM INTO reads one snapshot while writers go on.
	h, err := sql.Open("sqlite", dsn(db.path, false))
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	defer h.Close()
	if _, err := h.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "otklik-*.db"))
	sort.Strings(old)
	for len(old) > keep && keep > 0 {
		os.Remove(old[0])
		old = old[1:]
	}
	return path, nil
}
