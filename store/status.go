package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Status is the summary printed by `otklik status --json`; its JSON shape
// is a stable interface.
type Status struct {
	Files struct {
		Ingested         int64 `json:"ingested"`
		Failed           int64 `json:"failed"`
		SkippedDuplicate int64 `json:"skipped_duplicate"`
		Loading          int64 `json:"loading"`
	} `json:"files"`
	Rows struct {
		Loaded    int64 `json:"loaded"`
		Duplicate int64 `json:"duplicate"`
		Rejected  int64 `json:"rejected"`
		// ValuesDropped counts the values left out of rows that loaded
		// (an email that is not an address, a phone that is not a number).
		ValuesDropped int64 `json:"values_dropped"`
	} `json:"rows"`
	Stores        int64 `json:"stores"`
	Customers     int64 `json:"customers"`
	Purchases     int64 `json:"purchases"`
	PurchaseLines int64 `json:"purchase_lines"`
	Invitations   struct {
		Planned int64 `json:"planned"`
		Sending int64 `json:"sending"`
		Sent    int64 `json:"sent"`
		Failed  int64 `json:"failed"`
		Bounced int64 `json:"bounced"`
		Unknown int64 `json:"unknown"`
		Expired int64 `json:"expired"`
	} `json:"invitations"`
	// Messages counts reminders, thank-yous and alerts by status, like
	// invitations.
	Messages struct {
		Planned int64 `json:"planned"`
		Sending int64 `json:"sending"`
		Sent    int64 `json:"sent"`
		Failed  int64 `json:"failed"`
		Bounced int64 `json:"bounced"`
		Unknown int64 `json:"unknown"`
		Expired int64 `json:"expired"`
	} `json:"messages"`
	PromoCodesIssued int64 `json:"promo_codes_issued"`
	Responses        int64 `json:"responses"`
	Suppressed       int64 `json:"suppressed"`
	// RollupDaysPending counts the days whose lines or answers changed
	// since their roll-ups were computed (after each ingest and before
	// each report); one that stays up says the refresh keeps failing.
	RollupDaysPending int64 `json:"rollup_days_pending"`
	LastRuns          []Run `json:"last_runs"`
}

// Run is one recorded run of a job.
type Run struct {
	Job        string    `json:"job"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	OK         bool      `json:"ok"`
	Detail     string    `json:"detail,omitempty"`
}

// Status counts what the database holds.
func (db *DB) Status(ctx context.Context) (Status, error) {
	var s Status
	q := func(dst *int64, query string) error {
		if err := db.read.QueryRowContext(ctx, query).Scan(dst); err != nil {
			return fmt.Errorf("status: %s: %w", query, err)
		}
		return nil
	}
	if err := db.read.QueryRowContext(ctx, `SELECT coalesce(sum(rows_loaded), 0), coalesce(sum(rows_duplicate), 0),
		coalesce(sum(rows_rejected), 0), coalesce(sum(values_dropped), 0) FROM files`).Scan(
		&s.Rows.Loaded, &s.Rows.Duplicate, &s.Rows.Rejected, &s.Rows.ValuesDropped); err != nil {
		return s, fmt.Errorf("status: rows of files: %w", err)
	}
	counts := []struct {
		dst   *int64
		query string
	}{
		{&s.Stores, `SELECT count(*) FROM stores`},
		{&s.Customers, `SELECT count(*) FROM customers`},
		{&s.Purchases, `SELECT count(*) FROM (SELECT 1 FROM purchase_lines GROUP BY store_code, receipt)`},
		{&s.PurchaseLines, `SELECT count(*) FROM purchase_lines`},
		{&s.Responses, `SELECT count(*) FROM responses`},
		{&s.Suppressed, `SELECT count(*) FROM suppressions`},
		{&s.PromoCodesIssued, `SELECT count(*) FROM promo_codes WHERE issued_at IS NOT NULL`},
		{&s.RollupDaysPending, `SELECT count(*) FROM rollup_dirty`},
	}
	for _, c := range counts {
		if err := q(c.dst, c.query); err != nil {
			return s, err
		}
	}
	byStatus := func(query string, dst map[string]*int64) error {
		rows, err := db.read.QueryContext(ctx, query)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				return fmt.Errorf("status: %w", err)
			}
			if p, ok := dst[k]; ok {
				*p = n
			}
		}
		return rows.Err()
	}
	if err := byStatus(`SELECT status, count(*) FROM files GROUP BY status`, map[string]*int64{
		FileIngested: &s.Files.Ingested, FileFailed: &s.Files.Failed,
		FileSkippedDuplicate: &s.Files.SkippedDuplicate, FileLoading: &s.Files.Loading,
	}); err != nil {
		return s, err
	}
	inv := &s.Invitations
	if err := byStatus(`SELECT status, count(*) FROM invitations GROUP BY status`, map[string]*int64{
		InvPlanned: &inv.Planned, InvSending: &inv.Sending, InvSent: &inv.Sent, InvFailed: &inv.Failed,
		InvBounced: &inv.Bounced, InvUnknown: &inv.Unknown, InvExpired: &inv.Expired,
	}); err != nil {
		return s, err
	}
	m := &s.Messages
	if err := byStatus(`SELECT status, count(*) FROM messages GROUP BY status`, map[string]*int64{
		InvPlanned: &m.Planned, InvSending: &m.Sending, InvSent: &m.Sent, InvFailed: &m.Failed,
		InvBounced: &m.Bounced, InvUnknown: &m.Unknown, InvExpired: &m.Expired,
	}); err != nil {
		return s, err
	}
	runs, err := db.LastRuns(ctx)
	if err != nil {
		return s, err
	}
	s.LastRuns = runs
	return s, nil
}

// RecordRun stores the outcome of one run of a job.
func (db *DB) RecordRun(ctx context.Context, job string, started time.Time, runErr error, detail string) error {
	ok := runErr == nil
	if runErr != nil {
		detail = runErr.Error()
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (job, started_at, finished_at, ok, detail) VALUES (?, ?, ?, ?, ?)`,
			job, started.UTC().Unix(), db.now(), ok, detail)
		return err
	})
	if err != nil {
		return fmt.Errorf("record run of %s: %w", job, err)
	}
	return nil
}

// LastRuns returns the latest run of each job.
func (db *DB) LastRuns(ctx context.Context) ([]Run, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT job, started_at, finished_at, ok, detail FROM runs
		WHERE id IN (SELECT max(id) FROM runs GROUP BY job) ORDER BY job`)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	defer rows.Close()
	runs := []Run{}
	for rows.Next() {
		var r Run
		var started, finished int64
		if err := rows.Scan(&r.Job, &started, &finished, &r.OK, &r.Detail); err != nil {
			return nil, fmt.Errorf("last runs: %w", err)
		}
		r.StartedAt, r.FinishedAt = time.Unix(started, 0).UTC(), time.Unix(finished, 0).UTC()
		runs = append(runs, r)
	}
	return runs, rows.Err()
}

// LastSuccess returns when the job last finished well, or the zero time.
func (db *DB) LastSuccess(ctx context.Context, job string) (time.Time, error) {
	var t sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT max(started_at) FROM runs WHERE job = ? AND ok = 1`, job).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("last success of %s: %w", job, err)
	}
	if !t.Valid {
		return time.Time{}, nil
	}
	return time.Unix(t.Int64, 0).UTC(), nil
}
