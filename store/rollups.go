package store

import (
	"context"
	"database/sql"
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
	// hourly says sourceT is indexed by the hour (sourceT / 3600), which
	// lists the rows' days without reading the rows.
	hourly bool
	// query sums raw rows of [?, ?) (unix seconds) by keys, selecting
	// keys then values.
	query string
}

var rollups = []rollup{{
	kind: "sales", daily: "sales_daily", monthly: "sales_monthly",
	keys:   []string{"store_code", "category"},
	values: []string{"revenue_kop", "returns_kop", "receipts", "lines"},
	source: "purchase_lines", sourceT: "at", hourly: true,
	// A receipt belongs to one day, so its count per day adds up to the
	// month's.
	query: `SELECT store_code, category,
		coalesce(sum(CASE WHEN qty_milli > 0 THEN sum_kop END), 0),
		coalesce(-sum(CASE WHEN qty_milli < 0 THEN sum_kop END), 0),
		count(DISTINCT receipt), count(*)
		FROM purchase_lines WHERE ` + linesAt("at") + ` GROUP BY store_code, category`,
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

// markDirty records in tx that the raw rows of kind at unix time t changed.
func markDirty(ctx context.Context, tx *sql.Tx, kind string, t int64) error {
	_, err := tx.ExecContext(ctx, markDirtySQL, kind, utcDay(t), marks.Add(1))
	return err
}

// daysQuery lists the UTC days of the raw rows, or their hours if hourly.
func (r rollup) daysQuery() string {
	if r.hourly {
		return `SELECT DISTINCT ` + r.sourceT + ` / 3600 FROM ` + r.source
	}
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

// linesAt is the condition that col, the time of a purchase line, is in
// [?1, ?2) (unix seconds), the query's first two parameters: SQLite finds
// the lines through the hours of purchase_lines_hour, then keeps those at
// the exact times. Plain parameters after it are ?3 and on.
func linesAt(col string) string {
	return col + ` / 3600 BETWEEN ?1 / 3600 AND (?2 - 1) / 3600 AND ` + col + ` >= ?1 AND ` + col + ` < ?2`
}

// linesSince is the condition that col, the time of a purchase line, is
// at or after ?1, found through the hours as linesAt does.
func linesSince(col string) string {
	return col + ` / 3600 >= ?1 / 3600 AND ` + col + ` >= ?1`
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
		// Days in parallel, as many as there are cores and readers.
		keys := sortedKeys(days)
		errs := make([]error, len(keys))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), readers, len(keys)) {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(keys); i = int(next.Add(1) - 1) {
					t := days[keys[i]]
					errs[i] = db.rollDay(ctx, r, keys[i], t.Unix(), t.AddDate(0, 0, 1).Unix())
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return done, fmt.Errorf("refresh %s roll-up of %s: %w", r.kind, keys[i], err)
			}
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
			if _, err := tx.ExecContext(ctx, `DELETE FROM rollup_dirty WHERE kind = ? AND day = ? AND mark = ?`,
				d.kind, d.day, d.mark); err != nil {
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

// rollDayHook, if set by a test, runs between the read and the write of
// a day's roll-up.
var rollDayHook func()

// rollDay replaces the rows of one day of a daily roll-up with the sums of
// the raw rows of [from, to), read on a reader.
func (db *DB) rollDay(ctx context.Context, r rollup, day string, from, to int64) error {
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
	if rollDayHook != nil {
		rollDayHook()
	}
	cols := append(append([]string{"day"}, r.keys...), r.values...)
	insert := `INSERT INTO ` + r.daily + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", n) + `)`
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+r.daily+` WHERE day = ?`, day); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, insert)
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
	})
}

// rollMonth replaces the rows of a month of a monthly roll-up with the
// sums of its days [from, to), in one write transaction.
func (db *DB) rollMonth(ctx context.Context, r rollup, month, from, to string) error {
	cols := strings.Join(append(append([]string{"month"}, r.keys...), r.values...), ", ")
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+r.monthly+` WHERE month = ?`, month); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO `+r.monthly+` (`+cols+`) SELECT ?, * FROM (`+r.monthQuery()+`)`,
			month, from, to)
		return err
	})
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
			if !r.hourly {
				days[r.kind][v] = true
				continue
			}
			// SQLite divides toward zero: hour v holds the times of
			// [v*3600, v*3600+3599], or down to v*3600-3599 from v = 0 down.
			first, last := v*3600, v*3600+3599
			if v <= 0 {
				first = v*3600 - 3599
			}
			days[r.kind][utcDay(first)], days[r.kind][utcDay(last)] = true, true
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
