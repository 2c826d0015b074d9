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
	zone   *time.Location
	offset int64
	off    bool // the tally gave up; the refresh does all

	dirtyBefore map[int64]bool // UTC days marked before the load
	seen        map[int64]bool // local days seen, checked when first seen
	spoiled     map[int64]bool // local days left to the refresh
	// sums are by local day and store, then category; groups counts them.
	sums   map[storeDay]map[string]*salesSums
	groups int

	cur        receiptKey
	curSpoiled bool
	curPairs   map[tallyPair]bool    // (local day, category) counted for cur
	curSums    storeDay              // the last line's day and store,
	curCats    map[string]*salesSums // and their sums
	last       map[string]string     // store -> its greatest receipt number
}

// storeDay is a local day of a store. A receipt's lines share one, so
// that a line looks up its sums by category alone.
type storeDay struct {
	day   int64 // local
	store string
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
	zone, err := rollupZone(ctx, db.read)
	if err != nil || zone == nil {
		return nil, err
	}
	dirty, err := markedDays(ctx, db.read, rollupSales)
	if err != nil {
		return nil, fmt.Errorf("begin tally: %w", err)
	}
	return &SalesTally{zone: zone, offset: -1 << 62, dirtyBefore: dirty, seen: map[int64]bool{}, spoiled: map[int64]bool{},
		sums: map[storeDay]map[string]*salesSums{}, curPairs: map[tallyPair]bool{}, last: map[string]string{}}, nil
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
		day := t.localDay(p.At.UTC().Unix())
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
		day := t.localDay(p.At.UTC().Unix())
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
		if sd := (storeDay{day, p.StoreCode}); sd != t.curSums || t.curCats == nil {
			t.curSums, t.curCats = sd, t.sums[sd]
			if t.curCats == nil {
				t.curCats = map[string]*salesSums{}
				t.sums[sd] = t.curCats
			}
		}
		s := t.curCats[p.Category]
		if s == nil {
			if t.groups >= maxTallyGroups {
				t.giveUp()
				return nil
			}
			s = &salesSums{}
			t.curCats[p.Category] = s
			t.groups++
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

// utcDays returns the UTC days the local day covers.
func (t *SalesTally) utcDays(day int64) []int64 {
	from := day*86400 - t.offset
	return []int64{utcDay(from), utcDay(from + 86399)}
}

// fresh reports whether the local day held no lines before the load: no
// roll-up rows, and none of its UTC days marked before.
func (t *SalesTally) fresh(ctx context.Context, tx *sql.Tx, day int64) (bool, error) {
	for _, u := range t.utcDays(day) {
		if t.dirtyBefore[u] {
			return false, nil
		}
	}
	var held bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sales_daily WHERE day = ?)`, dayDate(day)).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("sales tally: %w", err)
	}
	return !held, nil
}

func (t *SalesTally) giveUp() {
	t.off = true
	t.sums, t.curPairs, t.curCats, t.last = nil, nil, nil, nil
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
	utc := map[int64]bool{}
	written := map[int64]bool{}
	for day := range t.seen {
		for _, u := range t.utcDays(day) {
			utc[u] = true
		}
		if !t.spoiled[day] {
			written[day] = true
		}
	}
	if offset, fixed := fixedOffset(t.zone, utc); !fixed || offset != t.offset || len(written) == 0 {
		return 0, nil
	}
	byDay := map[int64][][]any{}
	for sd, cats := range t.sums {
		for category, s := range cats {
			byDay[sd.day] = append(byDay[sd.day], []any{dayDate(sd.day), sd.store, category, s.revenue, s.returns, s.receipts, s.lines})
		}
	}
	errZone := errors.New("the roll-ups' zone changed")
	sameZone := func(tx *sql.Tx) error {
		zone, err := rollupZone(ctx, tx)
		if err != nil {
			return err
		}
		if zone == nil || zone.String() != t.zone.String() {
			return errZone
		}
		return nil
	}
	sales := rollups[0]
	ours := map[int64]int64{} // UTC day -> the mark set on it
	months := map[string]time.Time{}
	for _, day := range slices.Sorted(maps.Keys(written)) {
		err := db.tx(ctx, func(tx *sql.Tx) error {
			if err := sameZone(tx); err != nil {
				return err
			}
			if err := replaceDay(ctx, tx, sales, dayDate(day), byDay[day]); err != nil {
				return err
			}
			for _, u := range t.utcDays(day) {
				if t.dirtyBefore[u] {
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
			return 0, fmt.Errorf("apply sales tally of %s: %w", dayDate(day), err)
		}
		m := time.Unix(day*86400, 0).UTC()
		months[m.Format("2006-01")] = time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := sameZone(tx); err != nil {
			return err
		}
		for _, key := range sortedKeys(months) {
			m := months[key]
			if err := replaceMonth(ctx, tx, sales, key, m.Format(time.DateOnly), m.AddDate(0, 1, 0).Format(time.DateOnly)); err != nil {
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
			if _, err := tx.ExecContext(ctx, clearMarkSQL, rollupSales, u, mark); err != nil {
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

// dayDate is the date of a day numbered from the epoch, "2006-01-02".
func dayDate(day int64) string { return time.Unix(day*86400, 0).UTC().Format(time.DateOnly) }
