package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A rollup keeps sums of raw rows per local day and per month. Answers,
// and loads whose days are not up to date, mark the UTC days they change
// (markDirty); RefreshRollups recomputes those days from the raw rows,
// then their months from the days. A load's batch adds its lines' sums
// to the days that are up to date (rollSales). The report reads only the
// monthly sums.
//
// A day is written from a reader's snapshot, so a batch must not add to
// a day while a refresh may be recomputing it: it adds only to local days
// none of whose UTC days is marked, and a refresh clears a mark only
// after writing the days it covers. A month is recomputed from its days
// inside one write transaction, so no batch's sums fall between.
type rollup struct {
	kind            string
	daily, monthly  string
	keys, values    []string
	source, sourceT string // the raw rows and their time column, for the full rebuild
	// span, if set, selects the first and last times of the raw rows
	// without reading them; byScan needs it.
	span string
	// query sums raw rows of [?, ?) (unix seconds) by keys, selecting
	// keys then values.
	query string
	// scan, if set, sums the raw rows of [?1, ?2) by local day, ?3 being
	// the zone's offset in seconds, then keys, in one pass over the
	// table, day by day: selecting the day's number, keys then values.
	scan string
}

// salesValues are the values of the sales roll-up over purchase lines.
const salesValues = `coalesce(sum(CASE WHEN qty_milli > 0 THEN sum_kop END), 0),
		coalesce(-sum(CASE WHEN qty_milli < 0 THEN sum_kop END), 0),
		count(DISTINCT receipt), count(*)`

var rollups = []rollup{{
	kind: "sales", daily: "sales_daily", monthly: "sales_monthly",
	keys:   []string{"store_code", "category"},
	values: []string{"revenue_kop", "returns_kop", "receipts", "lines"},
	source: "purchase_lines", sourceT: "at",
	span: `SELECT min(first_at), max(last_at) FROM purchase_ranges`,
	// A receipt belongs to one day, so its count per day adds up to the
	// month's.
	query: `SELECT store_code, category, ` + salesValues + `
		FROM ` + linesIn("p") + ` WHERE ` + linesAt("p") + ` GROUP BY store_code, category`,
	// One pass reads each range of lines once, where a query a day would
	// read every range that holds a line of the day (a large export of
	// many days, its receipts in no order of time) once for each day.
	scan: `SELECT ` + utcDaySQL("(p.at + ?3)") + `, store_code, category, ` + salesValues + `
		FROM ` + linesIn("p") + ` WHERE ` + linesAt("p") + ` GROUP BY 1, 2, 3 ORDER BY 1`,
}, {
	kind: "feedback", daily: "feedback_daily", monthly: "feedback_monthly",
	keys:   []string{"store_code", "category", "tone"},
	values: []string{"answers"},
	source: "responses", sourceT: "created_at",
	query: `SELECT r.store_code, c.category, c.tone, count(*)
		FROM response_categories c JOIN responses r ON r.id = c.response_id
		WHERE r.created_at >= ? AND r.created_at < ? GROUP BY r.store_code, c.category, c.tone`,
}}

// Kinds of roll-up, for markDirty.
const (
	rollupSales    = "sales"
	rollupFeedback = "feedback"
)

// marks numbers the changes to roll-up days; it starts at the clock so
// that two processes (an ingest and the daemon) do not reuse a mark.
var marks atomic.Int64

func init() { marks.Store(time.Now().UnixNano()) }

const markDirtySQL = `INSERT INTO rollup_dirty (kind, day, mark) VALUES (?, ?, ?)
	ON CONFLICT (kind, day) DO UPDATE SET mark = excluded.mark`

// clearMarkSQL removes a day's mark if it is still the one a refresh or a
// tally read or set: a newer mark means the day changed since.
const clearMarkSQL = `DELETE FROM rollup_dirty WHERE kind = ? AND day = ? AND mark = ?`

// markDirty records in tx that the raw rows of kind at unix time t changed.
func markDirty(ctx context.Context, tx *sql.Tx, kind string, t int64) error {
	_, err := tx.ExecContext(ctx, markDirtySQL, kind, utcDay(t), marks.Add(1))
	return err
}

// daysQuery lists the UTC days of the raw rows, in one pass over them.
func (r rollup) daysQuery() string {
	return `SELECT DISTINCT ` + utcDaySQL(r.sourceT) + ` FROM ` + r.source
}

// monthQuery sums the daily roll-up's rows of [?, ?) (local dates) by
// keys, selecting keys then values.
func (r rollup) monthQuery() string {
	sums := make([]string, len(r.values))
	for i, v := range r.values {
		sums[i] = "sum(" + v + ")"
	}
	keys := strings.Join(r.keys, ", ")
	return `SELECT ` + keys + `, ` + strings.Join(sums, ", ") + ` FROM ` + r.daily +
		` WHERE day >= ? AND day < ? GROUP BY ` + keys
}

// linesIn is the FROM clause of a query of purchase lines by time, the
// lines named as: the ranges of ids first (see migration 0017), then the
// lines of each range, found by id. The ranges are few (one for a few
// thousand lines) and do not overlap, so each line comes once.
func linesIn(as string) string {
	return `purchase_ranges AS pr CROSS JOIN purchase_lines AS ` + as + ` ON ` + as + `.id BETWEEN pr.first_id AND pr.last_id`
}

// linesAt is the condition, with linesIn, that the line as is in [?1, ?2)
// (unix seconds), the query's first two parameters: only the ranges whose
// times meet the period are read, then the lines at the exact times are
// kept. Plain parameters after it are ?3 and on.
func linesAt(as string) string {
	return `pr.last_at >= ?1 AND pr.first_at < ?2 AND ` + as + `.at >= ?1 AND ` + as + `.at < ?2`
}

// linesSince is the condition, with linesIn, that the line as is at or
// after ?1.
func linesSince(as string) string {
	return `pr.last_at >= ?1 AND ` + as + `.at >= ?1`
}

// utcDaySQL is utcDay of a column of unix times, in SQL.
func utcDaySQL(col string) string {
	return `((` + col + ` - CASE WHEN ` + col + ` < 0 THEN 86399 ELSE 0 END) / 86400)`
}

// utcDay is the day of unix time t, rounded down.
func utcDay(t int64) int64 {
	if t < 0 {
		return (t - 86399) / 86400
	}
	return t / 86400
}

// RefreshRollups brings the roll-ups up to date with what was loaded and
// answered, with days and months in zone, and returns how many days it
// recomputed. The first refresh, or one in another zone, rebuilds them
// all. The raw rows are read on a reader connection and each day is
// written in a short transaction of its own, so answers and loads are
// not held up; a refresh cut off is finished by the next.
func (db *DB) RefreshRollups(ctx context.Context, zone *time.Location) (int, error) {
	if err := db.checkRollupZone(ctx, zone); err != nil {
		return 0, fmt.Errorf("refresh roll-ups: %w", err)
	}
	type dirty struct {
		kind      string
		day, mark int64
	}
	var marked []dirty
	rows, err := db.read.QueryContext(ctx, `SELECT kind, day, mark FROM rollup_dirty ORDER BY kind, day`)
	if err != nil {
		return 0, fmt.Errorf("refresh roll-ups: %w", err)
	}
	for rows.Next() {
		var d dirty
		if err := rows.Scan(&d.kind, &d.day, &d.mark); err != nil {
			rows.Close()
			return 0, fmt.Errorf("refresh roll-ups: %w", err)
		}
		marked = append(marked, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("refresh roll-ups: %w", err)
	}
	if len(marked) == 0 {
		return 0, nil
	}
	done := 0
	for _, r := range rollups {
		// The local days a changed UTC day touches, and their months.
		days := map[string]time.Time{}
		months := map[string]time.Time{}
		for _, d := range marked {
			if d.kind != r.kind {
				continue
			}
			first := time.Unix(d.day*86400, 0).In(zone)
			last := time.Unix(d.day*86400+86399, 0).In(zone)
			for t := localDay(first); !t.After(last); t = t.AddDate(0, 0, 1) {
				days[t.Format(time.DateOnly)] = t
				m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, zone)
				months[m.Format("2006-01")] = m
			}
		}
		keys := sortedKeys(days)
		// Only the sales roll-up's days can be written by another (a
		// load's tally, see writeDay). A feedback day is written whatever
		// answers marked it meanwhile: with answers coming all day, a
		// check would keep it from ever being written.
		var read map[int64]int64
		if r.kind == rollupSales {
			read = map[int64]int64{}
			for _, d := range marked {
				if d.kind == r.kind {
					read[d.day] = d.mark
				}
			}
		}
		if offset, ok := db.byScan(ctx, r, days, zone); ok {
			if err := db.scanDays(ctx, r, keys, days, offset, read); err != nil {
				return done, fmt.Errorf("refresh %s roll-up: %w", r.kind, err)
			}
		} else if err := db.rollDays(ctx, r, keys, days, read); err != nil {
			return done, fmt.Errorf("refresh %s roll-up: %w", r.kind, err)
		}
		done += len(keys)
		for _, key := range sortedKeys(months) {
			m := months[key]
			from, to := m.Format(time.DateOnly), m.AddDate(0, 1, 0).Format(time.DateOnly)
			if err := db.rollMonth(ctx, r, key, from, to); err != nil {
				return done, fmt.Errorf("refresh %s roll-up of %s: %w", r.kind, key, err)
			}
		}
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range marked {
			if _, err := tx.ExecContext(ctx, clearMarkSQL, d.kind, d.day, d.mark); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return done, fmt.Errorf("refresh roll-ups: %w", err)
	}
	return done, nil
}

// scanShare: the days of a roll-up with a scan query are recomputed by
// full scans when those to refresh are at least a quarter of the days
// its raw rows span (a first load, or an export of a month), and one day
// at a time when they are fewer (a nightly export, an answer).
const scanShare = 4

// byScan says whether the local days of r are best recomputed by scans
// of the raw rows, and with what offset from UTC: only where the zone's
// offset is the same on each of those days and around them.
func (db *DB) byScan(ctx context.Context, r rollup, days map[string]time.Time, zone *time.Location) (int64, bool) {
	if r.scan == "" || r.span == "" || len(days) < 2 {
		return 0, false
	}
	var first, last sql.NullInt64
	if err := db.read.QueryRowContext(ctx, r.span).Scan(&first, &last); err != nil || !first.Valid {
		return 0, false
	}
	if span := (last.Int64-first.Int64)/86400 + 1; int64(len(days))*scanShare < span {
		return 0, false
	}
	utc := map[int64]bool{}
	for _, t := range days {
		utc[utcDay(t.Unix())] = true
	}
	return fixedOffset(zone, utc)
}

// rollDays recomputes the local days keys of r one query a day, in
// parallel, as many as there are cores and readers. read holds the marks
// the refresh read, by UTC day (see writeDay).
func (db *DB) rollDays(ctx context.Context, r rollup, keys []string, days map[string]time.Time, read map[int64]int64) error {
	errs := make([]error, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), readers, len(keys)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(keys); i = int(next.Add(1) - 1) {
				t := days[keys[i]]
				errs[i] = db.rollDay(ctx, r, keys[i], t.Unix(), t.AddDate(0, 0, 1).Unix(), read)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", keys[i], err)
		}
	}
	return nil
}

// scanDays recomputes the local days keys (sorted) of r, whose zone is
// offset seconds from UTC on each of them, with r's scan: the days are
// split into as many runs as there are cores and readers, each run
// summed by one pass over the raw rows on a reader, and each day written
// as soon as its rows are in, so a run holds one day's sums at a time.
func (db *DB) scanDays(ctx context.Context, r rollup, keys []string, days map[string]time.Time, offset int64, read map[int64]int64) error {
	parts := min(runtime.GOMAXPROCS(0), readers, len(keys))
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		run := keys[i*len(keys)/parts : (i+1)*len(keys)/parts]
		wg.Go(func() { errs[i] = db.scanRun(ctx, r, run, days, offset, read) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scanRun recomputes the consecutive local days run of r in one pass.
// Days between them that are not in run are summed but not written: they
// are up to date, and a load may have added to them since the pass began.
func (db *DB) scanRun(ctx context.Context, r rollup, run []string, days map[string]time.Time, offset int64, read map[int64]int64) error {
	from, to := days[run[0]].Unix(), days[run[len(run)-1]].AddDate(0, 0, 1).Unix()
	left := map[string]bool{}
	for _, day := range run {
		left[day] = true
	}
	rows, err := db.read.QueryContext(ctx, r.scan, from, to, offset)
	if err != nil {
		return fmt.Errorf("%s to %s: %w", run[0], run[len(run)-1], err)
	}
	defer rows.Close()
	n := len(r.keys) + len(r.values)
	var day string
	var vals [][]any
	write := func() error {
		if !left[day] {
			return nil
		}
		delete(left, day)
		t := days[day]
		if err := db.writeDay(ctx, r, day, t.Unix(), t.AddDate(0, 0, 1).Unix(), vals, read); err != nil {
			return fmt.Errorf("%s: %w", day, err)
		}
		return nil
	}
	var num int64
	for rows.Next() {
		row := make([]any, n+1)
		ptrs := make([]any, n+1)
		ptrs[0] = &num
		for i := 1; i <= n; i++ {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if d := dayDate(num); d != day {
			if err := write(); err != nil {
				return err
			}
			day, vals = d, vals[:0]
		}
		row[0] = day
		vals = append(vals, row)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := write(); err != nil {
		return err
	}
	// Days left have no rows now.
	for _, d := range run {
		if day, vals = d, nil; left[day] {
			if err := write(); err != nil {
				return err
			}
		}
	}
	return nil
}

// rollDayHook, if set by a test, runs between the read and the write of
// a day's roll-up, with the day.
var rollDayHook func(day string)

// rollDay replaces the rows of one day of a daily roll-up with the sums of
// the raw rows of [from, to), read on a reader.
func (db *DB) rollDay(ctx context.Context, r rollup, day string, from, to int64, read map[int64]int64) error {
	rows, err := db.read.QueryContext(ctx, r.query, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := len(r.keys) + len(r.values)
	var vals [][]any
	for rows.Next() {
		row := make([]any, n+1)
		row[0] = day
		ptrs := make([]any, n)
		for i := range ptrs {
			ptrs[i] = &row[i+1]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		vals = append(vals, row)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return db.writeDay(ctx, r, day, from, to, vals, read)
}

// writeDay replaces the rows of one day of a daily roll-up, the unix
// times [from, to), with vals, rows of the day then keys then values, in a
// write transaction. It writes nothing if a mark the refresh read for a
// UTC day of the day (read, by UTC day) is gone or changed: the day was
// written since from newer rows (ApplyTally), or will be recomputed.
func (db *DB) writeDay(ctx context.Context, r rollup, day string, from, to int64, vals [][]any, read map[int64]int64) error {
	if rollDayHook != nil {
		rollDayHook(day)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		for u := utcDay(from); u <= utcDay(to-1); u++ {
			mark, ok := read[u]
			if !ok {
				continue
			}
			var now int64
			err := tx.QueryRowContext(ctx, `SELECT mark FROM rollup_dirty WHERE kind = ? AND day = ?`, r.kind, u).Scan(&now)
			if errors.Is(err, sql.ErrNoRows) || err == nil && now != mark {
				return nil
			}
			if err != nil {
				return err
			}
		}
		return replaceDay(ctx, tx, r, day, vals)
	})
}

// replaceDay replaces the rows of one day of a daily roll-up with vals,
// rows of the day then keys then values, in tx.
func replaceDay(ctx context.Context, tx *sql.Tx, r rollup, day string, vals [][]any) error {
	n := len(r.keys) + len(r.values)
	cols := append(append([]string{"day"}, r.keys...), r.values...)
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+r.daily+` WHERE day = ?`, day); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO `+r.daily+` (`+strings.Join(cols, ", ")+`) VALUES (?`+strings.Repeat(", ?", n)+`)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, v := range vals {
		if _, err := st.ExecContext(ctx, v...); err != nil {
			return err
		}
	}
	return nil
}

// rollMonth replaces the rows of a month of a monthly roll-up with the
// sums of its days [from, to), in one write transaction.
func (db *DB) rollMonth(ctx context.Context, r rollup, month, from, to string) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return replaceMonth(ctx, tx, r, month, from, to) })
}

// replaceMonth is rollMonth in tx.
func replaceMonth(ctx context.Context, tx *sql.Tx, r rollup, month, from, to string) error {
	cols := strings.Join(append(append([]string{"month"}, r.keys...), r.values...), ", ")
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+r.monthly+` WHERE month = ?`, month); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+r.monthly+` (`+cols+`) SELECT ?, * FROM (`+r.monthQuery()+`)`,
		month, from, to)
	return err
}

// checkRollupZone rebuilds every roll-up when they were never built or
// were built in another zone: it empties them and marks every day that
// has raw rows (found on a reader). The zone is cleared first, so that
// the lines loaded meanwhile mark their days instead of adding to sums
// about to be emptied.
func (db *DB) checkRollupZone(ctx context.Context, zone *time.Location) error {
	var was string
	if err := db.read.QueryRowContext(ctx, `SELECT zone FROM rollup_state`).Scan(&was); err != nil {
		return err
	}
	if was == zone.String() {
		return nil
	}
	if was != "" {
		err := db.tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE rollup_state SET zone = ''`)
			return err
		})
		if err != nil {
			return err
		}
	}
	days := map[string]map[int64]bool{}
	for _, r := range rollups {
		days[r.kind] = map[int64]bool{}
		rows, err := db.read.QueryContext(ctx, r.daysQuery())
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			days[r.kind][v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range rollups {
			for _, t := range []string{r.daily, r.monthly} {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
					return err
				}
			}
			for d := range days[r.kind] {
				if _, err := tx.ExecContext(ctx, markDirtySQL, r.kind, d, marks.Add(1)); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE rollup_state SET zone = ?`, zone.String())
		return err
	})
}

func localDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// MonthlySales returns the sales by product category of each month from
// first to last (first instants of months in the roll-ups' zone), keyed
// "2006-01", from the roll-ups: call RefreshRollups first.
func (db *DB) MonthlySales(ctx context.Context, first, last time.Time, sc Scope) (map[string][]CategorySales, error) {
	j := sc.sql()
	rows, err := db.read.QueryContext(ctx, `SELECT month, category, sum(revenue_kop), sum(returns_kop), sum(receipts), sum(lines)
		FROM sales_monthly WHERE month >= ? AND month <= ? AND `+inScope+`
		GROUP BY month, category ORDER BY month, category`, first.Format("2006-01"), last.Format("2006-01"), j, j)
	if err != nil {
		return nil, fmt.Errorf("monthly sales: %w", err)
	}
	defer rows.Close()
	out := map[string][]CategorySales{}
	for rows.Next() {
		var m string
		var c CategorySales
		if err := rows.Scan(&m, &c.Category, &c.RevenueKop, &c.ReturnsKop, &c.Receipts, &c.Lines); err != nil {
			return nil, fmt.Errorf("monthly sales: %w", err)
		}
		out[m] = append(out[m], c)
	}
	return out, rows.Err()
}

// MonthlyFeedback counts answers by category and tone for each month from
// first to last, keyed "2006-01", from the roll-ups: call RefreshRollups
// first.
func (db *DB) MonthlyFeedback(ctx context.Context, first, last time.Time, sc Scope) (map[string]map[Feedback]int64, error) {
	j := sc.sql()
	rows, err := db.read.QueryContext(ctx, `SELECT month, category, tone, sum(answers)
		FROM feedback_monthly WHERE month >= ? AND month <= ? AND `+inScope+`
		GROUP BY month, category, tone`, first.Format("2006-01"), last.Format("2006-01"), j, j)
	if err != nil {
		return nil, fmt.Errorf("monthly feedback: %w", err)
	}
	defer rows.Close()
	out := map[string]map[Feedback]int64{}
	for rows.Next() {
		var m string
		var f Feedback
		var n int64
		if err := rows.Scan(&m, &f.Category, &f.Tone, &n); err != nil {
			return nil, fmt.Errorf("monthly feedback: %w", err)
		}
		if out[m] == nil {
			out[m] = map[Feedback]int64{}
		}
		out[m][f] = n
	}
	return out, rows.Err()
}
