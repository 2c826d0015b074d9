package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of outgoing mail. Invitations live in the invitations table; the
// mail that follows them lives in messages. Both are one outbox with one
// state machine.
const (
	KindInvitation = "invitation"
	KindReminder   = "reminder"
	KindThanks     = "thanks"
	KindAlert      = "alert"
)

// Outgoing is a claimed piece of mail with what its email needs.
type Outgoing struct {
	Kind         string
	ID           int64 // in its table
	InvitationID int64 // the invitation it is, or follows
	Token        string
	Email        string
	CustomerName string
	StoreCode    string
	StoreName    string
	TimeZone     string
	PurchasedAt  time.Time
	Attempts     int
	ExpiresAt    time.Time
	PromoCode    string // thanks
}

func table(kind string) string {
	if kind == KindInvitation {
		return "invitations"
	}
	return "messages"
}

// ExpireInvitations marks planned mail whose send-by time has passed as
// expired and returns how many.
func (db *DB) ExpireInvitations(ctx context.Context) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = updateMail(ctx, tx, `UPDATE %s SET status = 'expired' WHERE status = 'planned' AND expires_at <= ?`, db.now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire mail: %w", err)
	}
	return n, nil
}

// BeginSending marks a send run as under way and, if the last one did not
// end with everything settled (EndSending), recovers what it left: mail
// left in "sending" becomes "unknown" (the server may have accepted it, so
// it is reported, never sent again) and claims that never started are
// released. Only one sender runs per database (the instance lock), so
// nothing else holds a lease. A run that ended cleanly left nothing, and
// the look (a scan of both outbox tables) is skipped.
func (db *DB) BeginSending(ctx context.Context) (recovered int64, err error) {
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var running int
		if err := tx.QueryRowContext(ctx, `SELECT running FROM send_state`).Scan(&running); err != nil {
			return err
		}
		if running != 0 {
			if _, err := updateMail(ctx, tx, `UPDATE %s SET lease_until = NULL WHERE lease_until IS NOT NULL`); err != nil {
				return err
			}
			var err error
			recovered, err = updateMail(ctx, tx, `UPDATE %s SET status = 'unknown',
				last_error = 'in flight when the sender stopped' WHERE status = 'sending'`)
			if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE send_state SET running = 1`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("recover in-flight mail: %w", err)
	}
	return recovered, nil
}

// EndSending records that the send run ended with every piece it started
// settled. A claim whose release failed stays leased only until its lease
// runs out, which ClaimDue already allows for.
func (db *DB) EndSending(ctx context.Context) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE send_state SET running = 0`)
		return err
	})
	if err != nil {
		return fmt.Errorf("end the send run: %w", err)
	}
	return nil
}

// updateMail runs an UPDATE (with %s for the table) on both mail tables,
// invitations and the messages that follow them, and returns the rows
// it changed.
func updateMail(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	var n int64
	for _, t := range []string{"invitations", "messages"} {
		res, err := tx.ExecContext(ctx, fmt.Sprintf(query, t), args...)
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// leaseTime is how long a claim keeps other runs off a piece of mail.
const leaseTime = 10 * time.Minute

// ClaimDue leases up to limit due pieces of mail and returns them:
// invitations first, then the mail that follows them. They stay planned;
// Start marks each as sending right before its SMTP transaction, and
// Release gives back one that will not be sent now. A thank-you gets its
// promo code here, once: a retry sends the same code.
func (db *DB) ClaimDue(ctx context.Context, limit int) ([]Outgoing, error) {
	var out []Outgoing
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		scan := func(query string, args ...any) error {
			rows, err := tx.QueryContext(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var o Outgoing
				var at, exp int64
				var promo sql.NullString
				if err := rows.Scan(&o.Kind, &o.ID, &o.InvitationID, &o.Token, &o.Email, &o.CustomerName, &o.StoreCode, &o.StoreName,
					&o.TimeZone, &at, &o.Attempts, &exp, &promo); err != nil {
					return err
				}
				o.PurchasedAt, o.ExpiresAt, o.PromoCode = time.Unix(at, 0).UTC(), time.Unix(exp, 0).UTC(), promo.String
				o.Attempts++
				out = append(out, o)
			}
			return rows.Err()
		}
		err := scan(`
			SELECT 'invitation', i.id, i.id, i.token, i.email, coalesce(c.name, ''), i.store_code, coalesce(s.name, ''),
			       coalesce(s.timezone, ''), i.purchased_at, i.attempts, i.expires_at, NULL
			FROM invitations i
			LEFT JOIN customers c ON c.code = i.customer_code
			LEFT JOIN stores s ON s.code = i.store_code
			WHERE i.status = 'planned' AND i.due_at <= ? AND i.expires_at > ? AND i.email <> ''
			  AND (i.lease_until IS NULL OR i.lease_until < ?)
			ORDER BY i.due_at, i.id LIMIT ?`, now, now, now, limit)
		if err != nil {
			return err
		}
		if rest := limit - len(out); rest > 0 {
			err = scan(`
				SELECT m.kind, m.id, i.id, i.token, m.email, coalesce(c.name, ''), i.store_code, coalesce(s.name, ''),
				       coalesce(s.timezone, ''), i.purchased_at, m.attempts, m.expires_at, m.promo_code
				FROM messages m
				JOIN invitations i ON i.id = m.invitation_id
				LEFT JOIN customers c ON c.code = i.customer_code
				LEFT JOIN stores s ON s.code = i.store_code
				WHERE m.status = 'planned' AND m.due_at <= ? AND m.expires_at > ? AND m.email <> ''
				  AND (m.lease_until IS NULL OR m.lease_until < ?)
				ORDER BY m.due_at, m.id LIMIT ?`, now, now, now, rest)
			if err != nil {
				return err
			}
		}
		// The leases go in one statement a table, the ids as a JSON array.
		ids := map[string][]int64{}
		for i := range out {
			o := &out[i]
			if o.Kind == KindThanks && o.PromoCode == "" {
				code, err := issuePromoCode(ctx, tx, o.ID, now)
				if err != nil {
					return err
				}
				o.PromoCode = code
			}
			ids[table(o.Kind)] = append(ids[table(o.Kind)], o.ID)
		}
		for t, list := range ids {
			js, err := json.Marshal(list)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE `+t+` SET lease_until = ? WHERE id IN (SELECT value FROM json_each(?))`,
				now+int64(leaseTime/time.Second), string(js)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due mail: %w", err)
	}
	return out, nil
}

// issuePromoCode gives a thank-you message a code from 1C's file, or a
// new unique one when the file's codes are used up.
func issuePromoCode(ctx context.Context, tx *sql.Tx, messageID, now int64) (string, error) {
	var code string
	err := tx.QueryRowContext(ctx, `SELECT code FROM promo_codes WHERE issued_at IS NULL ORDER BY added_at, code LIMIT 1`).Scan(&code)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		for range 10 {
			code = generateCode()
			res, err := tx.ExecContext(ctx, `INSERT INTO promo_codes (code, origin, added_at) VALUES (?, 'generated', ?)
				ON CONFLICT DO NOTHING`, code, now)
			if err != nil {
				return "", err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				break
			}
			code = ""
		}
		if code == "" {
			return "", errors.New("could not generate a unique promo code")
		}
	case err != nil:
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE promo_codes SET issued_at = ?, message_id = ? WHERE code = ?`, now, messageID, code); err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, `UPDATE messages SET promo_code = ? WHERE id = ?`, code, messageID)
	return code, err
}

// generateCode returns a code like "OTK-7KQ2-M9XD": no 0/O or 1/I, so
// that it can be read off a phone screen and typed at a till.
func generateCode() string {
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	b := make([]byte, 8)
	rand.Read(b)
	var sb strings.Builder
	sb.WriteString("OTK-")
	for i, c := range b {
		if i == 4 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}

// Start marks a claimed piece of mail as sending, right before its SMTP
// transaction. It reports false if the mail is no longer planned (it
// expired, or the address was erased), and then it must not be sent.
func (db *DB) Start(ctx context.Context, o Outgoing) (bool, error) {
	ok, err := db.Apply(ctx, []Step{{O: o, Status: InvSending}})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// Release gives back a claimed piece of mail that was not started.
func (db *DB) Release(ctx context.Context, o Outgoing) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE `+table(o.Kind)+` SET lease_until = NULL WHERE id = ? AND status = 'planned'`, o.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("release %s %d: %w", o.Kind, o.ID, err)
	}
	return nil
}

// MarkSent records that the server accepted the mail.
func (db *DB) MarkSent(ctx context.Context, o Outgoing, messageID string) error {
	_, err := db.Apply(ctx, []Step{{O: o, Status: InvSent, MessageID: messageID}})
	return err
}

// MarkFailed settles claimed mail that was not sent. status is InvPlanned
// with retryAt for a temporary failure, InvBounced for a permanent
// refusal of the address (which is then suppressed), InvFailed or
// InvUnknown otherwise.
func (db *DB) MarkFailed(ctx context.Context, o Outgoing, status string, retryAt time.Time, reason string) error {
	_, err := db.Apply(ctx, []Step{{O: o, Status: status, RetryAt: retryAt, Reason: reason}})
	return err
}

// DueTimes returns the distinct times at which planned mail falls due,
// earliest first.
func (db *DB) DueTimes(ctx context.Context) ([]time.Time, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT due_at FROM invitations WHERE status = 'planned'
		UNION SELECT due_at FROM messages WHERE status = 'planned' ORDER BY 1`)
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

// Unanswered is a sent invitation that got no answer.
type Unanswered struct {
	InvitationID int64
	Email        string
	TimeZone     string
	SentAt       time.Time
}

// Unanswered returns invitations sent in [from, to) that got no answer
// and no reminder, to an address that may still be mailed.
func (db *DB) Unanswered(ctx context.Context, from, to time.Time) ([]Unanswered, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT i.id, i.email, coalesce(s.timezone, ''), i.sent_at
		FROM invitations i LEFT JOIN stores s ON s.code = i.store_code
		WHERE i.status = 'sent' AND i.sent_at >= ? AND i.sent_at < ? AND i.email <> ''
		  AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.invitation_id = i.id)
		  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.invitation_id = i.id AND m.kind = 'reminder')
		  AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email = i.email)
		ORDER BY i.sent_at`, from.UTC().Unix(), to.UTC().Unix())
	if err != nil {
		return nil, fmt.Errorf("unanswered invitations: %w", err)
	}
	defer rows.Close()
	var out []Unanswered
	for rows.Next() {
		var u Unanswered
		var sent int64
		if err := rows.Scan(&u.InvitationID, &u.Email, &u.TimeZone, &sent); err != nil {
			return nil, fmt.Errorf("unanswered invitations: %w", err)
		}
		u.SentAt = time.Unix(sent, 0).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// NewMessage is mail about to be queued after an invitation.
type NewMessage struct {
	Kind         string
	InvitationID int64
	Email        string
	DueAt        time.Time
	Expires      time.Time
}

// AddMessages queues mail; a message of the same kind for the same
// invitation and address is never queued twice. It returns how many
// were added.
func (db *DB) AddMessages(ctx context.Context, msgs []NewMessage) (int, error) {
	added := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range msgs {
			n, err := addMessage(ctx, tx, m, db.now())
			if err != nil {
				return err
			}
			added += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue mail: %w", err)
	}
	return added, nil
}

func addMessage(ctx context.Context, tx *sql.Tx, m NewMessage, now int64) (int, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO messages (kind, invitation_id, email, status, created_at, due_at, expires_at)
		VALUES (?, ?, ?, 'planned', ?, ?, ?) ON CONFLICT DO NOTHING`,
		m.Kind, m.InvitationID, m.Email, now, m.DueAt.UTC().Unix(), m.Expires.UTC().Unix())
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// UnknownRecipients returns the addresses of invitations whose fate is
// unknown: in flight when a sender died.
func (db *DB) UnknownRecipients(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT email FROM invitations WHERE status = 'unknown'`)
	if err != nil {
		return nil, fmt.Errorf("unknown recipients: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("unknown recipients: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// applyQueries are the statements of Apply for each table: start, sent,
// failed.
var applyQueries = map[string][3]string{"invitations": outboxUpdates("invitations"), "messages": outboxUpdates("messages")}

func outboxUpdates(t string) [3]string {
	return [3]string{
		`UPDATE ` + t + ` SET status = 'sending', attempts = ?, lease_until = NULL
			WHERE id = ? AND status = 'planned' AND email <> ''`,
		`UPDATE ` + t + ` SET status = 'sent', sent_at = ?, message_id = ?, last_error = ''
			WHERE id = ? AND status = 'sending'`,
		`UPDATE ` + t + ` SET status = ?, due_at = max(due_at, ?), last_error = ?
			WHERE id = ? AND status = 'sending'`,
	}
}

// Step is one change to the outbox, applied with others in one
// transaction by Apply.
type Step struct {
	O Outgoing
	// Status is InvSending for a start (see Start), InvSent, or a failure
	// status as for MarkFailed.
	Status    string
	RetryAt   time.Time // with InvPlanned
	Reason    string    // with a failure
	MessageID string    // with InvSent
}

// Apply applies steps in one transaction (group commit: a sender with
// many connections commits once for all of them). For each start step it
// reports whether the mail may be sent, as Start does.
func (db *DB) Apply(ctx context.Context, steps []Step) ([]bool, error) {
	ok := make([]bool, len(steps))
	now := db.now()
	// Statements are prepared before the transaction: the writer has one
	// connection, which the transaction holds.
	stmts := map[string]*sql.Stmt{}
	for _, qs := range applyQueries {
		for _, q := range qs {
			st, err := db.prepared(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("record outbox steps: %w", err)
			}
			stmts[q] = st
		}
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		inTx := map[string]*sql.Stmt{} // each statement bound to tx once
		exec := func(query string, args ...any) (int64, error) {
			st, found := inTx[query]
			if !found {
				if st, found = stmts[query]; !found {
					return 0, fmt.Errorf("statement not prepared: %s", query)
				}
				st = tx.StmtContext(ctx, st)
				inTx[query] = st
			}
			res, err := st.ExecContext(ctx, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		}
		for i, s := range steps {
			q := applyQueries[table(s.O.Kind)]
			switch s.Status {
			case InvSending:
				n, err := exec(q[0], s.O.Attempts, s.O.ID)
				if err != nil {
					return err
				}
				ok[i] = n == 1
			case InvSent:
				if _, err := exec(q[1], now, s.MessageID, s.O.ID); err != nil {
					return err
				}
			default:
				due := s.RetryAt.UTC().Unix()
				if s.Status != InvPlanned {
					due = now
				}
				if _, err := exec(q[2], s.Status, due, s.Reason, s.O.ID); err != nil {
					return err
				}
				if s.Status == InvBounced {
					if err := suppress(ctx, tx, s.O.Email, "bounced", now); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record outbox steps: %w", err)
	}
	return ok, nil
}
