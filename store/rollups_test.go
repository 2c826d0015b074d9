package store_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
)

// The roll-ups give what the raw lines and answers give, month by month,
// in the zone they were built in, after each kind of change: new lines,
// lines given a category by a catalog, new answers, another zone.
func TestRollups_MatchRawRows(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	lines := []store.PurchaseLine{
		{StoreCode: "1", Receipt: "a", Line: 1, At: utc("2026-10-15 09:00:00"), Category: "Диваны", QtyMilli: 1000, SumKop: 5000000},
		{StoreCode: "1", Receipt: "a", Line: 2, At: utc("2026-10-15 09:00:00"), Category: "Свет", QtyMilli: 2000, SumKop: 300000},
		// 00:30 on 1 November in Moscow, still October in UTC.
		{StoreCode: "1", Receipt: "b", Line: 1, At: utc("2026-10-31 21:30:00"), Category: "Диваны", QtyMilli: 1000, SumKop: 4000000},
		{StoreCode: "2", Receipt: "c", Line: 1, At: utc("2026-11-02 12:00:00"), Category: "Диваны", QtyMilli: -1000, SumKop: -4000000},
		{StoreCode: "2", Receipt: "d", Line: 1, At: utc("2026-11-02 12:00:00"), ProductCode: "P1", QtyMilli: 1000, SumKop: 99000},
	}
	load := func(ls ...store.PurchaseLine) {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if _, err := b.AddPurchaseLine(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	months := func(zone *time.Location) []time.Time {
		var out []time.Time
		for m := time.Date(2026, 9, 1, 0, 0, 0, 0, zone); m.Month() != 1; m = m.AddDate(0, 1, 0) {
			out = append(out, m)
		}
		return out
	}
	pending := func() int64 {
		t.Helper()
		s, err := db.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.RollupDaysPending
	}
	check := func(step string, zone *time.Location, wantDays int) {
		t.Helper()
		if n := pending(); wantDays > 0 && n == 0 {
			t.Errorf("%s: status shows no days pending before a refresh of %d", step, wantDays)
		}
		days, err := db.RefreshRollups(ctx, zone)
		if err != nil {
			t.Fatal(err)
		}
		if wantDays >= 0 && days != wantDays {
			t.Errorf("%s: %d days recomputed, want %d", step, days, wantDays)
		}
		if n := pending(); n != 0 {
			t.Errorf("%s: status shows %d days pending after the refresh", step, n)
		}
		ms := months(zone)
		sales, err := db.MonthlySales(ctx, ms[0], ms[len(ms)-1], nil)
		if err != nil {
			t.Fatal(err)
		}
		feedback, err := db.MonthlyFeedback(ctx, ms[0], ms[len(ms)-1], nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			p := store.Period{From: m, To: m.AddDate(0, 1, 0)}
			raw, err := db.SalesByCategory(ctx, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := sales[m.Format("2006-01")]; !slices.Equal(got, raw) {
				t.Errorf("%s, %s in %s: roll-up sales %+v, the lines give %+v", step, m.Format("2006-01"), zone, got, raw)
			}
			rawFb, err := db.FeedbackCounts(ctx, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := feedback[m.Format("2006-01")]
			if len(got) == 0 {
				got = map[store.Feedback]int64{}
			}
			if !maps.Equal(got, rawFb) {
				t.Errorf("%s, %s in %s: roll-up feedback %v, the answers give %v", step, m.Format("2006-01"), zone, got, rawFb)
			}
		}
	}

	load(lines[:3]...)
	check("first lines", moscow, -1) // the first refresh builds everything
	if nov := mustSales(t, db, moscow, 11); len(nov) != 1 || nov[0].RevenueKop != 4000000 {
		t.Errorf("November in Moscow = %+v, want the sofa sold at 00:30 on the 1st", nov)
	}
	check("nothing new", moscow, 0)
	load(lines[3:]...)
	load(lines[0]) // a duplicate changes nothing
	// 2 November in UTC touches 2 and 3 November in Moscow.
	check("more lines", moscow, 2)
	b, err := db.BeginBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.AddGroup(ctx, "g1", "Кухни", "")
	b.AddProduct(ctx, "P1", "Фасад", "g1")
	if n, err := b.Categorize(ctx); err != nil || n != 1 {
		t.Fatalf("categorize: %d %v", n, err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	check("a catalog named a category", moscow, 2)
	if nov := mustSales(t, db, moscow, 11); !slices.ContainsFunc(nov, func(c store.CategorySales) bool { return c.Category == "Кухни" }) {
		t.Errorf("November after the catalog = %+v, want a Кухни line", nov)
	}

	// Answers, one of them at 22:00 UTC on 31 October.
	now := utc("2026-10-31 22:00:00")
	db.Now = func() time.Time { return now }
	for i, fb := range [][]store.Feedback{
		{{Category: "service", Tone: "negative"}},
		{{Category: "service", Tone: "negative"}, {Category: "prices", Tone: "positive"}},
		nil,
	} {
		token := fmt.Sprint("t", i)
		inv := store.NewInvitation{Candidate: store.Candidate{StoreCode: "1", Receipt: token, At: now.Add(-24 * time.Hour),
			CustomerCode: token, Email: token + "@example.ru"}, Token: token, DueAt: now, Expires: now.Add(time.Hour)}
		if _, err := db.AddInvitations(ctx, []store.NewInvitation{inv}, now.AddDate(0, -1, 0)); err != nil {
			t.Fatal(err)
		}
		out, _ := db.ClaimDue(ctx, 1)
		db.Start(ctx, out[0])
		db.MarkSent(ctx, out[0], "<x@example.ru>")
		if _, err := db.AddResponse(ctx, token, store.Response{Rating: 2, Feedback: fb}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(30 * time.Minute)
	}
	check("answers", moscow, 2)
	check("another zone", time.UTC, -1)
	if oct := mustSales(t, db, time.UTC, 10); len(oct) != 2 || oct[0].RevenueKop != 9000000 {
		t.Errorf("October in UTC = %+v, want both sofas", oct)
	}
}

func mustSales(t *testing.T, db *store.DB, zone *time.Location, month time.Month) []store.CategorySales {
	t.Helper()
	m := time.Date(2026, month, 1, 0, 0, 0, 0, zone)
	s, err := db.MonthlySales(context.Background(), m, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s[m.Format("2006-01")]
}

// Batches large enough add their lines' sums to the roll-ups as they
// commit, so a refresh after them recomputes nothing; small batches mark
// their days. Whatever the mix, and with a refresh running beside the
// loads at any moment, the roll-ups stay equal to the raw lines: receipts
// split across batches and categories count once a day, lines near
// midnight fall on the zone's day, duplicates add nothing.
func TestRollups_BatchSumsMatchRawRows(t *testing.T) {
	ctx := context.Background()
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprint("concurrent refresh ", concurrent), func(t *testing.T) {
			db := open(t)
			refresh := refresher(t, db, moscow)
			sameAsRaw := func(step string) {
				t.Helper()
				salesMatchLines(t, db, moscow, step)
			}
			refresh()
			rng := rand.New(rand.NewPCG(1, 2))
			base := time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC)
			// Each receipt has one time, some near midnight in Moscow or in UTC.
			receiptAt := func(r int) time.Time {
				hours := []time.Duration{20*time.Hour + 59*time.Minute, 21 * time.Hour, 23*time.Hour + 59*time.Minute, 12 * time.Hour}
				return base.AddDate(0, 0, r%3).Add(hours[r%len(hours)])
			}
			// batch adds n lines of receipts first to first+80.
			batch := func(n, first int) {
				t.Helper()
				b, err := db.BeginBatch(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				for range n {
					r := first + rng.IntN(80)
					qty := int64(1000)
					if r%9 == 0 {
						qty = -1000
					}
					l := store.PurchaseLine{StoreCode: fmt.Sprint(1 + r%2), Receipt: fmt.Sprint("r", r),
						Line: 1 + rng.IntN(1000), At: receiptAt(r), Category: []string{"Диваны", "Свет"}[rng.IntN(2)],
						QtyMilli: qty, SumKop: qty * int64(1+rng.IntN(50))}
					// Large batches queue their lines, as a CSV load does.
					if n >= 60 {
						err = b.QueuePurchaseLine(ctx, l)
					} else {
						_, err = b.AddPurchaseLine(ctx, l)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			stop := make(chan struct{})
			refreshed := make(chan error, 1)
			go func() {
				var err error
				for concurrent && err == nil {
					select {
					case <-stop:
						refreshed <- nil
						return
					default:
					}
					_, err = db.RefreshRollups(ctx, moscow)
				}
				refreshed <- err
			}()
			added := 0
			for i := range 30 {
				batch([]int{3, 60, 200}[i%3], 0)
				if !concurrent {
					// Only the days the small batches marked are recomputed:
					// the others hold the sums the batches added.
					if days := refresh(); days == 0 {
						added++
					}
					sameAsRaw(fmt.Sprint("batch ", i))
				}
			}
			close(stop)
			if err := <-refreshed; err != nil {
				t.Fatal(err)
			}
			refresh()
			sameAsRaw("after the loads")
			if !concurrent && added < 10 {
				t.Errorf("%d of 30 batches added their sums, want at least 10", added)
			}
			batch(400, 1000)
			if days := refresh(); days != 0 {
				t.Errorf("refresh after a large batch: %d days recomputed, want 0: the batch adds its sums", days)
			}
			sameAsRaw("after a large batch")
		})
	}
}

// In a zone with summer time, a batch whose days see the offset change
// marks them for the refresh; one that does not adds its sums. (Each goes
// to days that hold enough lines for sums to pay.)
func TestRollups_BatchAcrossSummerTime(t *testing.T) {
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	db := open(t)
	if _, err := db.RefreshRollups(ctx, berlin); err != nil {
		t.Fatal(err)
	}
	load := func(first time.Time, n int, step time.Duration) {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			at := first.Add(time.Duration(i) * step)
			if _, err := b.AddPurchaseLine(ctx, store.PurchaseLine{StoreCode: "1", Receipt: at.Format(time.DateTime), Line: 1,
				At: at, Category: "Свет", QtyMilli: 1000, SumKop: 100}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		first    time.Time
		wantDays bool
	}{
		{time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC), true}, // clocks go back on 25 October
		{time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), false},
	} {
		load(c.first, 48, time.Hour)
		if _, err := db.RefreshRollups(ctx, berlin); err != nil {
			t.Fatal(err)
		}
		load(c.first.Add(time.Minute), 8, 6*time.Hour)
		days, err := db.RefreshRollups(ctx, berlin)
		if err != nil {
			t.Fatal(err)
		}
		if (days > 0) != c.wantDays {
			t.Errorf("lines from %s: %d days recomputed, want some: %v", c.first, days, c.wantDays)
		}
	}
	for _, month := range []time.Month{10, 11} {
		m := time.Date(2026, month, 1, 0, 0, 0, 0, berlin)
		got := mustSales(t, db, berlin, month)
		raw, err := db.SalesByCategory(ctx, store.Period{From: m, To: m.AddDate(0, 1, 0)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, raw) || len(raw) != 1 || raw[0].Lines != 56 {
			t.Errorf("%s: roll-up %+v, the lines give %+v (want 56 lines)", m.Format("2006-01"), got, raw)
		}
	}
}

// refresher returns a refresh of db's roll-ups in zone, which returns how
// many days it summed again.
func refresher(t *testing.T, db *store.DB, zone *time.Location) func() int {
	return func() int {
		t.Helper()
		days, err := db.RefreshRollups(context.Background(), zone)
		if err != nil {
			t.Fatal(err)
		}
		return days
	}
}

// salesMatchLines checks that the sales roll-ups of October and November
// 2026, for the chain and for stores 1 and 2 apart, are what the lines
// give.
func salesMatchLines(t *testing.T, db *store.DB, zone *time.Location, step string) {
	t.Helper()
	ctx := context.Background()
	for _, sc := range []store.Scope{nil, {"1"}, {"2"}} {
		for _, month := range []time.Month{10, 11} {
			m := time.Date(2026, month, 1, 0, 0, 0, 0, zone)
			sales, err := db.MonthlySales(ctx, m, m, sc)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := db.SalesByCategory(ctx, store.Period{From: m, To: m.AddDate(0, 1, 0)}, sc)
			if err != nil {
				t.Fatal(err)
			}
			if got := sales[m.Format("2006-01")]; !slices.Equal(got, raw) {
				t.Fatalf("%s, stores %v, %s: roll-up %+v, the lines give %+v", step, sc, m.Format("2006-01"), got, raw)
			}
		}
	}
}

// A batch among days that hold many lines adds its sums where that costs
// less than summing the days again: a few lines in a few categories add,
// as many lines each in a category of its own mark the day.
func TestRollups_BatchWeighsItsGroups(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.RefreshRollups(ctx, time.UTC); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	batch := func(receipt string, lines int, category func(i int) string) int {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range lines {
			if err := b.QueuePurchaseLine(ctx, store.PurchaseLine{StoreCode: "S1", Receipt: receipt, Line: i + 1, At: at,
				Category: category(i), QtyMilli: 1000, SumKop: 100}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		days := refresher(t, db, time.UTC)()
		salesMatchLines(t, db, time.UTC, receipt)
		return days
	}
	if days := batch("R1", 1000, func(int) string { return "Диваны" }); days == 0 {
		t.Fatal("the first lines of a day were summed in the batch, want marked")
	}
	if days := batch("R2", 20, func(i int) string { return fmt.Sprint("К", i%2) }); days != 0 {
		t.Errorf("20 lines in 2 categories: %d days summed again, want the batch's sums added", days)
	}
	if days := batch("R3", 150, func(i int) string { return fmt.Sprint("К", i) }); days == 0 {
		t.Error("150 lines in 150 categories: sums added, want the day summed again")
	}
}

// A batch among days that hold many lines sums the lines it inserted as
// it noted them, and reads them back from the table only once an insert
// left some out: either way the roll-ups get what the lines give. A
// receipt counts on a local day unless a line of it in that category was
// loaded before, whether its number is above the store's greatest or
// among the numbers loaded, once however many inserts its lines take and
// whether or not they come together.
func TestRollups_BatchSumsNotedLines(t *testing.T) {
	ctx := context.Background()
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	db := open(t)
	refresh := refresher(t, db, moscow)
	refresh()
	categories := []string{"Диваны", "Свет", "Ковры"}
	// A receipt's lines share its store and time, some near midnight in
	// Moscow or in UTC.
	base := time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC)
	hours := []time.Duration{20*time.Hour + 59*time.Minute, 21 * time.Hour, 23*time.Hour + 59*time.Minute, 12 * time.Hour}
	line := func(r, n int, category string, qty int64) store.PurchaseLine {
		return store.PurchaseLine{StoreCode: fmt.Sprint(1 + r%2), Receipt: fmt.Sprintf("R%04d", r), Line: n,
			At: base.AddDate(0, 0, r%3).Add(hours[r%len(hours)]), Category: category, QtyMilli: qty, SumKop: qty / 10 * int64(1+r%7)}
	}
	load := func(lines []store.PurchaseLine) *store.Batch {
		t.Helper()
		b, err := db.BeginBatch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if err := b.QueuePurchaseLine(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Checkpoint(ctx, 0, &store.FileCounts{}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	var first []store.PurchaseLine
	for r := 1000; r < 2000; r++ {
		for n := 1; n <= 3; n++ {
			first = append(first, line(r, n, categories[(r+n)%3], 1000))
		}
	}
	load(first)
	refresh()
	salesMatchLines(t, db, moscow, "the first lines")

	var old, above, among, dup []store.PurchaseLine
	for r := 1000; r < 1040; r++ {
		// Line 4 in the category of line 1, loaded before; line 5 in one
		// the receipt had not.
		old = append(old, line(r, 4, categories[(r+1)%3], 1000), line(r, 5, "Новинки", -1000))
	}
	for r := 5000; r < 5030; r++ {
		above = append(above, line(r, 1, categories[r%3], 1000), line(r, 2, categories[r%3], -2000))
	}
	for n := 1; n <= 150; n++ { // three inserts' worth
		above = append(above, line(6000, n, "Диваны", 1000))
	}
	for r := 100; r < 140; r++ {
		among = append(among, line(r, 1, categories[r%3], 3000), line(r, 2, "Свет", 1000))
	}
	apart := []store.PurchaseLine{line(8000, 1, "Свет", 1000), line(8002, 1, "Свет", 1000), line(8000, 2, "Свет", 1000),
		line(8000, 3, "Ковры", 1000), line(8002, 2, "Ковры", 1000), line(8000, 4, "Ковры", -1000)}
	dup = append(dup, line(1500, 1, categories[1501%3], 1000), line(1500, 9, "Новинки", 1000), line(7000, 1, "Свет", 1000))
	for _, step := range []struct {
		name      string
		lines     []store.PurchaseLine
		readsBack bool
	}{
		{"more lines of receipts loaded before", old, false},
		{"receipts above the stores' greatest", above, false},
		{"receipts among those loaded", among, false},
		{"a receipt's lines apart", apart, false},
		{"a line loaded before among new ones", dup, true},
	} {
		b := load(step.lines)
		if b.ReadsBack() != step.readsBack {
			t.Errorf("%s: read back %v, want %v", step.name, b.ReadsBack(), step.readsBack)
		}
		if days := refresh(); days != 0 {
			t.Errorf("%s: %d days summed again, want the batch's sums added", step.name, days)
		}
		salesMatchLines(t, db, moscow, step.name)
	}
}
