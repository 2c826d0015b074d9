package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A batch that commits while a refresh is recomputing a local day from
// its snapshot must not add to that day, even when the line's own UTC day
// is not marked: the local day also covers a marked UTC day, and the
// refresh's write would erase the sums. It marks its day instead, and the
// next refresh counts it.
func TestRollSales_DuringRefreshOfTheLocalDay(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	load := func(at time.Time, receipts ...string) {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range receipts {
			if _, err := b.AddPurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: r, Line: 1, At: at,
				Category: "Диваны", QtyMilli: 1000, SumKop: 100}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	// 15:00 on 31 October in Moscow marks UTC 31 October; 01:00 on 31
	// October in Moscow is still UTC 30 October, which is not marked.
	load(time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC), "a")
	var once sync.Once
	rollDayHook = func(string) {
		once.Do(func() {
			var many []string
			for i := range 8 {
				many = append(many, fmt.Sprint("b", i))
			}
			load(time.Date(2026, 10, 30, 22, 0, 0, 0, time.UTC), many...)
		})
	}
	defer func() { rollDayHook = nil }()
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	rollDayHook = nil
	if _, err := db.RefreshRollups(ctx, moscow); err != nil {
		t.Fatal(err)
	}
	octoberHolds(t, db, moscow, 9)
}

// octoberHolds checks that October 2026's sales roll-up is what its
// lines give, lines lines in one category.
func octoberHolds(t *testing.T, db *DB, zone *time.Location, lines int64) {
	t.Helper()
	ctx := context.Background()
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, zone)
	sales, err := db.MonthlySales(ctx, oct, oct, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := db.SalesByCategory(ctx, Period{From: oct, To: oct.AddDate(0, 1, 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sales["2026-10"]; !slices.Equal(got, raw) || len(raw) != 1 || raw[0].Lines != lines {
		t.Errorf("October: roll-up %+v, the lines give %+v (want %d lines)", got, raw, lines)
	}
}

// While a load runs, the writer has its larger page cache, and its writes
// reach the database file through the checkpoints run aside, although the
// writer's own automatic checkpoint waits for 20,000 pages; afterwards the
// writer has SQLite's default cache and checkpoints as before.
func TestLoadCache_CheckpointsAside(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	path := db.Path()
	pragma := func(name string) int { // on the writer
		t.Helper()
		var n int
		if err := db.write.QueryRowContext(ctx, `PRAGMA `+name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	restore, err := db.LoadCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := pragma("wal_autocheckpoint"); n != 20000 {
		t.Errorf("during a load: wal_autocheckpoint %d, want 20000", n)
	}
	if n := pragma("cache_size"); n != -16384 {
		t.Errorf("during a load: cache_size %d, want -16384 (16 MiB)", n)
	}
	before := size()
	b, err := db.BeginBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 { // about 250 pages, far below the backstop
		if err := b.QueuePurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: fmt.Sprint(i), Line: 1,
			At: time.Unix(1793361600, 0), Product: "Диван-кровать \"Марсель\"", Category: "Диваны", QtyMilli: 1000, SumKop: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); size() < before+500*1024; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 5 s after the load's commit (was %d): nothing checkpointed", size(), before)
		}
	}
	restore()
	if n := pragma("wal_autocheckpoint"); n != 1000 {
		t.Errorf("after the load: wal_autocheckpoint %d, want 1000", n)
	}
	if n := pragma("cache_size"); n != -2000 {
		t.Errorf("after the load: cache_size %d, want SQLite's default -2000", n)
	}
}

// While a load commits batch after batch, the WAL is restarted each time
// it is walRestartFrames long, although the writer's own checkpoint waits
// for 20,000 pages: the WAL's header counts its restarts. Nothing written
// is lost on the way. With the restart out of reach, as many of the same
// commits restart the WAL far less often (SQLite restarts it by itself
// only when a passive checkpoint happens to finish between two of them).
// Counted over a number of commits, not of seconds: under the race
// detector on a busy machine a second holds few commits.
func TestLoadCache_RestartsWAL(t *testing.T) {
	defer func(every time.Duration, frames int) { checkpointEvery, walRestartFrames = every, frames }(checkpointEvery, walRestartFrames)
	checkpointEvery = 5 * time.Millisecond
	const batches = 300
	restartsOver := func(t *testing.T, frames int) uint32 {
		walRestartFrames = frames
		ctx := context.Background()
		db := openTestDB(t)
		path := db.Path()
		// The checkpoint sequence number, bytes 12-15 of the WAL's
		// header, goes up by one at each restart.
		restarts := func() uint32 {
			t.Helper()
			h := make([]byte, 16)
			f, err := os.Open(path + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.ReadAt(h, 0); err != nil {
				t.Fatal(err)
			}
			return uint32(h[12])<<24 | uint32(h[13])<<16 | uint32(h[14])<<8 | uint32(h[15])
		}
		restore, err := db.LoadCache(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first, lines := restarts(), 0
		for range batches {
			b, err := db.BeginBatch(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			for range 200 {
				lines++
				if err := b.QueuePurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: fmt.Sprint(lines), Line: 1,
					At: time.Unix(1793361600, 0), Product: "Стул", Category: "Стулья", QtyMilli: 1000, SumKop: 100}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		n := restarts() - first
		restore()
		var count int
		var check string
		if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM purchase_lines`).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if err := db.write.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil {
			t.Fatal(err)
		}
		if count != lines || check != "ok" {
			t.Errorf("%d lines in the table, %d written; integrity_check %q", count, lines, check)
		}
		return n
	}
	var reach, outOfReach uint32
	t.Run("restarts", func(t *testing.T) { reach = restartsOver(t, 64) })
	t.Run("out of reach", func(t *testing.T) { outOfReach = restartsOver(t, 1<<30) })
	if reach < 10 || reach < 4*outOfReach {
		t.Errorf("over %d commits the WAL restarted %d times, %d with the restart out of reach; want 10 or more, and 4 times as many",
			batches, reach, outOfReach)
	}
}

// Every query that finds purchase lines by time reads the ranges of ids
// first and then the lines of each range by id, and retention lists the
// recent lines once instead of searching them for each card: a plan that
// scans the lines would go unnoticed on test data and take hours on a
// chain's.
func TestQueryPlans_PurchaseLinesByRange(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).Unix()
	for _, tt := range []struct {
		name  string
		query string
		args  []any
		once  bool // the lines are listed once, not searched for each outer row
	}{
		{"sales roll-up of a day", rollups[0].query, []any{from, to}, false},
		{"sales roll-up of many days in one pass", rollups[0].scan, []any{from, to, 10800}, false},
		{"plan: candidates", candidatesQuery, []any{from, to, from}, false},
		{"plan --dry-run: reasons", reasonsQuery, []any{from, to, from, from}, false},
		{"sales by category", salesByCategoryQuery, []any{from, to, "[]", "[]"}, false},
		{"retention of cards", retainCardsQuery, []any{from}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			text := strings.Join(plan, "\n")
			ranges := slices.Index(plan, "SCAN pr")
			lines := slices.IndexFunc(plan, func(s string) bool {
				return strings.HasPrefix(s, "SEARCH p USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)")
			})
			if ranges < 0 || lines < ranges {
				t.Errorf("purchase lines not found through the ranges of their ids:\n%s", text)
			}
			for _, step := range plan {
				if step == "SCAN purchase_lines" || step == "SCAN p" {
					t.Errorf("a scan of the purchase lines:\n%s", text)
				}
			}
			if tt.once && strings.Contains(text, "CORRELATED") {
				t.Errorf("the recent lines are searched for each card:\n%s", text)
			}
		})
	}
}

// openTestDB opens a new database for a test of the package's insides,
// as open does for the outside tests.
func openTestDB(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Recomputing days by scans of the purchase lines gives what a query a
// day gives: sums, returns and receipts split across categories and
// midnight, a day between others that is not to be written, and a day
// that has no lines left. Scans are chosen only for many days at a
// fixed offset from UTC.
func TestRollups_ScanMatchesDayByDay(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 9, 20, 0, 0, 0, 0, moscow)
	b, err := db.BeginBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 3000 {
		at := start.Add(time.Duration(rng.IntN(20*24*3600)) * time.Second)
		if at.Day() == 1 {
			continue // 1 October: a day with no lines
		}
		for l := range 1 + rng.IntN(4) {
			qty := int64(1000 * (1 + rng.IntN(3)))
			if rng.IntN(20) == 0 {
				qty = -qty
			}
			if _, err := b.AddPurchaseLine(ctx, PurchaseLine{StoreCode: fmt.Sprint(rng.IntN(3)), Receipt: fmt.Sprint("r", r),
				Line: l + 1, At: at, Category: []string{"", "Диваны", "Свет"}[rng.IntN(3)], QtyMilli: qty, SumKop: qty * 7}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	days := map[string]time.Time{}
	for d := start; d.Before(start.AddDate(0, 0, 20)); d = d.AddDate(0, 0, 1) {
		days[d.Format(time.DateOnly)] = d
	}
	keys := sortedKeys(days)
	dump := func() string {
		t.Helper()
		rows, err := db.read.QueryContext(ctx, `SELECT day, store_code, category, revenue_kop, returns_kop, receipts, lines
			FROM sales_daily ORDER BY 1, 2, 3`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out strings.Builder
		for rows.Next() {
			var day, st, cat string
			var rev, ret, rc, n int64
			if err := rows.Scan(&day, &st, &cat, &rev, &ret, &rc, &n); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&out, day, st, cat, rev, ret, rc, n)
		}
		return out.String()
	}
	stale := func() {
		t.Helper()
		if _, err := db.write.ExecContext(ctx, `DELETE FROM sales_daily`); err != nil {
			t.Fatal(err)
		}
		for _, day := range []string{"2026-10-01", "2026-10-05", "2026-10-06"} {
			if _, err := db.write.ExecContext(ctx, `INSERT INTO sales_daily (day, store_code, category, revenue_kop, returns_kop, receipts, lines)
				VALUES (?, 'stale', '', 1, 1, 1, 1)`, day); err != nil {
				t.Fatal(err)
			}
		}
	}
	stale()
	if err := db.rollDays(ctx, rollups[0], keys, days, nil); err != nil {
		t.Fatal(err)
	}
	want := dump()
	if strings.Contains(want, "stale") || !strings.Contains(want, "2026-09-20") || !strings.Contains(want, "2026-10-09") {
		t.Fatalf("day by day:\n%s", want)
	}
	// 5 October is left out: a scan sums it but must not write it.
	delete(days, "2026-10-05")
	keys = sortedKeys(days)
	offset, ok := db.byScan(ctx, rollups[0], days, moscow)
	if !ok || offset != 3*3600 {
		t.Fatalf("19 of 20 days in Moscow: by scan %v at offset %d, want a scan at +3h", ok, offset)
	}
	stale()
	if err := db.scanDays(ctx, rollups[0], keys, days, offset, nil); err != nil {
		t.Fatal(err)
	}
	got := dump()
	var wantScan strings.Builder
	for _, l := range strings.SplitAfter(want, "\n") {
		switch {
		case !strings.HasPrefix(l, "2026-10-05 "):
			wantScan.WriteString(l)
		case !strings.Contains(wantScan.String(), "stale"):
			wantScan.WriteString("2026-10-05 stale  1 1 1 1\n")
		}
	}
	if got != wantScan.String() {
		t.Errorf("by scan:\n%s\nday by day:\n%s", got, wantScan.String())
	}

	one := map[string]time.Time{"2026-10-02": days["2026-10-02"], "2026-10-03": days["2026-10-03"]}
	if _, ok := db.byScan(ctx, rollups[0], one, moscow); ok {
		t.Error("2 of 20 days: by scan, want a query a day")
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	across := map[string]time.Time{}
	for d := time.Date(2026, 9, 20, 0, 0, 0, 0, berlin); d.Month() == 9 || d.Day() < 30; d = d.AddDate(0, 0, 1) {
		across[d.Format(time.DateOnly)] = d
	}
	if _, ok := db.byScan(ctx, rollups[0], across, berlin); ok {
		t.Error("days across Berlin's change of offset: by scan, want a query a day")
	}
}

// A line boxed ahead of its insert (Box) is stored as one the insert
// boxes itself: every column of every row, with the lines in the same
// statements, loaded before or twice in the queue alike.
func TestQueuePurchaseLine_BoxedAsUnboxed(t *testing.T) {
	ctx := context.Background()
	msk := time.FixedZone("MSK", 3*3600)
	line := func(i int) PurchaseLine {
		return PurchaseLine{StoreCode: fmt.Sprint("S", i%3), Receipt: fmt.Sprint("R", i/2), Line: i%2 + 1,
			At:           time.Date(2026, 11, 1, 9, 0, 0, 0, msk).Add(time.Duration(i) * time.Minute),
			CustomerCode: fmt.Sprint("C", i%7), ProductCode: fmt.Sprint("P", i%5), Product: fmt.Sprint("Товар ", i%5),
			Category: []string{"", "Диваны", "Свет"}[i%3], QtyMilli: int64(i%4-1) * 500, PriceKop: int64(i) * 100,
			SumKop: int64(i) * 51, Seller: fmt.Sprint("Продавец ", i%2)}
	}
	rows := func(boxed bool) [][]any {
		t.Helper()
		db := openTestDB(t)
		for _, lines := range [][]int{{3, 4}, append(seq(0, 150), 7)} {
			b, err := db.BeginBatch(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range lines {
				l := line(i)
				if boxed {
					l.Box()
				}
				if err := b.QueuePurchaseLine(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		r, err := db.write.Query(`SELECT * FROM purchase_lines ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cols, _ := r.Columns()
		var out [][]any
		for r.Next() {
			v := make([]any, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			if err := r.Scan(p...); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	unboxed, boxed := rows(false), rows(true)
	if len(unboxed) != 150 {
		t.Fatalf("%d rows, want 150", len(unboxed))
	}
	if !reflect.DeepEqual(boxed, unboxed) {
		t.Errorf("boxed lines stored\n%v\nunboxed\n%v", boxed, unboxed)
	}
}

// seq returns from, from+1, ..., to-1.
func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// upsertCustomer is what writing a card means, as one SQL statement: the
// reference writeCards is held to.
const upsertCustomer = `INSERT INTO customers (code, name, email, phone, birth_date, consent, store_code, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (code) DO UPDATE SET name = excluded.name, email = excluded.email,
		phone = excluded.phone, birth_date = excluded.birth_date, consent = excluded.consent,
		store_code = excluded.store_code, updated_at = excluded.updated_at
	WHERE forgotten = 0 AND (name, email, phone, birth_date, consent, store_code) IS NOT
		(excluded.name, excluded.email, excluded.phone, excluded.birth_date, excluded.consent, excluded.store_code)`

// Queued cards are written together, with the same result as the upsert
// of each in turn: a card loaded before and unchanged is a duplicate, a
// changed field updates it, a card twice among those written together
// applies in turn, and a forgotten card is never filled again.
func TestQueueCustomer_AsUpsert(t *testing.T) {
	ctx := context.Background()
	card := func(code, name string, consent bool) Customer {
		return Customer{Code: code, Name: name, Email: code + "@example.ru", Consent: consent, StoreCode: "1"}
	}
	before := []Customer{card("a", "Иванов", true), card("b", "Петров", true), card("gone", "Сидоров", true)}
	var export []Customer
	export = append(export, card("a", "Иванов", true), card("b", "Петров", false), card("gone", "Сидоров", false),
		card("a", "Иванов А.", true), card("a", "Иванов А. А.", true)) // changed twice in a statement
	for i := range 150 { // two whole statements and a part
		export = append(export, card(fmt.Sprint("n", i), "Новый", i%2 == 0))
	}
	// Twice in one statement: inserted, then changed; then the same again.
	export = append(export, card("twice", "Первый", true), card("twice", "Второй", true), card("twice", "Второй", true))
	export = append(export, Customer{Code: "empty"}, Customer{Code: "empty"})

	type result struct {
		counts FileCounts
		cards  []string
	}
	// how writes a card: "upsert" (the reference), "add" (AddCustomer) or
	// "queue" (QueueCustomer).
	load := func(how string) result {
		db := openTestDB(t)
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range before {
			if _, err := b.AddCustomer(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Forget(ctx, "gone@example.ru", ""); err != nil {
			t.Fatal(err)
		}
		if b, err = db.BeginBatch(ctx, 0); err != nil {
			t.Fatal(err)
		}
		var c FileCounts
		for _, cu := range export {
			var changed bool
			switch how {
			case "queue":
				err = b.QueueCustomer(ctx, cu)
			case "add":
				changed, err = b.AddCustomer(ctx, cu)
			default:
				changed, err = b.exec(ctx, upsertCustomer, cu.Code, nullString(cu.Name), nullString(cu.Email),
					nullString(cu.Phone), nullString(cu.BirthDate), cu.Consent, cu.StoreCode, db.now())
			}
			if how != "queue" {
				if changed {
					c.Loaded++
				} else {
					c.Duplicate++
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Checkpoint(ctx, len(export), &c); err != nil {
			t.Fatal(err)
		}
		rows, err := db.read.QueryContext(ctx, `SELECT code, coalesce(name, '-'), coalesce(email, '-'), consent, store_code, forgotten
			FROM customers ORDER BY code`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		r := result{counts: c}
		for rows.Next() {
			var code, name, email, store string
			var consent, forgotten int
			if err := rows.Scan(&code, &name, &email, &consent, &store, &forgotten); err != nil {
				t.Fatal(err)
			}
			r.cards = append(r.cards, fmt.Sprint(code, name, email, consent, store, forgotten))
		}
		return r
	}
	one := load("upsert")
	if want := (FileCounts{Loaded: 1 + 2 + 150 + 2 + 1, Duplicate: 2 + 1 + 1}); one.counts != want {
		t.Errorf("one by one: counts %+v, want %+v", one.counts, want)
	}
	for _, how := range []string{"queue", "add"} {
		got := load(how)
		if got.counts != one.counts {
			t.Errorf("%s: counts %+v, upserted one by one %+v", how, got.counts, one.counts)
		}
		if !slices.Equal(got.cards, one.cards) {
			t.Errorf("%s: cards\n%v\nupserted one by one:\n%v", how, got.cards, one.cards)
		}
	}
	if all := strings.Join(one.cards, "\n"); len(one.cards) != 3+150+2 || !strings.Contains(all, "twiceВторой") ||
		!strings.Contains(all, "aИванов А. А.") {
		t.Errorf("cards:\n%s", strings.Join(one.cards, "\n"))
	}
}

// A batch whose context ends writes nothing: rows written through the
// driver itself after database/sql gave up the transaction would be
// committed one statement at a time. (A stopped load ended with cards
// past its checkpoint loaded, and counted them as duplicates when it
// resumed.)
func TestBatch_CanceledWritesNothing(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	b, err := db.BeginBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // for database/sql to react to the end, if it does
	for i := range cardsPerWrite {
		b.QueueCustomer(ctx, Customer{Code: fmt.Sprint(i)})
	}
	for i := range linesPerInsert {
		b.QueuePurchaseLine(ctx, PurchaseLine{StoreCode: "1", Receipt: fmt.Sprint(i), Line: 1, At: time.Unix(1793361600, 0), QtyMilli: 1000})
	}
	b.Rollback()
	var cards, lines int
	if err := db.read.QueryRow(`SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM purchase_lines)`).Scan(&cards, &lines); err != nil {
		t.Fatal(err)
	}
	if cards != 0 || lines != 0 {
		t.Fatalf("%d cards and %d lines written by a batch whose context ended, want none", cards, lines)
	}
}
