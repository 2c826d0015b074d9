package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// A SalesTally spares the refresh after a file's first load. The first
// load of a day marks it, and the refresh after the load reads its lines
// again to sum them: at ten million lines, a sixth of the ingest. A tally
// sums the lines in Go as the writer inserts them, by local day, store
// and category, and ApplyTally writes those sums after the file's last
// batch, for the days that held nothing before the load, and clears their
// marks. A day it cannot vouch for is left marked for the refresh:
//
//   - a day that held lines or was marked before the load;
//   - a day that got a line the insert did not take (a duplicate, or a
//     line among a statement's lines of which some were loaded already);
//   - a day that got a line of a receipt the tally may have counted
//     before: receipts are counted as they come, which is exact while a
//     receipt's lines come together and each store's receipt numbers only
//     grow, as 1C writes them; a receipt out of that order spoils its days.
//
// A tally is for one file loaded from its first line: a resumed load
// has lines of an earlier process, which no tally saw.
type SalesTally struct {
	zone     *time.Location
	zoneName string
	offset   int64
	off      bool // the tally gave up; the refresh does all

	dirtyBefore map[int64]bool // UTC days marked before the load
	utc         map[int64]bool // UTC days of the lines seen
	seen        map[int64]bool // local days seen, checked when first seen
	spoiled     map[int64]bool // local days left to the refresh
	sums        map[tallyKey]*salesSums

	cur        receiptKey
	curSpoiled bool
	curPairs   map[tallyPair]bool // (local day, category) counted for cur
	last       map[string]string  // store -> its greatest receipt number
}

type tallyKey struct {
	day             int64 // local
	store, category string
}

type tallyPair struct {
	day      int64
	category string
}

type receiptKey struct{ store, receipt string }

// maxTallyGroups bounds a tally's memory: a month of a chain of a few
// hundred stores. Beyond it the refresh does the work.
const maxTallyGroups = 200000

// BeginTally starts a tally for a file about to load from its first line.
// It returns nil, which tallies nothing, when the roll-ups have no zone
// to tally in (never built, being rebuilt, or a zone without a name).
func (db *DB) BeginTally(ctx context.Context) (*SalesTally, error) {
	var name string
	if err := db.read.QueryRowContext(ctx, `SELECT zone FROM rollup_state`).Scan(&name); err != nil {
		return nil, fmt.Errorf("begin tally: %w", err)
	}
	zone := Zone(name)
	if zone == nil {
		return nil, nil
	}
	t := &SalesTally{zone: zone, zoneName: name, offset: -1 << 62,
		dirtyBefore: map[int64]bool{}, utc: map[int64]bool{}, seen: map[int64]bool{}, spoiled: map[int64]bool{},
		sums: map[tallyKey]*salesSums{}, curPairs: map[tallyPair]bool{}, last: map[string]string{}}
	rows, err := db.read.QueryContext(ctx, `SELECT day FROM rollup_dirty WHERE kind = ?`, rollupSales)
	if err != nil {
		return nil, fmt.Errorf("begin tally: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var day int64
		if err := rows.Scan(&day); err != nil {
			return nil, fmt.Errorf("begin tally: %w", err)
		}
		t.dirtyBefore[day] = true
	}
	return t, rows.Err()
}

// SetTally makes the batch tally the purchase lines it inserts.
func (b *Batch) SetTally(t *SalesTally) { b.tally = t }

// localDay is the local day of unix time at; the first line sets the
// offset, and ApplyTally checks it held for every day.
func (t *SalesTally) localDay(at int64) int64 {
	if t.offset == -1<<62 {
		_, off := time.Unix(at, 0).In(t.zone).Zone()
		t.offset = int64(off)
	}
	return utcDay(at + t.offset)
}

// spoil leaves the days of lines to the refresh.
func (t *SalesTally) spoil(lines []PurchaseLine) {
	if t == nil || t.off {
		return
	}
	for _, p := range lines {
		at := p.At.UTC().Unix()
		t.utc[utcDay(at)] = true
		day := t.localDay(at)
		t.seen[day] = true
		t.spoiled[day] = true
	}
}

// add tallies lines the insert took, all of them, checking in tx each
// local day the first time it comes.
func (t *SalesTally) add(ctx context.Context, tx *sql.Tx, lines []PurchaseLine) error {
	if t == nil || t.off {
		return nil
	}
	for _, p := range lines {
		at := p.At.UTC().Unix()
		t.utc[utcDay(at)] = true
		day := t.localDay(at)
		if !t.seen[day] {
			t.seen[day] = true
			fresh, err := t.fresh(ctx, tx, day)
			if err != nil {
				return err
			}
			if !fresh {
				t.spoiled[day] = true
			}
		}
		if k := (receiptKey{p.StoreCode, p.Receipt}); k != t.cur {
			last, ok := t.last[p.StoreCode]
			t.cur, t.curSpoiled = k, ok && p.Receipt <= last
			clear(t.curPairs)
			if !t.curSpoiled {
				t.last[p.StoreCode] = p.Receipt
			}
		}
		if t.curSpoiled {
			t.spoiled[day] = true
		}
		if t.spoiled[day] {
			continue
		}
		g := tallyKey{day, p.StoreCode, p.Category}
		s := t.sums[g]
		if s == nil {
			if len(t.sums) >= maxTallyGroups {
				t.giveUp()
				return nil
			}
			s = &salesSums{}
			t.sums[g] = s
		}
		if p.QtyMilli > 0 {
			s.revenue += p.SumKop
		} else if p.QtyMilli < 0 {
			s.returns -= p.SumKop
		}
		s.lines++
		if pair := (tallyPair{day, p.Category}); !t.curPairs[pair] {
			t.curPairs[pair] = true
			s.receipts++
		}
	}
	return nil
}

// fresh reports whether the local day held no lines before the load: no
// roll-up rows, and none of its UTC days marked before.
func (t *SalesTally) fresh(ctx context.Context, tx *sql.Tx, day int64) (bool, error) {
	from := day*86400 - t.offset
	if t.dirtyBefore[utcDay(from)] || t.dirtyBefore[utcDay(from+86399)] {
		return false, nil
	}
	var held bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sales_daily WHERE day = ?)`,
		time.Unix(day*86400, 0).UTC().Format(time.DateOnly)).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("sales tally: %w", err)
	}
	return !held, nil
}

func (t *SalesTally) giveUp() {
	t.off = true
	t.sums, t.curPairs, t.last = nil, nil, nil
}

// ApplyTally writes the sums of the days the tally vouches for, and their
// months, and clears the marks of the UTC days those days cover; it
// returns how many days it wrote. Call it after the file's last batch.
//
// Each day is written in a transaction of its own, so that survey answers
// wait for one day at most, and marks its UTC days anew: a refresh that
// read the old marks then leaves the day alone (see writeDay), and a
// crash before the end leaves the days marked for the refresh. The last
// transaction sums the months again and clears the marks it set.
func (db *DB) ApplyTally(ctx context.Context, t *SalesTally) (int, error) {
	if t == nil || t.off || len(t.seen) == 0 {
		return 0, nil
	}
	if offset, fixed := fixedOffset(t.zone, t.utc); !fixed || offset != t.offset {
		return 0, nil
	}
	written := map[int64]bool{}
	for day := range t.seen {
		if !t.spoiled[day] {
			written[day] = true
		}
	}
	if len(written) == 0 {
		return 0, nil
	}
	byDay := map[int64][]tallyKey{}
	for g := range t.sums {
		byDay[g.day] = append(byDay[g.day], g)
	}
	date := func(day int64) string { return time.Unix(day*86400, 0).UTC().Format(time.DateOnly) }
	errZone := errors.New("the roll-ups' zone changed")
	sameZone := func(tx *sql.Tx) error {
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT zone FROM rollup_state`).Scan(&name); err != nil {
			return err
		}
		if name != t.zoneName {
			return errZone
		}
		return nil
	}
	ours := map[int64]int64{} // UTC day -> the mark set on it
	months := map[string]time.Time{}
	for _, day := range slices.Sorted(maps.Keys(written)) {
		d := date(day)
		err := db.tx(ctx, func(tx *sql.Tx) error {
			if err := sameZone(tx); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM sales_daily WHERE day = ?`, d); err != nil {
				return err
			}
			for _, g := range byDay[day] {
				s := t.sums[g]
				if _, err := tx.ExecContext(ctx, `INSERT INTO sales_daily (day, store_code, category, revenue_kop, returns_kop, receipts, lines)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, d, g.store, g.category, s.revenue, s.returns, s.receipts, s.lines); err != nil {
					return err
				}
			}
			from := day*86400 - t.offset
			for u := utcDay(from); u <= utcDay(from+86399); u++ {
				if !t.utc[u] || t.dirtyBefore[u] {
					continue
				}
				mark := marks.Add(1)
				if _, err := tx.ExecContext(ctx, markDirtySQL, rollupSales, u, mark); err != nil {
					return err
				}
				ours[u] = mark
			}
			return nil
		})
		if errors.Is(err, errZone) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("apply sales tally of %s: %w", d, err)
		}
		m := time.Unix(day*86400, 0).UTC()
		months[d[:len("2006-01")]] = time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := sameZone(tx); err != nil {
			return err
		}
		sales := rollups[0]
		for _, key := range sortedKeys(months) {
			m := months[key]
			if _, err := tx.ExecContext(ctx, `DELETE FROM sales_monthly WHERE month = ?`, key); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO sales_monthly (month, store_code, category, revenue_kop, returns_kop, receipts, lines)
				SELECT ?, * FROM (`+sales.monthQuery()+`)`, key, m.Format(time.DateOnly), m.AddDate(0, 1, 0).Format(time.DateOnly)); err != nil {
				return err
			}
		}
		// A UTC day's mark goes when each local day it touches is written
		// or got no line of this load, and it is still the one set above.
		for u, mark := range ours {
			done := true
			for _, l := range []int64{utcDay(u*86400 + t.offset), utcDay(u*86400 + 86399 + t.offset)} {
				done = done && (written[l] || !t.seen[l])
			}
			if !done {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM rollup_dirty WHERE kind = ? AND day = ? AND mark = ?`,
				rollupSales, u, mark); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errZone) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("apply sales tally: %w", err)
	}
	return len(written), nil
}
