package store_test

import (
	"context"
	"fmt"
	"maps"
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
	check := func(step string, zone *time.Location, wantDays int) {
		t.Helper()
		days, err := db.RefreshRollups(ctx, zone)
		if err != nil {
			t.Fatal(err)
		}
		if wantDays >= 0 && days != wantDays {
			t.Errorf("%s: %d days recomputed, want %d", step, days, wantDays)
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
