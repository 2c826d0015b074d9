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

// Candidates returns the receipts bought in [from, to) that pass the
// eligibility rules that live in data: customer card with an email and
// consent, not suppressed, no return line, not invited, and no invitation
// to the same email planned at or after cooldownSince.
func (db *DB) Candidates(ctx context.Context, from, to, cooldownSince time.Time) ([]Candidate, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT g.store_code, g.receipt, g.at, g.customer_code, g.email, coalesce(s.timezone, '')
		FROM (
			SELECT p.store_code, p.receipt, min(p.at) AS at, p.customer_code, c.email
			FROM purchase_lines p
			JOIN customers c ON c.code = p.customer_code
			WHERE p.at >= ? AND p.at < ? AND p.customer_code <> ''
			  AND c.email IS NOT NULL AND c.consent = 1 AND c.forgotten = 0
			GROUP BY p.store_code, p.receipt
			HAVING min(p.qty_milli) > 0
		) g
		LEFT JOIN stores s ON s.code = g.store_code
		WHERE NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email = g.email)
		  AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.store_code = g.store_code AND i.receipt = g.receipt)
		  AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.email = g.email AND i.planned_at >= ?)
		ORDER BY g.at DESC`,
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

// Outgoing is a claimed invitation with what its email needs.
type Outgoing struct {
	ID           int64
	Token        string
	Email        string
	CustomerName string
	StoreCode    string
	StoreName    string
	TimeZone     string
	PurchasedAt  time.Time
	Attempts     int
	ExpiresAt    time.Time
}

// ExpireInvitations marks planned invitations whose send-by time has
// passed as expired and returns how many.
func (db *DB) ExpireInvitations(ctx context.Context) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE invitations SET status = 'expired'
			WHERE status = 'planned' AND expires_at <= ?`, db.now())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire invitations: %w", err)
	}
	return n, nil
}

// RecoverInFlight marks invitations left in "sending" by a process that
// died as "unknown": the server may have accepted them, so they are
// reported, never sent again.
func (db *DB) RecoverInFlight(ctx context.Context) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE invitations SET status = 'unknown',
			last_error = 'in flight when the sender stopped' WHERE status = 'sending'`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("recover in-flight invitations: %w", err)
	}
	return n, nil
}

// ClaimDue moves up to limit due invitations from planned to sending and
// returns them. The caller must settle each with MarkSent or MarkFailed.
func (db *DB) ClaimDue(ctx context.Context, limit int) ([]Outgoing, error) {
	var out []Outgoing
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT i.id, i.token, i.email, coalesce(c.name, ''), i.store_code, coalesce(s.name, ''),
			       coalesce(s.timezone, ''), i.purchased_at, i.attempts, i.expires_at
			FROM invitations i
			LEFT JOIN customers c ON c.code = i.customer_code
			LEFT JOIN stores s ON s.code = i.store_code
			WHERE i.status = 'planned' AND i.due_at <= ? AND i.expires_at > ?
			ORDER BY i.due_at, i.id LIMIT ?`, now, now, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var o Outgoing
			var at, exp int64
			if err := rows.Scan(&o.ID, &o.Token, &o.Email, &o.CustomerName, &o.StoreCode, &o.StoreName,
				&o.TimeZone, &at, &o.Attempts, &exp); err != nil {
				rows.Close()
				return err
			}
			o.PurchasedAt, o.ExpiresAt = time.Unix(at, 0).UTC(), time.Unix(exp, 0).UTC()
			o.Attempts++
			out = append(out, o)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, o := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE invitations SET status = 'sending', attempts = ?
				WHERE id = ?`, o.Attempts, o.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due invitations: %w", err)
	}
	return out, nil
}

// MarkSent records that the server accepted the message.
func (db *DB) MarkSent(ctx context.Context, id int64, messageID string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE invitations SET status = 'sent', sent_at = ?, message_id = ?,
			last_error = '' WHERE id = ? AND status = 'sending'`, db.now(), messageID, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark invitation %d sent: %w", id, err)
	}
	return nil
}

// MarkFailed settles a claimed invitation that was not sent. status is
// InvPlanned with retryAt for a temporary failure, InvBounced for a
// permanent refusal of the address (which is then suppressed), InvFailed
// or InvUnknown otherwise.
func (db *DB) MarkFailed(ctx context.Context, id int64, status string, retryAt time.Time, reason string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM invitations WHERE id = ?`, id).Scan(&email); err != nil {
			return err
		}
		due := retryAt.UTC().Unix()
		if status != InvPlanned {
			due = db.now()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invitations SET status = ?, due_at = max(due_at, ?), last_error = ?
			WHERE id = ? AND status = 'sending'`, status, due, reason, id); err != nil {
			return err
		}
		if status == InvBounced {
			return suppress(ctx, tx, email, "bounced", db.now())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark invitation %d %s: %w", id, status, err)
	}
	return nil
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

// DueTimes returns the distinct times at which planned invitations fall
// due, earliest first.
func (db *DB) DueTimes(ctx context.Context) ([]time.Time, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT due_at FROM invitations WHERE status = 'planned' ORDER BY due_at`)
	if err != nil {
		return nil, fmt.Errorf("due times: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var t int64
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("due times: %w", err)
		}
		out = append(out, time.Unix(t, 0).UTC())
	}
	return out, rows.Err()
}
