package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Survey is what the survey page needs to know about a token.
type Survey struct {
	InvitationID int64
	Status       string
	StoreCode    string
	StoreName    string
	TimeZone     string
	PurchasedAt  time.Time
	Answered     bool
	Opened       bool // the survey page was shown before
}

// SurveyByToken returns the invitation behind a survey token, or
// ErrNotFound.
func (db *DB) SurveyByToken(ctx context.Context, token string) (Survey, error) {
	var s Survey
	var at int64
	var answered int
	err := db.read.QueryRowContext(ctx, `
		SELECT i.id, i.status, i.store_code, coalesce(st.name, ''), coalesce(st.timezone, ''), i.purchased_at,
		       EXISTS (SELECT 1 FROM responses r WHERE r.invitation_id = i.id), i.opened_at IS NOT NULL
		FROM invitations i LEFT JOIN stores st ON st.code = i.store_code
		WHERE i.token = ?`, token).Scan(&s.InvitationID, &s.Status, &s.StoreCode, &s.StoreName, &s.TimeZone, &at, &answered, &s.Opened)
	if errors.Is(err, sql.ErrNoRows) {
		return Survey{}, ErrNotFound
	}
	if err != nil {
		return Survey{}, fmt.Errorf("survey by token: %w", err)
	}
	s.PurchasedAt = time.Unix(at, 0).UTC()
	s.Answered = answered == 1
	return s, nil
}

// MarkOpened records the first time a survey was opened from its email.
func (db *DB) MarkOpened(ctx context.Context, invitationID int64) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE invitations SET opened_at = ? WHERE id = ? AND opened_at IS NULL`,
			db.now(), invitationID)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark survey opened: %w", err)
	}
	return nil
}

// Feedback is one category with its tone in an answer.
type Feedback struct {
	Category string // service, assortment, prices, comfort, other
	Tone     string // positive or negative
}

// Response is a customer's answer to a survey.
type Response struct {
	Rating   int  // CSI, 1..5
	NPS      *int // 0..10, nil if not given
	Comment  string
	Feedback []Feedback
	// ThanksWithin, if set, queues a thank-you with a promo code, to be
	// sent at once and dropped if it cannot go out within this time.
	ThanksWithin time.Duration
	// AlertTo, if set, queues an alert about this answer to each
	// address (the store's director, the configured groups), at once.
	AlertTo []string
}

// AddResponse stores the answer for a token. It returns ErrNotFound for an
// unknown token and ErrConflict if the survey was already answered or its
// invitation was never sent.
//
// Answers are group-committed: the answers that arrive while a
// transaction is being written go into the next one, each under its own
// savepoint, so that many customers answering during an ingest wait for
// the single writer once per batch instead of once each. AddResponse
// returns when its answer is on disk.
func (db *DB) AddResponse(ctx context.Context, token string, r Response) (int64, error) {
	req := &answerReq{token: token, r: r, done: make(chan struct{})}
	if !db.answers.queue(req) {
		return 0, errors.New("add response: database closed")
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		// The answer may still be committed: the customer is told to try
		// again and is then told the survey was answered.
		return 0, fmt.Errorf("add response: %w", ctx.Err())
	}
	if req.err != nil {
		if errors.Is(req.err, ErrNotFound) || errors.Is(req.err, ErrConflict) {
			return 0, req.err
		}
		return 0, fmt.Errorf("add response: %w", req.err)
	}
	return req.id, nil
}

// maxAnswerBatch bounds the answers of one transaction, and so the time
// it holds the writer.
const maxAnswerBatch = 256

type answerReq struct {
	token string
	r     Response
	id    int64
	err   error
	done  chan struct{}
}

// committer writes queued answers with group commit. It runs while there
// is something to write and stops by itself; Close waits for it.
type committer struct {
	db      *DB
	mu      sync.Mutex
	pending []*answerReq
	running bool
	closed  bool
	idle    sync.WaitGroup
}

func newCommitter(db *DB) *committer { return &committer{db: db} }

// queue adds req to the next batch, starting the writer if it is not
// running; it reports false after close.
func (c *committer) queue(req *answerReq) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.pending = append(c.pending, req)
	if !c.running {
		c.running = true
		c.idle.Add(1)
		go c.run()
	}
	return true
}

func (c *committer) run() {
	defer c.idle.Done()
	for {
		c.mu.Lock()
		n := min(len(c.pending), maxAnswerBatch)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		batch := c.pending[:n:n]
		c.pending = c.pending[n:]
		c.mu.Unlock()
		c.write(batch)
	}
}

// write stores a batch in one transaction. An answer refused (unknown
// token, already answered) rolls back to its savepoint and leaves the
// others; if the transaction itself fails, every answer of the batch gets
// the error and none is stored.
func (c *committer) write(batch []*answerReq) {
	// Not a request's context: the batch belongs to all of them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.db.tx(ctx, func(tx *sql.Tx) error {
		for _, req := range batch {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT answer`); err != nil {
				return err
			}
			req.id, req.err = addResponse(ctx, tx, c.db, req.token, req.r)
			undo := `RELEASE answer`
			if req.err != nil {
				undo = `ROLLBACK TO answer; RELEASE answer`
			}
			if _, err := tx.ExecContext(ctx, undo); err != nil {
				return err
			}
			if req.err != nil && !errors.Is(req.err, ErrNotFound) && !errors.Is(req.err, ErrConflict) {
				return req.err
			}
		}
		return nil
	})
	for _, req := range batch {
		if err != nil {
			req.id, req.err = 0, err
		}
		close(req.done)
	}
}

// close refuses new answers and waits until the queued ones are written.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.idle.Wait()
}

// addResponse stores one answer inside tx.
func addResponse(ctx context.Context, tx *sql.Tx, db *DB, token string, r Response) (int64, error) {
	var invID int64
	var status, store, email string
	err := tx.QueryRowContext(ctx, `SELECT id, status, store_code, email FROM invitations WHERE token = ?`, token).
		Scan(&invID, &status, &store, &email)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	if status != InvSent && status != InvUnknown {
		return 0, ErrConflict
	}
	var nps sql.NullInt64
	if r.NPS != nil {
		nps = sql.NullInt64{Int64: int64(*r.NPS), Valid: true}
	}
	now := db.Now()
	if _, err := tx.ExecContext(ctx, `UPDATE invitations SET opened_at = ? WHERE id = ? AND opened_at IS NULL`,
		now.UTC().Unix(), invID); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO responses (invitation_id, store_code, rating, nps, comment, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (invitation_id) DO NOTHING`,
		invID, store, r.Rating, nps, r.Comment, now.UTC().Unix())
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, ErrConflict
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if len(r.Feedback) > 0 {
		if err := markDirty(ctx, tx, rollupFeedback, now.UTC().Unix()); err != nil {
			return 0, err
		}
	}
	for _, f := range r.Feedback {
		if _, err := tx.ExecContext(ctx, `INSERT INTO response_categories (response_id, category, tone)
			VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, f.Category, f.Tone); err != nil {
			return 0, err
		}
	}
	if r.ThanksWithin > 0 && email != "" {
		if _, err := addMessage(ctx, tx, NewMessage{Kind: KindThanks, InvitationID: invID, Email: email,
			DueAt: now, Expires: now.Add(r.ThanksWithin)}, now.UTC().Unix()); err != nil {
			return 0, err
		}
	}
	for _, to := range r.AlertTo {
		if _, err := addMessage(ctx, tx, NewMessage{Kind: KindAlert, InvitationID: invID, Email: to,
			DueAt: now, Expires: now.Add(48 * time.Hour)}, now.UTC().Unix()); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// UnsubscribeToken suppresses the address that a survey token was sent to.
// It is idempotent; it returns ErrNotFound for an unknown token.
func (db *DB) UnsubscribeToken(ctx context.Context, token string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var email string
		err := tx.QueryRowContext(ctx, `SELECT email FROM invitations WHERE token = ?`, token).Scan(&email)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if email == "" {
			return nil // erased on request: already suppressed by hash
		}
		return suppress(ctx, tx, email, "unsubscribed", db.now())
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return nil
}

// Forget erases a customer's personal data on request: every card with
// that email or phone keeps only its code, invitations lose the address,
// answers stay without anything that names the person, and the address is
// suppressed by its hash so that a later export cannot bring it back into
// a survey. It returns how many cards were erased.
func (db *DB) Forget(ctx context.Context, email, phone string) (int64, error) {
	var n int64
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT code, coalesce(email, '') FROM customers
			WHERE (email = ? AND ? <> '') OR (phone = ? AND ? <> '')`, email, email, phone, phone)
		if err != nil {
			return err
		}
		emails := map[string]bool{}
		if email != "" {
			emails[email] = true
		}
		var codes []string
		for rows.Next() {
			var code, e string
			if err := rows.Scan(&code, &e); err != nil {
				rows.Close()
				return err
			}
			codes = append(codes, code)
			if e != "" {
				emails[e] = true
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, code := range codes {
			if _, err := tx.ExecContext(ctx, `UPDATE customers SET name = NULL, email = NULL, phone = NULL,
				birth_date = NULL, consent = 0, forgotten = 1, updated_at = ? WHERE code = ?`, now, code); err != nil {
				return err
			}
		}
		n = int64(len(codes))
		for e := range emails {
			if _, err := tx.ExecContext(ctx, `UPDATE invitations SET email = '',
				status = CASE status WHEN 'planned' THEN 'expired' ELSE status END WHERE email = ?`, e); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE email = ?`, e); err != nil {
				return err
			}
			if err := suppress(ctx, tx, hashedEmail(e), "forgotten", now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("forget customer: %w", err)
	}
	return n, nil
}

// Answer is what an alert about an answer shows: the store, the purchase,
// the answer and how to reach the customer.
type Answer struct {
	StoreCode, StoreName, TimeZone string
	Receipt                        string
	PurchasedAt                    time.Time
	SumKop                         int64
	Rating                         int
	NPS                            *int
	Comment                        string
	Feedback                       []Feedback
	AnsweredAt                     time.Time
	CustomerCode, CustomerName     string
	CustomerEmail, CustomerPhone   string
}

// AnswerOf returns the answer to an invitation, or ErrNotFound.
func (db *DB) AnswerOf(ctx context.Context, invitationID int64) (Answer, error) {
	var a Answer
	var at, answered int64
	var nps sql.NullInt64
	var respID int64
	err := db.read.QueryRowContext(ctx, `
		SELECT i.store_code, coalesce(s.name, ''), coalesce(s.timezone, ''), i.receipt, i.purchased_at,
		       coalesce((SELECT sum(sum_kop) FROM purchase_lines p WHERE p.store_code = i.store_code AND p.receipt = i.receipt), 0),
		       r.id, r.rating, r.nps, r.comment, r.created_at,
		       i.customer_code, coalesce(c.name, ''), i.email, coalesce(c.phone, '')
		FROM invitations i
		JOIN responses r ON r.invitation_id = i.id
		LEFT JOIN stores s ON s.code = i.store_code
		LEFT JOIN customers c ON c.code = i.customer_code
		WHERE i.id = ?`, invitationID).Scan(&a.StoreCode, &a.StoreName, &a.TimeZone, &a.Receipt, &at, &a.SumKop,
		&respID, &a.Rating, &nps, &a.Comment, &answered, &a.CustomerCode, &a.CustomerName, &a.CustomerEmail, &a.CustomerPhone)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("answer of invitation %d: %w", invitationID, err)
	}
	a.PurchasedAt, a.AnsweredAt = time.Unix(at, 0).UTC(), time.Unix(answered, 0).UTC()
	if nps.Valid {
		n := int(nps.Int64)
		a.NPS = &n
	}
	rows, err := db.read.QueryContext(ctx, `SELECT category, tone FROM response_categories WHERE response_id = ?
		ORDER BY tone, category`, respID)
	if err != nil {
		return a, fmt.Errorf("answer of invitation %d: %w", invitationID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Feedback
		if err := rows.Scan(&f.Category, &f.Tone); err != nil {
			return a, fmt.Errorf("answer of invitation %d: %w", invitationID, err)
		}
		a.Feedback = append(a.Feedback, f)
	}
	return a, rows.Err()
}
