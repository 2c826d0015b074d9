package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ExportedAnswer is an answer as 1C imports it.
type ExportedAnswer struct {
	At                           time.Time
	StoreCode, Receipt, Customer string
	Rating                       int
	NPS                          *int
	Good, Bad                    []string // categories
	Comment                      string
}

// AnswersIn returns the answers received in p.
func (db *DB) AnswersIn(ctx context.Context, p Period) ([]ExportedAnswer, error) {
	from, to := p.args()
	rows, err := db.read.QueryContext(ctx, `
		SELECT r.created_at, r.store_code, i.receipt, i.customer_code, r.rating, r.nps, r.comment,
		       coalesce((SELECT group_concat(category, ',') FROM response_categories c
		                 WHERE c.response_id = r.id AND c.tone = 'positive'), ''),
		       coalesce((SELECT group_concat(category, ',') FROM response_categories c
		                 WHERE c.response_id = r.id AND c.tone = 'negative'), '')
		FROM responses r JOIN invitations i ON i.id = r.invitation_id
		WHERE r.created_at >= ? AND r.created_at < ? ORDER BY r.created_at, r.id`, from, to)
	if err != nil {
		return nil, fmt.Errorf("answers to export: %w", err)
	}
	defer rows.Close()
	var out []ExportedAnswer
	for rows.Next() {
		var a ExportedAnswer
		var at int64
		var nps sql.NullInt64
		var good, bad string
		if err := rows.Scan(&at, &a.StoreCode, &a.Receipt, &a.Customer, &a.Rating, &nps, &a.Comment, &good, &bad); err != nil {
			return nil, fmt.Errorf("answers to export: %w", err)
		}
		a.At = time.Unix(at, 0).UTC()
		if nps.Valid {
			n := int(nps.Int64)
			a.NPS = &n
		}
		a.Good, a.Bad = splitList(good), splitList(bad)
		out = append(out, a)
	}
	return out, rows.Err()
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// IssuedCode is a promo code sent to a customer.
type IssuedCode struct {
	At       time.Time
	Customer string
	Email    string
	Code     string
}

// CodesIssuedIn returns the promo codes sent in p.
func (db *DB) CodesIssuedIn(ctx context.Context, p Period) ([]IssuedCode, error) {
	from, to := p.args()
	rows, err := db.read.QueryContext(ctx, `
		SELECT m.sent_at, i.customer_code, m.email, m.promo_code
		FROM messages m JOIN invitations i ON i.id = m.invitation_id
		WHERE m.kind = 'thanks' AND m.status = 'sent' AND m.sent_at >= ? AND m.sent_at < ?
		ORDER BY m.sent_at, m.id`, from, to)
	if err != nil {
		return nil, fmt.Errorf("promo codes to export: %w", err)
	}
	defer rows.Close()
	var out []IssuedCode
	for rows.Next() {
		var c IssuedCode
		var at int64
		if err := rows.Scan(&at, &c.Customer, &c.Email, &c.Code); err != nil {
			return nil, fmt.Errorf("promo codes to export: %w", err)
		}
		c.At = time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// Unsubscribe is an address that asked for no more mail, or bounced.
type Unsubscribe struct {
	At        time.Time
	Email     string
	Customers []string // the 1C cards with that address
	Reason    string   // unsubscribed or bounced
}

// UnsubscribesIn returns the addresses suppressed in p (erased ones are
// not exported: their address is gone).
func (db *DB) UnsubscribesIn(ctx context.Context, p Period) ([]Unsubscribe, error) {
	from, to := p.args()
	rows, err := db.read.QueryContext(ctx, `
		SELECT s.created_at, s.email, s.reason,
		       coalesce((SELECT group_concat(code, ',') FROM customers c WHERE c.email = s.email), '')
		FROM suppressions s
		WHERE s.reason IN ('unsubscribed', 'bounced') AND s.created_at >= ? AND s.created_at < ?
		ORDER BY s.created_at, s.email`, from, to)
	if err != nil {
		return nil, fmt.Errorf("unsubscribes to export: %w", err)
	}
	defer rows.Close()
	var out []Unsubscribe
	for rows.Next() {
		var u Unsubscribe
		var at int64
		var codes string
		if err := rows.Scan(&at, &u.Email, &u.Reason, &codes); err != nil {
			return nil, fmt.Errorf("unsubscribes to export: %w", err)
		}
		u.At, u.Customers = time.Unix(at, 0).UTC(), splitList(codes)
		out = append(out, u)
	}
	return out, rows.Err()
}

// LastExport returns the last day exported, or "" if none.
func (db *DB) LastExport(ctx context.Context) (string, error) {
	var day sql.NullString
	err := db.read.QueryRowContext(ctx, `SELECT max(day) FROM exports`).Scan(&day)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("last export: %w", err)
	}
	return day.String, nil
}

// MarkExported records that a day was exported.
func (db *DB) MarkExported(ctx context.Context, day string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO exports (day, done_at) VALUES (?, ?)
			ON CONFLICT (day) DO UPDATE SET done_at = excluded.done_at`, day, db.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("mark %s exported: %w", day, err)
	}
	return nil
}
