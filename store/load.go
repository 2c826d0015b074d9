package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store is a shop of the chain, identified by its 1C code.
type Store struct {
	Code, Name, City, TimeZone, Region, DirectorEmail string
	// Absent are the fields the export does not carry (its file has no
	// such column): a store loaded before keeps its own.
	Absent StoreFields
}

// StoreFields is a set of a store's fields.
type StoreFields uint8

// A store's fields that an export may leave out.
const (
	StoreName StoreFields = 1 << iota
	StoreCity
	StoreTimeZone
	StoreRegion
	StoreDirectorEmail
)

// Customer is a 1C customer card. Email and Phone are normalized or empty.
type Customer struct {
	Code, Name, Email, Phone string
	BirthDate                string // YYYY-MM-DD or empty
	Consent                  bool
	StoreCode                string
	// Absent are the fields the export does not carry (its file has no
	// such column): a card loaded before keeps its own, so that a column
	// renamed in 1C for a night does not wipe every card's consent.
	Absent CardFields
}

// CardFields is a set of a customer card's fields.
type CardFields uint8

// A card's fields that an export may leave out.
const (
	CardName CardFields = 1 << iota
	CardEmail
	CardPhone
	CardBirthDate
	CardConsent
	CardStore
)

// PurchaseLine is one line of a receipt. CustomerCode is empty for a
// receipt without a loyalty card; a negative QtyMilli is a return.
type PurchaseLine struct {
	StoreCode, Receipt string
	Line               int
	At                 time.Time
	CustomerCode       string
	ProductCode        string
	Product            string
	Category           string
	QtyMilli           int64
	PriceKop           int64
	SumKop             int64
	Seller             string

	boxed *lineValues // see Box
}

// lineValues are a purchase line's values as its insert takes them, in
// the order of its columns, all but the file id.
type lineValues [12]driver.Value

// Box readies the line's values for the insert. A loader that reads on
// one goroutine and writes on another calls it on the reader's: boxing
// a line's values costs a dozen small allocations, which the writer,
// the load's bottleneck, is then spared. Call it once the line is final:
// the insert writes the values as they were then.
func (p *PurchaseLine) Box() {
	p.boxed = p.box()
}

func (p *PurchaseLine) box() *lineValues {
	return &lineValues{p.StoreCode, p.Receipt, int64(p.Line), p.At.UTC().Unix(), p.CustomerCode,
		p.ProductCode, p.Product, p.Category, p.QtyMilli, p.PriceKop, p.SumKop, p.Seller}
}

// Batch is one write transaction of an ingest: a file is loaded in several
// batches so that the write lock is never held for long. Each Add method
// reports whether the row changed the database (false: a duplicate).
type Batch struct {
	db     *DB
	conn   *sql.Conn // the writer's, which tx runs on
	tx     *sql.Tx
	fileID int64
	stmts  map[string]*sql.Stmt
	raw    map[rawKey]driver.Stmt // see execRaw
	args   []driver.NamedValue    // execRaw's arguments, reused
	// sales tracks the lines added, for the roll-ups.
	sales salesDelta
	// queued are purchase lines waiting to be inserted together, cards
	// are customers' cards waiting to be written together, and loaded and
	// duplicate count the queued rows written so far.
	queued            []PurchaseLine
	cards             []Customer
	loaded, duplicate int64
	// mostlyLoaded is whether most lines of the last insert were loaded
	// already: the next ones are then looked up first.
	mostlyLoaded bool
	// tally, if set, sums the lines inserted (see SalesTally).
	tally *SalesTally
	// ids is the range of purchase line ids being appended.
	ids idRange
}

// BeginBatch starts a batch for the file with the given ledger id.
func (db *DB) BeginBatch(ctx context.Context, fileID int64) (*Batch, error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin batch: %w", err)
	}
	// Not ended by ctx: database/sql would roll the transaction back on
	// its own, and the statements run through the driver itself (see
	// execRaw) would then each commit alone. A batch ends by Commit or
	// Rollback; its statements still stop with ctx.
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("begin batch: %w", err)
	}
	return &Batch{db: db, conn: conn, tx: tx, fileID: fileID, stmts: map[string]*sql.Stmt{},
		raw: map[rawKey]driver.Stmt{}}, nil
}

// stmt returns the batch's prepared statement for query.
func (b *Batch) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, ok := b.stmts[query]
	if !ok {
		var err error
		st, err = b.tx.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		b.stmts[query] = st
	}
	return st, nil
}

func (b *Batch) exec(ctx context.Context, query string, args ...any) (bool, error) {
	st, err := b.stmt(ctx, query)
	if err != nil {
		return false, err
	}
	// Without cancellation: for a statement whose context can end, the
	// driver starts a goroutine and a progress handler to interrupt it,
	// which cost more than the insert itself. A load is stopped between
	// chunks of rows (its reader stops and the batch is rolled back), and a
	// statement inside the batch's transaction never waits for a lock.
	res, err := st.ExecContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// upsertStore inserts a store, or updates the fields of absent's
// complement if one of them changed.
func upsertStore(absent StoreFields) string {
	var cols []string
	for i, c := range []string{"name", "city", "timezone", "region", "director_email"} { // StoreFields' bits in order
		if absent&(1<<i) == 0 {
			cols = append(cols, c)
		}
	}
	q := `INSERT INTO stores (code, name, city, timezone, region, director_email, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)`
	if len(cols) == 0 {
		return q + ` ON CONFLICT (code) DO NOTHING`
	}
	set, old, now := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		set[i], old[i], now[i] = c+" = excluded."+c, c, "excluded."+c
	}
	return q + ` ON CONFLICT (code) DO UPDATE SET ` + strings.Join(set, ", ") + `, updated_at = excluded.updated_at
	WHERE (` + strings.Join(old, ", ") + `) IS NOT (` + strings.Join(now, ", ") + `)`
}

// AddStore inserts a store or updates its card if a field changed.
func (b *Batch) AddStore(ctx context.Context, s Store) (bool, error) {
	ok, err := b.exec(ctx, upsertStore(s.Absent), s.Code, s.Name, s.City, s.TimeZone, s.Region, s.DirectorEmail, b.db.now())
	if err != nil {
		return false, fmt.Errorf("add store %q: %w", s.Code, err)
	}
	return ok, nil
}

// AddCustomer inserts a card or updates it if a field changed, after the
// cards queued before it. A forgotten card is never filled again by a
// later export.
func (b *Batch) AddCustomer(ctx context.Context, c Customer) (bool, error) {
	if err := b.flushCards(ctx); err != nil {
		return false, err
	}
	n, err := b.writeCards(context.WithoutCancel(ctx), []Customer{c})
	if err != nil {
		return false, fmt.Errorf("add customer %q: %w", c.Code, err)
	}
	return n > 0, nil
}

// cardsPerWrite is how many queued cards are written together.
const cardsPerWrite = 64

// QueueCustomer inserts or updates a card as AddCustomer does, but with
// other queued cards: whether it changed the database is counted in the
// FileCounts that Checkpoint completes.
func (b *Batch) QueueCustomer(ctx context.Context, c Customer) error {
	b.cards = append(b.cards, c)
	if len(b.cards) < cardsPerWrite {
		return nil
	}
	return b.flushCards(ctx)
}

// flushCards writes the queued cards and counts them.
func (b *Batch) flushCards(ctx context.Context) error {
	q := b.cards
	if len(q) == 0 {
		return nil
	}
	b.cards = b.cards[:0]
	first := q[0].Code
	n, err := b.writeCards(context.WithoutCancel(ctx), q)
	clear(q)
	if err != nil {
		return fmt.Errorf("add customers from %q: %w", first, err)
	}
	b.loaded += n
	b.duplicate += int64(len(q)) - n
	return nil
}

// card is the fields of a customer card that an export may change.
type card struct {
	name, email, phone, birthDate sql.NullString
	consent                       bool
	storeCode                     string
}

func cardOf(c Customer) card {
	return card{nullString(c.Name), nullString(c.Email), nullString(c.Phone), nullString(c.BirthDate), c.Consent, c.StoreCode}
}

// keeping returns c with the fields of absent taken from old.
func (c card) keeping(old card, absent CardFields) card {
	if absent == 0 {
		return c
	}
	if absent&CardName != 0 {
		c.name = old.name
	}
	if absent&CardEmail != 0 {
		c.email = old.email
	}
	if absent&CardPhone != 0 {
		c.phone = old.phone
	}
	if absent&CardBirthDate != 0 {
		c.birthDate = old.birthDate
	}
	if absent&CardConsent != 0 {
		c.consent = old.consent
	}
	if absent&CardStore != 0 {
		c.storeCode = old.storeCode
	}
	return c
}

// loadedCard is a card of the table, or one new to it, and what
// writeCards makes of it.
type loadedCard struct {
	card
	forgotten bool // never filled again
	stored    bool // in the table before
	changed   bool // to be written
}

// writeCards writes the cards of q in turn, each inserted, or updated if
// a field changed and it is not forgotten, and returns how many of them
// changed the database. An upsert (INSERT ... ON CONFLICT DO UPDATE) of
// many cards to a statement made SQLite save every page it touched in a
// statement journal first (such a statement may abort halfway), and a
// customers export touches its email and phone indexes all over: a first
// load took longer than with a statement a card. Instead, the cards
// loaded before are looked up together, the new ones inserted many to a
// statement that ignores rather than aborts, and those with a field
// changed updated one by one (in the nightly export of cards loaded
// before, a few).
func (b *Batch) writeCards(ctx context.Context, q []Customer) (int64, error) {
	cards, err := b.loadedCards(ctx, q)
	if err != nil {
		return 0, err
	}
	var added []string // codes new to the table, in order
	var n int64
	for _, c := range q {
		to := cardOf(c)
		s, ok := cards[c.Code]
		switch {
		case !ok:
			s = &loadedCard{}
			cards[c.Code] = s
			added = append(added, c.Code)
		case s.forgotten:
			continue
		default:
			if to = to.keeping(s.card, c.Absent); s.card == to {
				continue
			}
		}
		s.card, s.changed = to, true
		n++
	}
	now := b.db.now()
	if len(added) > 0 {
		args := b.args[:0]
		for _, code := range added {
			c := cards[code]
			consent := int64(0)
			if c.consent {
				consent = 1
			}
			for _, v := range [...]driver.Value{code, nullValue(c.name), nullValue(c.email), nullValue(c.phone),
				nullValue(c.birthDate), consent, c.storeCode, now} {
				args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
			}
		}
		b.args = args
		inserted, err := b.execRaw(ctx, "cards", len(added), insertCardsQuery, args)
		clear(args)
		if err != nil {
			return 0, err
		}
		if inserted != int64(len(added)) {
			return 0, fmt.Errorf("%d of %d new cards inserted", inserted, len(added))
		}
	}
	for _, c := range q {
		s := cards[c.Code]
		if !s.stored || !s.changed {
			continue
		}
		s.changed = false // once, with its last fields
		if _, err := b.exec(ctx, `UPDATE customers SET name = ?, email = ?, phone = ?, birth_date = ?, consent = ?,
			store_code = ?, updated_at = ? WHERE code = ? AND forgotten = 0`,
			s.name, s.email, s.phone, s.birthDate, s.consent, s.storeCode, now, c.Code); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// loadedCards returns the cards of q's codes that the table holds.
func (b *Batch) loadedCards(ctx context.Context, q []Customer) (map[string]*loadedCard, error) {
	if len(q) > cardsPerWrite {
		return nil, fmt.Errorf("%d cards at once, more than %d", len(q), cardsPerWrite)
	}
	args := make([]any, cardsPerWrite)
	for i, c := range q {
		args[i] = c.Code
	}
	st, err := b.stmt(ctx, loadedCardsQuery)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cards := make(map[string]*loadedCard, len(q))
	for rows.Next() {
		var code string
		c := &loadedCard{stored: true}
		if err := rows.Scan(&code, &c.name, &c.email, &c.phone, &c.birthDate, &c.consent, &c.storeCode, &c.forgotten); err != nil {
			return nil, err
		}
		cards[code] = c
	}
	return cards, rows.Err()
}

// loadedCardsQuery looks up cardsPerWrite codes (NULL matches none).
var loadedCardsQuery = `SELECT code, name, email, phone, birth_date, consent, store_code, forgotten
	FROM customers WHERE code IN (` + strings.TrimSuffix(strings.Repeat("?, ", cardsPerWrite), ", ") + `)`

func insertCardsQuery(n int) string {
	return rowsQuery(`INSERT OR IGNORE INTO customers (code, name, email, phone, birth_date, consent, store_code, updated_at) VALUES `,
		`(?, ?, ?, ?, ?, ?, ?, ?)`, n)
}

// nullValue is a NullString for the driver itself.
func nullValue(s sql.NullString) driver.Value {
	if !s.Valid {
		return nil
	}
	return s.String
}

// A line already loaded is skipped by OR IGNORE rather than ON CONFLICT
// DO NOTHING: the key is the table's only constraint besides NOT NULL,
// which a bound Go value always meets, and a statement that cannot abort
// needs no statement journal. With ON CONFLICT, SQLite saved every page a
// many-row insert touched to a journal file first (a seventh of a load's
// time).
const (
	insertLineHead = `INSERT OR IGNORE INTO purchase_lines (store_code, receipt, line, at, customer_code, product_code,
	product, category, qty_milli, price_kop, sum_kop, seller, file_id) VALUES `
	lineTuple  = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertLine = insertLineHead + lineTuple
)

// AddPurchaseLine inserts a line unless (store, receipt, line) is loaded.
func (b *Batch) AddPurchaseLine(ctx context.Context, p PurchaseLine) (bool, error) {
	at := p.At.UTC().Unix()
	if err := b.beforeLines(ctx); err != nil {
		return false, fmt.Errorf("add purchase %s/%s/%d: %w", p.StoreCode, p.Receipt, p.Line, err)
	}
	ok, err := b.exec(ctx, insertLine, p.StoreCode, p.Receipt, p.Line, at, p.CustomerCode,
		p.ProductCode, p.Product, p.Category, p.QtyMilli, p.PriceKop, p.SumKop, p.Seller, b.fileID)
	if err == nil {
		err = b.afterLines(ctx, []PurchaseLine{p})
	}
	if err != nil {
		return false, fmt.Errorf("add purchase %s/%s/%d: %w", p.StoreCode, p.Receipt, p.Line, err)
	}
	if ok {
		b.sales.note(at)
		if err := b.added(ctx, []PurchaseLine{p}, b.sales.before+int64(b.sales.lines)+1); err != nil {
			return false, fmt.Errorf("add purchase %s/%s/%d: %w", p.StoreCode, p.Receipt, p.Line, err)
		}
		b.sales.lines++
	}
	b.tally.spoil([]PurchaseLine{p})
	return ok, nil
}

// linesPerInsert is how many queued purchase lines one INSERT takes: one
// statement for many rows saves database/sql's and the driver's cost of a
// statement, more than SQLite's own work for a line already loaded.
const linesPerInsert = 64

// QueuePurchaseLine adds a line unless (store, receipt, line) is loaded,
// as AddPurchaseLine does, but with other queued lines in one statement:
// whether it was loaded is counted in the FileCounts that Checkpoint
// completes.
func (b *Batch) QueuePurchaseLine(ctx context.Context, p PurchaseLine) error {
	b.queued = append(b.queued, p)
	if len(b.queued) < linesPerInsert {
		return nil
	}
	return b.flush(ctx)
}

// flush writes the queued cards and lines.
func (b *Batch) flush(ctx context.Context) error {
	if err := b.flushCards(ctx); err != nil {
		return err
	}
	q := b.queued
	if len(q) == 0 {
		return nil
	}
	b.queued = b.queued[:0]
	first := q[0]
	if err := b.insertLines(ctx, q); err != nil {
		return fmt.Errorf("add purchase lines from %s/%s/%d: %w", first.StoreCode, first.Receipt, first.Line, err)
	}
	return nil
}

// insertLines inserts lines in one statement, those not loaded already,
// and counts them.
func (b *Batch) insertLines(ctx context.Context, q []PurchaseLine) error {
	offered := len(q)
	if b.mostlyLoaded {
		b.tally.spoil(q) // whatever is left out was loaded
		rest, err := b.notLoaded(ctx, q)
		if err != nil {
			return err
		}
		q = rest
		b.duplicate += int64(offered - len(q))
		if len(q) == 0 {
			return nil
		}
	}
	args := b.args[:0]
	fileID := driver.Value(b.fileID)
	for _, p := range q {
		v := p.boxed
		if v == nil {
			v = p.box()
		}
		for _, x := range v {
			args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: x})
		}
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: fileID})
		// The days of every queued line, loaded or not: the roll-ups
		// then mark a few days too many, never too few.
		b.sales.note(v[3].(int64))
	}
	b.args = args
	if err := b.beforeLines(ctx); err != nil {
		return err
	}
	n, err := b.execLines(context.WithoutCancel(ctx), len(q), args)
	clear(args) // let the collector have the values
	if err != nil {
		return err
	}
	if err := b.afterLines(ctx, q); err != nil {
		return err
	}
	if int(n) == len(q) {
		if err := b.tally.add(ctx, b.tx, q); err != nil {
			return err
		}
		if err := b.added(ctx, q, b.sales.before+int64(b.sales.lines)+1); err != nil {
			return err
		}
	} else {
		b.tally.spoil(q)
		b.sales.partial = true
	}
	b.sales.lines += int(n)
	b.loaded += n
	b.duplicate += int64(len(q)) - n
	b.mostlyLoaded = 2*(int64(offered)-n) > int64(offered)
	return nil
}

// notLoaded returns the lines of q that may not be loaded, for INSERT OR
// IGNORE to settle: in a run of lines loaded already (an export that
// overlaps the last), a lookup in the key's index alone costs less than
// offering thirteen columns to a failing insert. Each receipt is looked
// up once: its lines come back unless every line in the range of those
// queued is loaded, so a run of loaded lines returns no rows. The
// receipts are padded with NULLs, which match nothing, to one per line,
// so that a batch prepares the lookup once.
func (b *Batch) notLoaded(ctx context.Context, q []PurchaseLine) ([]PurchaseLine, error) {
	type receipt struct{ store, receipt string }
	type span struct{ first, last int }
	spans := make(map[receipt]span, len(q))
	var order []receipt
	for _, p := range q {
		k := receipt{p.StoreCode, p.Receipt}
		s, ok := spans[k]
		if !ok {
			s = span{p.Line, p.Line}
			order = append(order, k)
		}
		spans[k] = span{min(s.first, p.Line), max(s.last, p.Line)}
	}
	args := make([]any, 0, len(q)*4)
	for _, k := range order {
		args = append(args, k.store, k.receipt, spans[k].first, spans[k].last)
	}
	for len(args) < cap(args) {
		args = append(args, nil, nil, nil, nil)
	}
	var query strings.Builder
	query.WriteString(`SELECT v.column1, v.column2 FROM (VALUES `)
	for i := range q {
		if i > 0 {
			query.WriteString(", ")
		}
		query.WriteString("(?, ?, ?, ?)")
	}
	query.WriteString(`) v WHERE (SELECT count(*) FROM purchase_lines p
		WHERE p.store_code = v.column1 AND p.receipt = v.column2 AND p.line BETWEEN v.column3 AND v.column4)
		< v.column4 - v.column3 + 1`)
	st, err := b.stmt(ctx, query.String())
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	offer := make(map[receipt]bool)
	for rows.Next() {
		var k receipt
		if err := rows.Scan(&k.store, &k.receipt); err != nil {
			return nil, err
		}
		offer[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := q[:0]
	for _, p := range q {
		if offer[receipt{p.StoreCode, p.Receipt}] {
			out = append(out, p)
		}
	}
	return out, nil
}

// AddPromoCode adds a promo code from 1C's file, unless it is known.
func (b *Batch) AddPromoCode(ctx context.Context, code string) (bool, error) {
	ok, err := b.exec(ctx, `INSERT INTO promo_codes (code, origin, added_at) VALUES (?, 'file', ?) ON CONFLICT DO NOTHING`,
		code, b.db.now())
	if err != nil {
		return false, fmt.Errorf("add promo code: %w", err)
	}
	return ok, nil
}

// AddReject records a row that could not be loaded.
func (b *Batch) AddReject(ctx context.Context, line int, field, reason string) error {
	return b.addReject(ctx, line, field, reason, false)
}

// AddDropped records a value that a row loaded without: the field, and
// why its value was left out.
func (b *Batch) AddDropped(ctx context.Context, line int, field, reason string) error {
	return b.addReject(ctx, line, field, reason, true)
}

func (b *Batch) addReject(ctx context.Context, line int, field, reason string, kept bool) error {
	if _, err := b.exec(ctx, `INSERT INTO rejects (file_id, line, field, reason, kept) VALUES (?, ?, ?, ?, ?)`,
		b.fileID, line, field, reason, kept); err != nil {
		return fmt.Errorf("add reject line %d: %w", line, err)
	}
	return nil
}

// Commit commits the batch with the sales roll-ups brought up to date
// with its lines, or the days it changed marked for a refresh.
func (b *Batch) Commit() error {
	if err := b.flush(context.Background()); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	if err := b.closeRange(context.Background()); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	for _, st := range b.stmts {
		st.Close()
	}
	b.closeRaw()
	if err := b.rollSales(context.Background()); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	err := b.tx.Commit()
	b.conn.Close()
	if err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	return nil
}

// Checkpoint commits the batch together with how far the file's load got:
// the last line (or document) covered and the counts so far, to which it
// first adds the queued purchase lines' (so c is complete on return).
func (b *Batch) Checkpoint(ctx context.Context, at int, c *FileCounts) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	c.Loaded += b.loaded
	c.Duplicate += b.duplicate
	b.loaded, b.duplicate = 0, 0
	if _, err := b.tx.ExecContext(ctx, `UPDATE files SET checkpoint = ?, rows_loaded = ?, rows_duplicate = ?,
		rows_rejected = ?, values_dropped = ? WHERE id = ?`, at, c.Loaded, c.Duplicate, c.Rejected, c.Dropped, b.fileID); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return b.Commit()
}

// Rollback abandons the batch; it is safe after Commit.
func (b *Batch) Rollback() {
	for _, st := range b.stmts {
		st.Close()
	}
	b.closeRaw()
	_ = b.tx.Rollback() // sql.ErrTxDone after Commit is expected
	b.conn.Close()      // sql.ErrConnDone after Commit
}

// StoreTimeZones returns every store's configured time zone name by code.
func (db *DB) StoreTimeZones(ctx context.Context) (map[string]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT code, timezone FROM stores`)
	if err != nil {
		return nil, fmt.Errorf("store time zones: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var code, tz string
		if err := rows.Scan(&code, &tz); err != nil {
			return nil, fmt.Errorf("store time zones: %w", err)
		}
		out[code] = tz
	}
	return out, rows.Err()
}

// GetStore returns a store by code.
func (db *DB) GetStore(ctx context.Context, code string) (Store, error) {
	var s Store
	err := db.read.QueryRowContext(ctx, `SELECT code, name, city, timezone, region, director_email
		FROM stores WHERE code = ?`, code).Scan(&s.Code, &s.Name, &s.City, &s.TimeZone, &s.Region, &s.DirectorEmail)
	if errors.Is(err, sql.ErrNoRows) {
		return Store{Code: code}, ErrNotFound
	}
	if err != nil {
		return Store{}, fmt.Errorf("get store %q: %w", code, err)
	}
	return s, nil
}

// AddGroup records a product group of a catalog.
func (b *Batch) AddGroup(ctx context.Context, id, name, parent string) (bool, error) {
	ok, err := b.exec(ctx, `INSERT INTO product_groups (id, name, parent) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent = excluded.parent
		WHERE (name, parent) IS NOT (excluded.name, excluded.parent)`, id, name, parent)
	if err != nil {
		return false, fmt.Errorf("add group %q: %w", id, err)
	}
	return ok, nil
}

// AddProduct records a catalog product and its group.
func (b *Batch) AddProduct(ctx context.Context, code, name, group string) (bool, error) {
	ok, err := b.exec(ctx, `INSERT INTO products (code, name, group_id) VALUES (?, ?, ?)
		ON CONFLICT (code) DO UPDATE SET name = excluded.name, group_id = excluded.group_id
		WHERE (name, group_id) IS NOT (excluded.name, excluded.group_id)`, code, name, group)
	if err != nil {
		return false, fmt.Errorf("add product %q: %w", code, err)
	}
	return ok, nil
}

// Category returns the group name of a product, or of a group id, from
// the catalogs loaded so far; "" if unknown. A product code of the form
// product#characteristic is looked up by its product part too.
func (b *Batch) Category(ctx context.Context, productCode, groupID string) (string, error) {
	if groupID == "" {
		code, _, _ := strings.Cut(productCode, "#")
		err := b.tx.QueryRowContext(ctx, `SELECT group_id FROM products WHERE code IN (?, ?) AND group_id <> '' LIMIT 1`,
			productCode, code).Scan(&groupID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("category of %q: %w", productCode, err)
		}
	}
	if groupID == "" {
		return "", nil
	}
	var name string
	err := b.tx.QueryRowContext(ctx, `SELECT name FROM product_groups WHERE id = ?`, groupID).Scan(&name)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("category of %q: %w", productCode, err)
	}
	return name, nil
}

// Categorize gives purchase lines loaded before their catalog the
// category the catalogs now know.
func (b *Batch) Categorize(ctx context.Context) (int64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	_, err := b.tx.ExecContext(ctx, `INSERT INTO rollup_dirty (kind, day, mark)
		SELECT 'sales', `+utcDaySQL("at")+`, ? FROM purchase_lines WHERE category = '' AND product_code <> '' GROUP BY 2
		ON CONFLICT (kind, day) DO UPDATE SET mark = excluded.mark`, marks.Add(1))
	if err != nil {
		return 0, fmt.Errorf("categorize lines: %w", err)
	}
	res, err := b.tx.ExecContext(ctx, `UPDATE purchase_lines SET category = coalesce((
			SELECT g.name FROM products p JOIN product_groups g ON g.id = p.group_id
			WHERE p.code = purchase_lines.product_code
			   OR p.code = substr(purchase_lines.product_code, 1, instr(purchase_lines.product_code, '#') - 1)
			LIMIT 1), '')
		WHERE category = '' AND product_code <> ''`)
	if err != nil {
		return 0, fmt.Errorf("categorize lines: %w", err)
	}
	return res.RowsAffected()
}

// AddContact records a customer seen in a CommerceML file. It fills the
// name, email and phone a card lacks but never touches consent, which
// only 1C's customers feed gives.
func (b *Batch) AddContact(ctx context.Context, c Customer) (bool, error) {
	ok, err := b.exec(ctx, `INSERT INTO customers (code, name, email, phone, consent, updated_at)
		VALUES (?, ?, ?, ?, 0, ?)
		ON CONFLICT (code) DO UPDATE SET name = coalesce(customers.name, excluded.name),
			email = coalesce(customers.email, excluded.email), phone = coalesce(customers.phone, excluded.phone),
			updated_at = excluded.updated_at
		WHERE forgotten = 0 AND (customers.name IS NULL AND excluded.name IS NOT NULL
			OR customers.email IS NULL AND excluded.email IS NOT NULL OR customers.phone IS NULL AND excluded.phone IS NOT NULL)`,
		c.Code, nullString(c.Name), nullString(c.Email), nullString(c.Phone), b.db.now())
	if err != nil {
		return false, fmt.Errorf("add contact %q: %w", c.Code, err)
	}
	return ok, nil
}
