package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Invitation statuses in the outbox.
const (
	InvPlanned = "planned"
	InvSending = "sending"
	InvSent    = "sent"
	InvFailed  = "failed"
	InvBounced = "bounced"
	InvUnknown = "unknown"
	InvExpired = "expired"
)

// Candidate is a receipt that may be surveyed: it has a customer with a
// valid, consenting, unsuppressed email, holds no return line and has no
// invitation yet.
type Candidate struct {
	StoreCode, Receipt string
	At                 time.Time // the receipt's first line
	CustomerCode       string
	Email              string
	TimeZone           string // the store's, or "" if the store is unknown
}

// candidatesQuery lists the eligible receipts of [?1, ?2) whose email got
// no invitation planned at or after ?3.
var candidatesQuery = `
	SELECT g.store_code, g.receipt, g.at, g.customer_code, g.email, coalesce(s.timezone, '')
	FROM (
		SELECT p.store_code, p.receipt, min(p.at) AS at, p.customer_code, c.email
		FROM ` + linesIn("p") + `
		CROSS JOIN customers c ON c.code = p.customer_code
		WHERE ` + linesAt("p") + ` AND p.customer_code <> ''
		  AND c.email IS NOT NULL AND c.consent = 1 AND c.forgotten = 0
		GROUP BY p.store_code, p.receipt
		HAVING min(p.qty_milli) > 0
	) g
	LEFT JOIN stores s ON s.code = g.store_code
	WHERE NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email = g.email)
	  AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.store_code = g.store_code AND i.receipt = g.receipt)
	  AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.email = g.email AND i.planned_at >= ?)
	ORDER BY g.at DESC`

// Candidates returns the receipts bought in [from, to) that pass the
// eligibility rules that live in data: customer card with an email and
// consent, not suppressed, no return line, not invited, and no invitation
// to the same email planned at or after cooldownSince.
func (db *DB) Candidates(ctx context.Context, from, to, cooldownSince time.Time) ([]Candidate, error) {
	rows, err := db.read.QueryContext(ctx, candidatesQuery,
		from.UTC().Unix(), to.UTC().Unix(), cooldownSince.UTC().Unix())
	if err != nil {
		return nil, fmt.Errorf("list candidates: %w", err)
	}
	defer rows.Close()
	var out []Candidate
	for rows.Next() {
		var c Candidate
		var at int64
		if err := rows.Scan(&c.StoreCode, &c.Receipt, &at, &c.CustomerCode, &c.Email, &c.TimeZone); err != nil {
			return nil, fmt.Errorf("list candidates: %w", err)
		}
		c.At = time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list candidates: %w", err)
	}
	return db.dropForgotten(ctx, out)
}

// dropForgotten removes candidates whose address was erased on request and
// has come back on another card.
func (db *DB) dropForgotten(ctx context.Context, cs []Candidate) ([]Candidate, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM suppressions WHERE reason = 'forgotten'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("list candidates: %w", err)
	}
	if n == 0 {
		return cs, nil
	}
	out := cs[:0]
	for _, c := range cs {
		var one int
		err := db.read.QueryRowContext(ctx, `SELECT 1 FROM suppressions WHERE email = ?`, hashedEmail(c.Email)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			out = append(out, c)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list candidates: %w", err)
		}
	}
	return out, nil
}

func hashedEmail(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NewInvitation is an invitation about to be planned.
type NewInvitation struct {
	Candidate
	Token   string
	DueAt   time.Time
	Expires time.Time
}

// AddInvitations inserts planned invitations in one transaction and
// returns how many were added. An invitation is skipped if its receipt is
// already invited or its email got one at or after cooldownSince (this
// also keeps two receipts of one person in the same plan to one survey).
func (db *DB) AddInvitations(ctx context.Context, invs []NewInvitation, cooldownSince time.Time) (int, error) {
	added := 0
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO invitations
			(token, email, customer_code, store_code, receipt, purchased_at, status, planned_at, due_at, expires_at)
			SELECT ?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM invitations WHERE email = ? AND planned_at >= ?)
			ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, in := range invs {
			res, err := st.ExecContext(ctx, in.Token, in.Email, in.CustomerCode, in.StoreCode, in.Receipt,
				in.At.UTC().Unix(), now, in.DueAt.UTC().Unix(), in.Expires.UTC().Unix(),
				in.Email, cooldownSince.UTC().Unix())
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("add invitations: %w", err)
	}
	return added, nil
}

func suppress(ctx context.Context, tx *sql.Tx, email, reason string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)
		ON CONFLICT (email) DO NOTHING`, email, reason, now)
	return err
}

// Suppress takes an address out of every later survey.
func (db *DB) Suppress(ctx context.Context, email, reason string) error {
	if err := db.tx(ctx, func(tx *sql.Tx) error { return suppress(ctx, tx, email, reason, db.now()) }); err != nil {
		return fmt.Errorf("suppress address: %w", err)
	}
	return nil
}

// StoreStats are a store's survey figures that sampling needs.
type StoreStats struct {
	AnsweredMonth int // answers since the start of the month
	Sent30        int // invitations sent in the last 30 days
	Answered30    int // of those, answered
	PlannedToday  int // invitations planned since the start of the day
}

// StoreSurveyStats returns each store's figures for sampling.
func (db *DB) StoreSurveyStats(ctx context.Context, monthStart, dayStart, since30 time.Time) (map[string]StoreStats, error) {
	out := map[string]StoreStats{}
	queries := []struct {
		query string
		arg   int64
		set   func(*StoreStats, int)
	}{
		{`SELECT store_code, count(*), 0 FROM responses WHERE created_at >= ? GROUP BY store_code`,
			monthStart.UTC().Unix(), func(s *StoreStats, n int) { s.AnsweredMonth = n }},
		{`SELECT store_code, count(*), 0 FROM invitations WHERE planned_at >= ? GROUP BY store_code`,
			dayStart.UTC().Unix(), func(s *StoreStats, n int) { s.PlannedToday = n }},
	}
	for _, q := range queries {
		if err := db.eachStoreCount(ctx, q.query, q.arg, func(code string, n, _ int) {
			s := out[code]
			q.set(&s, n)
			out[code] = s
		}); err != nil {
			return nil, err
		}
	}
	err := db.eachStoreCount(ctx, `SELECT i.store_code, count(*), count(r.id) FROM invitations i
		LEFT JOIN responses r ON r.invitation_id = i.id WHERE i.sent_at >= ? GROUP BY i.store_code`,
		since30.UTC().Unix(), func(code string, sent, answered int) {
			s := out[code]
			s.Sent30, s.Answered30 = sent, answered
			out[code] = s
		})
	return out, err
}

func (db *DB) eachStoreCount(ctx context.Context, query string, arg int64, fn func(code string, a, b int)) error {
	rows, err := db.read.QueryContext(ctx, query, arg)
	if err != nil {
		return fmt.Errorf("store survey stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		var a, b int
		if err := rows.Scan(&code, &a, &b); err != nil {
			return fmt.Errorf("store survey stats: %w", err)
		}
		fn(code, a, b)
	}
	return rows.Err()
}

// reasonsQuery counts the receipts of [?1, ?2) by reason, ?3 being the
// max-age cut and ?4 the cooldown's start.
var reasonsQuery = `
	WITH r AS (
		SELECT store_code, receipt, min(at) AS at, customer_code AS cc, min(qty_milli) AS minq
		FROM ` + linesIn("p") + ` WHERE ` + linesAt("p") + ` GROUP BY store_code, receipt)
	SELECT CASE
		WHEN r.cc = '' THEN 'anonymous'
		WHEN r.minq < 0 THEN 'return'
		WHEN c.code IS NULL THEN 'unknown_customer'
		WHEN c.email IS NULL THEN 'no_email'
		WHEN c.consent = 0 THEN 'no_consent'
		WHEN EXISTS (SELECT 1 FROM invitations i WHERE i.store_code = r.store_code AND i.receipt = r.receipt) THEN 'already_invited'
		WHEN r.at < ? THEN 'too_old'
		WHEN EXISTS (SELECT 1 FROM suppressions x WHERE x.email = c.email) THEN 'suppressed'
		WHEN EXISTS (SELECT 1 FROM invitations i WHERE i.email = c.email AND i.planned_at >= ?) THEN 'cooldown'
		ELSE 'eligible' END AS reason, count(*)
	FROM r LEFT JOIN customers c ON c.code = r.cc GROUP BY reason`

// Reasons classifies the receipts bought in [from, to) by why they would
// or would not be surveyed: anonymous, return, unknown_customer,
// no_email, no_consent, already_invited, too_old (bought before
// maxAgeCut), suppressed, cooldown (the email got a survey at or after
// cooldownSince), or eligible.
func (db *DB) Reasons(ctx context.Context, from, to, maxAgeCut, cooldownSince time.Time) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, reasonsQuery,
		from.UTC().Unix(), to.UTC().Unix(), maxAgeCut.UTC().Unix(), cooldownSince.UTC().Unix())
	if err != nil {
		return nil, fmt.Errorf("plan reasons: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var reason string
		var n int
		if err := rows.Scan(&reason, &n); err != nil {
			return nil, fmt.Errorf("plan reasons: %w", err)
		}
		out[reason] = n
	}
	return out, rows.Err()
}
