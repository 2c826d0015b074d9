package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// A batch adds its lines' sums to the sales roll-ups when that is cheaper
// than recomputing its days after the load, which reads every line the
// days hold. Adding costs the batch about a line's insert for each line
// and linesPerGroup for each (day, store, category) it touches; so the
// days must already hold at least linesHeld times that: the first load of
// a day marks it, and the refresh reads its lines once, on the readers,
// in parallel, where sums in each batch would cost the load more. A small
// batch among days that hold millions of lines (one cut short for a
// survey answer, or the few new lines of an export mostly loaded before)
// adds its sums: marking would rescan the days for a handful of lines.
const (
	linesPerGroup = 2
	linesHeld     = 4
)

// salesDelta tracks the purchase lines a batch adds. Where it pays, its
// commit adds their sums to the sales roll-ups in the same transaction,
// so that the refresh after the load does not read those days again: a
// re-delivered export that is mostly loaded already costs about what its
// new lines cost. Days whose roll-ups are not up to date (marked, or
// never built) are marked again instead, and the refresh recomputes them
// from the raw lines.
//
// The sums are made as the lines are inserted (see added), as long as
// every insert is known to have loaded all it was offered; once one left
// some out, which only the table says, the commit reads the batch's lines
// back to sum them (sumLines).
type salesDelta struct {
	// before is the largest purchase line id before the batch's first
	// line (see beforeLines): the batch's lines are the rows above it.
	before int64
	lines  int            // lines loaded
	days   map[int64]bool // UTC days of the lines, at least
	// partial: an insert left some lines out, and sums is not used.
	partial bool
	// sums are the lines' by local day, store and category, the local
	// day at offset seconds from UTC, the zone's offset at the first
	// line (the commit uses them only if it held for all the batch's
	// days); none if the roll-ups have no zone or the days of the first
	// lines held too few for the commit to add sums. decided: whether to
	// make them was settled at the first insert.
	sums    map[dayGroup]*salesSums
	offset  int64
	decided bool
	// stores are the receipt numbers seen of each store, and run the
	// receipt of the last line: see countReceipt.
	stores map[string]*storeReceipts
	run    receiptRun
	names  map[string]string // store codes and categories, as keys
}

// dayGroup is a row of sales_daily by its local day number.
type dayGroup struct {
	day             int64
	store, category string
}

type storeReceipts struct {
	greatest string // the greatest receipt number before the batch
	added    string // the greatest the batch added
}

// receiptRun is the receipt of consecutive lines: 1C writes a receipt's
// lines together.
type receiptRun struct {
	store, receipt string
	fresh          bool       // no line of it was loaded before the run
	counted        []dayGroup // the days and categories it counted on
}

// note records the day of a line offered to the batch.
func (d *salesDelta) note(at int64) {
	if d.days == nil {
		d.days = map[int64]bool{}
	}
	d.days[utcDay(at)] = true
}

// salesKey is a row of sales_daily (day "2006-01-02") or sales_monthly
// (month "2006-01").
type salesKey struct{ period, store, category string }

type salesSums struct{ revenue, returns, receipts, lines int64 }

// rollSales brings the sales roll-ups up to date with the batch's lines,
// inside its transaction: it adds their sums to the local days that are
// up to date and marks the others for a refresh. The sums are made by
// SQLite over the batch's rows, with the local day as an offset from UTC:
// a batch whose days see the zone's offset change (summer time) marks
// them instead.
func (b *Batch) rollSales(ctx context.Context) error {
	d := &b.sales
	if d.lines == 0 {
		return nil
	}
	zone, err := rollupZone(ctx, b.tx)
	if err != nil {
		return err
	}
	offset, fixed := fixedOffset(zone, d.days)
	if !fixed {
		return b.markSales(ctx, d.days)
	}
	var first, last int64 = 1 << 62, -1 << 62
	for day := range d.days {
		first, last = min(first, day), max(last, day)
	}
	held, err := b.held(ctx, first, last)
	if err != nil {
		return err
	}
	if held < int64(d.lines)*linesHeld {
		return b.markSales(ctx, d.days)
	}
	// The groups only now, for a batch among days that hold many lines:
	// counted in Go for every line, they cost a first load a sixteenth of
	// its time. And only if the days might hold too few for them: there
	// are at most as many groups as lines, and a batch among the days of
	// a month of millions is spared reading its lines once more for it.
	if held < int64(d.lines)*linesPerGroup*linesHeld {
		var groups int64
		if err := b.tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT DISTINCT `+utcDaySQL("at")+`, store_code, category
			FROM purchase_lines WHERE id > ?)`, d.before).Scan(&groups); err != nil {
			return fmt.Errorf("sales roll-up: %w", err)
		}
		if held < groups*linesPerGroup*linesHeld {
			return b.markSales(ctx, d.days)
		}
	}
	dirty, err := markedDays(ctx, b.tx, rollupSales)
	if err != nil {
		return err
	}
	// A local day L is [L*86400 - offset, (L+1)*86400 - offset) in unix
	// time: stale if a UTC day it covers is marked.
	stale := []int64{}
	staleUTC := map[int64]bool{}
	for day := range d.days {
		for _, l := range []int64{utcDay(day*86400 + offset), utcDay(day*86400 + 86399 + offset)} {
			if anyDay(dirty, l*86400-offset, (l+1)*86400-offset) && !slices.Contains(stale, l) {
				stale = append(stale, l)
			}
		}
	}
	for day := range d.days {
		for _, l := range stale {
			if day*86400 < (l+1)*86400-offset && (day+1)*86400 > l*86400-offset {
				staleUTC[day] = true
			}
		}
	}
	var daily map[salesKey]*salesSums
	// The offset held over the batch's days (else they were marked
	// above): the first line's, which the sums were made at.
	if d.partial || d.sums == nil {
		if daily, err = b.sumLines(ctx, offset, stale); err != nil {
			return err
		}
	} else {
		daily = map[salesKey]*salesSums{}
		for k, s := range d.sums {
			if !slices.Contains(stale, k.day) {
				daily[salesKey{dayDate(k.day), k.store, k.category}] = s
			}
		}
	}
	monthly := map[salesKey]*salesSums{}
	for k, s := range daily {
		m := salesKey{k.period[:len("2006-01")], k.store, k.category}
		ms := monthly[m]
		if ms == nil {
			ms = &salesSums{}
			monthly[m] = ms
		}
		ms.revenue += s.revenue
		ms.returns += s.returns
		ms.receipts += s.receipts
		ms.lines += s.lines
	}
	if err := b.addSales(ctx, "sales_daily", "day", daily); err != nil {
		return err
	}
	if err := b.addSales(ctx, "sales_monthly", "month", monthly); err != nil {
		return err
	}
	return b.markSales(ctx, staleUTC)
}

// held returns how many lines the sales roll-up holds from the day
// before UTC day first to the day after last.
func (b *Batch) held(ctx context.Context, first, last int64) (int64, error) {
	var held int64
	if err := b.tx.QueryRowContext(ctx, `SELECT coalesce(sum(lines), 0) FROM sales_daily WHERE day >= ? AND day <= ?`,
		dayDate(first-1), dayDate(last+1)).Scan(&held); err != nil {
		return 0, fmt.Errorf("sales roll-up: %w", err)
	}
	return held, nil
}

// sumLines sums the batch's lines, read back from the table, by local day
// (offset seconds from UTC), store and category, leaving out the stale
// local days. A receipt counts on a day unless a line of it in that
// category was loaded before.
func (b *Batch) sumLines(ctx context.Context, offset int64, stale []int64) (map[salesKey]*salesSums, error) {
	staleJSON, _ := json.Marshal(stale)
	local := utcDaySQL("(n.at + ?2)")
	rows, err := b.tx.QueryContext(ctx, `SELECT `+local+` AS day, n.store_code, n.category,
		coalesce(sum(CASE WHEN n.qty_milli > 0 THEN n.sum_kop END), 0),
		coalesce(-sum(CASE WHEN n.qty_milli < 0 THEN n.sum_kop END), 0),
		count(DISTINCT CASE WHEN NOT EXISTS (SELECT 1 FROM purchase_lines o WHERE o.store_code = n.store_code
			AND o.receipt = n.receipt AND o.rowid <= ?1 AND o.category = n.category
			AND `+utcDaySQL("(o.at + ?2)")+` = `+local+`) THEN n.receipt END),
		count(*)
		FROM purchase_lines n WHERE n.rowid > ?1 AND day NOT IN (SELECT value FROM json_each(?3))
		GROUP BY 1, 2, 3`, b.sales.before, offset, string(staleJSON))
	if err != nil {
		return nil, fmt.Errorf("sales roll-up: %w", err)
	}
	defer rows.Close()
	daily := map[salesKey]*salesSums{}
	for rows.Next() {
		var day int64
		var k salesKey
		var s salesSums
		if err := rows.Scan(&day, &k.store, &k.category, &s.revenue, &s.returns, &s.receipts, &s.lines); err != nil {
			return nil, fmt.Errorf("sales roll-up: %w", err)
		}
		k.period = dayDate(day)
		daily[k] = &s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sales roll-up: %w", err)
	}
	return daily, nil
}

// added sums lines loaded, all of those offered to an insert, the first
// of them given id first: the sums of sumLines, without reading the lines
// back, which took half a re-delivered export's time to write its new
// lines.
func (b *Batch) added(ctx context.Context, q []PurchaseLine, first int64) error {
	d := &b.sales
	if d.partial {
		return nil
	}
	if !d.decided {
		// Only if the commit will want them: if the days of the first
		// lines hold as many lines as it asks of the batch's days. A
		// first load of days marks them.
		d.decided = true
		var from, to int64 = 1 << 62, -1 << 62
		for _, p := range q {
			day := utcDay(p.At.Unix())
			from, to = min(from, day), max(to, day)
		}
		held, err := b.held(ctx, from, to)
		if err != nil {
			return err
		}
		if held < int64(len(q))*linesHeld {
			return nil
		}
		zone, err := rollupZone(ctx, b.tx)
		if err != nil || zone == nil {
			return err // without a zone, the commit marks the days
		}
		_, off := time.Unix(q[0].At.Unix(), 0).In(zone).Zone()
		d.offset = int64(off)
		d.sums, d.stores, d.names = map[dayGroup]*salesSums{}, map[string]*storeReceipts{}, map[string]string{}
	}
	if d.sums == nil {
		return nil // the commit reads the lines back, or marks their days
	}
	for i, p := range q {
		at := p.At.Unix()
		g := dayGroup{utcDay(at + d.offset), d.name(p.StoreCode), d.name(p.Category)}
		s := d.sums[g]
		if s == nil {
			s = &salesSums{}
			d.sums[g] = s
		}
		switch {
		case p.QtyMilli > 0:
			s.revenue += p.SumKop
		case p.QtyMilli < 0:
			s.returns -= p.SumKop
		}
		s.lines++
		counts, err := b.countReceipt(ctx, g, p.Receipt, first+int64(i))
		if err != nil {
			return err
		}
		if counts {
			s.receipts++
		}
	}
	return nil
}

// name returns s as kept in names.
func (d *salesDelta) name(s string) string {
	n, ok := d.names[s]
	if !ok {
		n = strings.Clone(s) // not the line's: it holds the whole row
		d.names[n] = n
	}
	return n
}

// countReceipt reports whether the receipt of line id counts in group g:
// whether no line of it in g's category and local day was loaded before,
// by an earlier batch or by this one. A receipt whose number is above
// any the store had before the batch and any the batch added is new, and
// so is each of its groups the first time its run of lines meets it;
// any other is looked up among the lines below id.
func (b *Batch) countReceipt(ctx context.Context, g dayGroup, receipt string, id int64) (bool, error) {
	d := &b.sales
	r := &d.run
	if receipt != r.receipt || g.store != r.store {
		st := d.stores[g.store]
		if st == nil {
			st = &storeReceipts{}
			if err := b.tx.QueryRowContext(ctx, `SELECT coalesce((SELECT receipt FROM purchase_lines
				WHERE store_code = ? AND id <= ? ORDER BY receipt DESC LIMIT 1), '')`, g.store, d.before).Scan(&st.greatest); err != nil {
				return false, fmt.Errorf("sales roll-up: %w", err)
			}
			d.stores[g.store] = st
		}
		r.store, r.receipt = g.store, strings.Clone(receipt)
		r.fresh = receipt > st.greatest && receipt > st.added
		r.counted = r.counted[:0]
		if receipt > st.added {
			st.added = r.receipt
		}
	}
	if slices.Contains(r.counted, g) {
		return false, nil
	}
	r.counted = append(r.counted, g)
	if r.fresh {
		return true, nil
	}
	// +?4, not ?4: SQLite would test a plain parameter against the
	// partial index on category = '' and so prepare the statement again
	// whenever its value changed, which was every other lookup.
	look, err := b.stmt(ctx, `SELECT EXISTS (SELECT 1 FROM purchase_lines WHERE store_code = ?1 AND receipt = ?2
		AND id < ?3 AND category = +?4 AND `+utcDaySQL("(at + ?5)")+` = ?6)`)
	if err != nil {
		return false, fmt.Errorf("sales roll-up: %w", err)
	}
	var loaded bool
	if err := look.QueryRowContext(ctx, g.store, receipt, id, g.category, d.offset, g.day).Scan(&loaded); err != nil {
		return false, fmt.Errorf("sales roll-up: %w", err)
	}
	return !loaded, nil
}

// fixedOffset returns zone's offset from UTC in seconds if it is the same
// throughout the UTC days given and the days either side of them.
func fixedOffset(zone *time.Location, days map[int64]bool) (int64, bool) {
	if zone == nil {
		return 0, false
	}
	offset, first := int64(0), true
	for day := range days {
		for t := (day - 1) * 86400; t <= (day+2)*86400; t += 86400 {
			_, off := time.Unix(t, 0).In(zone).Zone()
			if first {
				offset, first = int64(off), false
			} else if int64(off) != offset {
				return 0, false
			}
		}
	}
	return offset, !first
}

// addSales adds sums to the rows of a sales roll-up table.
func (b *Batch) addSales(ctx context.Context, table, col string, sums map[salesKey]*salesSums) error {
	if len(sums) == 0 {
		return nil
	}
	st, err := b.tx.PrepareContext(ctx, `INSERT INTO `+table+` (`+col+`, store_code, category, revenue_kop, returns_kop, receipts, lines)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (`+col+`, store_code, category) DO UPDATE SET revenue_kop = revenue_kop + excluded.revenue_kop,
			returns_kop = returns_kop + excluded.returns_kop, receipts = receipts + excluded.receipts, lines = lines + excluded.lines`)
	if err != nil {
		return fmt.Errorf("sales roll-up: %w", err)
	}
	defer st.Close()
	for k, s := range sums {
		if _, err := st.ExecContext(ctx, k.period, k.store, k.category, s.revenue, s.returns, s.receipts, s.lines); err != nil {
			return fmt.Errorf("sales roll-up of %s: %w", k.period, err)
		}
	}
	return nil
}

// markSales marks UTC days for the refresh to recompute.
func (b *Batch) markSales(ctx context.Context, days map[int64]bool) error {
	for day := range days {
		if _, err := b.tx.ExecContext(ctx, markDirtySQL, rollupSales, day, marks.Add(1)); err != nil {
			return fmt.Errorf("mark sales roll-up: %w", err)
		}
	}
	return nil
}

// querier is a transaction or the readers.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// markedDays returns the UTC days marked for the refresh of a kind of
// roll-up.
func markedDays(ctx context.Context, q querier, kind string) (map[int64]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT day FROM rollup_dirty WHERE kind = ?`, kind)
	if err != nil {
		return nil, fmt.Errorf("sales roll-up: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var day int64
		if err := rows.Scan(&day); err != nil {
			return nil, fmt.Errorf("sales roll-up: %w", err)
		}
		out[day] = true
	}
	return out, rows.Err()
}

// zones caches the zones loaded by name: loading one reads the time zone
// database, and every large batch and every message asks.
var zones sync.Map // name -> *time.Location, nil if it cannot be loaded

// Zone returns the time zone of that name (as in stores.time_zone), or nil
// if the name is empty or unknown. Zones are loaded once and cached.
func Zone(name string) *time.Location {
	if name == "" {
		return nil
	}
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location)
	}
	zone, err := time.LoadLocation(name)
	if err != nil {
		zone = nil
	}
	zones.Store(name, zone)
	return zone
}

// rollupZone returns the zone the roll-ups are built in, nil if they are
// not built (or are being rebuilt), or if the zone has no name to load it
// by: the batch then marks its days for the refresh.
func rollupZone(ctx context.Context, q querier) (*time.Location, error) {
	var name string
	if err := q.QueryRowContext(ctx, `SELECT zone FROM rollup_state`).Scan(&name); err != nil {
		return nil, fmt.Errorf("roll-up zone: %w", err)
	}
	return Zone(name), nil
}

// anyDay reports whether any UTC day of the times [from, to) is in days.
func anyDay(days map[int64]bool, from, to int64) bool {
	for d := utcDay(from); d <= utcDay(to-1); d++ {
		if days[d] {
			return true
		}
	}
	return false
}
