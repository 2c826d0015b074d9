package mailer_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/store"
)

func TestWindow_Due(t *testing.T) {
	w, err := mailer.ParseWindow("10:00-20:00")
	if err != nil {
		t.Fatal(err)
	}
	zone := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name                 string
		purchase, planned    string
		zone                 string
		wantDue, wantExpires string
	}{
		{"next morning in Moscow", "2026-11-01T15:00:00Z", "2026-11-01T22:00:00Z", "Europe/Moscow",
			"2026-11-02T07:00:00Z", "2026-11-02T17:00:00Z"},
		{"next morning in Vladivostok", "2026-11-01T05:00:00Z", "2026-11-01T22:00:00Z", "Asia/Vladivostok",
			"2026-11-02T00:00:00Z", "2026-11-02T10:00:00Z"},
		{"planned inside the window: at once", "2026-11-01T15:00:00Z", "2026-11-02T09:30:00Z", "Europe/Moscow",
			"2026-11-02T09:30:00Z", "2026-11-02T17:00:00Z"},
		{"planned after the window: next day", "2026-11-01T15:00:00Z", "2026-11-02T18:00:00Z", "Europe/Moscow",
			"2026-11-03T07:00:00Z", "2026-11-03T17:00:00Z"},
		{"23:30 in Yekaterinburg: the next local morning", "2026-11-01T18:30:00Z", "2026-11-01T19:00:00Z", "Asia/Yekaterinburg",
			"2026-11-02T05:00:00Z", "2026-11-02T15:00:00Z"},
		{"00:30 in Yekaterinburg is already the next local day", "2026-11-01T19:30:00Z", "2026-11-01T19:40:00Z", "Asia/Yekaterinburg",
			"2026-11-03T05:00:00Z", "2026-11-03T15:00:00Z"},
		{"Kaliningrad", "2026-11-01T10:00:00Z", "2026-11-01T20:00:00Z", "Europe/Kaliningrad",
			"2026-11-02T08:00:00Z", "2026-11-02T18:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, exp := w.Due(utc(tc.purchase), utc(tc.planned), zone(tc.zone))
			if got := due.UTC().Format(time.RFC3339); got != tc.wantDue {
				t.Errorf("due = %s, want %s", got, tc.wantDue)
			}
			if got := exp.UTC().Format(time.RFC3339); got != tc.wantExpires {
				t.Errorf("expires = %s, want %s", got, tc.wantExpires)
			}
		})
	}
}

func TestParseWindow_Errors(t *testing.T) {
	for _, s := range []string{"", "10-20", "20:00-10:00", "10:00-25:00", "ten:00-20:00"} {
		if _, err := mailer.ParseWindow(s); err == nil {
			t.Errorf("ParseWindow(%q) gave no error", s)
		}
	}
}

// fixture loads customers and receipts for planning tests.
type fixture struct {
	db  *store.DB
	now time.Time
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	f := &fixture{db: db, now: time.Date(2026, 11, 2, 4, 0, 0, 0, time.UTC)} // 07:00 in Moscow
	db.Now = func() time.Time { return f.now }
	return f
}

func (f *fixture) load(tb testing.TB, customers []store.Customer, lines []store.PurchaseLine) {
	tb.Helper()
	ctx := context.Background()
	b, err := f.db.BeginBatch(ctx, 0)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range []store.Store{{Code: "MSK", Name: "Москва", TimeZone: "Europe/Moscow"}, {Code: "VVO", Name: "Владивосток", TimeZone: "Asia/Vladivostok"}} {
		if _, err := b.AddStore(ctx, s); err != nil {
			tb.Fatal(err)
		}
	}
	for _, c := range customers {
		if _, err := b.AddCustomer(ctx, c); err != nil {
			tb.Fatal(err)
		}
	}
	for _, l := range lines {
		if l.Line == 0 {
			l.Line = 1
		}
		if l.QtyMilli == 0 {
			l.QtyMilli, l.SumKop = 1000, 100000
		}
		if _, err := b.AddPurchaseLine(ctx, l); err != nil {
			tb.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		tb.Fatal(err)
	}
}

func (f *fixture) planner() *mailer.Planner {
	w, _ := mailer.ParseWindow("10:00-20:00")
	msk, _ := time.LoadLocation("Europe/Moscow")
	return &mailer.Planner{DB: f.db, Zone: msk, Window: w, MaxAge: 3 * 24 * time.Hour, Cooldown: 30 * 24 * time.Hour}
}

func TestPlanner_Eligibility(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	yesterday := f.now.Add(-20 * time.Hour)
	f.load(t, []store.Customer{
		{Code: "ok", Email: "ok@example.ru", Consent: true},
		{Code: "noconsent", Email: "no@example.ru", Consent: false},
		{Code: "noemail", Consent: true},
		{Code: "suppressed", Email: "gone@example.ru", Consent: true},
		{Code: "twin1", Email: "twin@example.ru", Consent: true},
		{Code: "twin2", Email: "twin@example.ru", Consent: true},
		{Code: "old", Email: "old@example.ru", Consent: true},
		{Code: "returns", Email: "ret@example.ru", Consent: true},
	}, []store.PurchaseLine{
		{StoreCode: "MSK", Receipt: "1", At: yesterday, CustomerCode: "ok"},
		{StoreCode: "MSK", Receipt: "1", Line: 2, At: yesterday, CustomerCode: "ok"},
		{StoreCode: "MSK", Receipt: "2", At: yesterday, CustomerCode: "noconsent"},
		{StoreCode: "MSK", Receipt: "3", At: yesterday, CustomerCode: "noemail"},
		{StoreCode: "MSK", Receipt: "4", At: yesterday, CustomerCode: "suppressed"},
		{StoreCode: "MSK", Receipt: "5", At: yesterday, CustomerCode: "twin1"},
		{StoreCode: "VVO", Receipt: "6", At: yesterday, CustomerCode: "twin2"},
		{StoreCode: "MSK", Receipt: "7", At: f.now.AddDate(-2, 0, 0), CustomerCode: "old"},
		{StoreCode: "MSK", Receipt: "8", At: yesterday, CustomerCode: "returns", QtyMilli: -1000, SumKop: -5000},
		{StoreCode: "MSK", Receipt: "9", At: yesterday, CustomerCode: ""},
		{StoreCode: "NEW", Receipt: "10", At: yesterday, CustomerCode: "unknown-card"},
	})
	if err := f.db.Suppress(ctx, "gone@example.ru", "unsubscribed"); err != nil {
		t.Fatal(err)
	}
	res, err := f.planner().Plan(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	// ok (one invitation for its two-line receipt) and one of the twins.
	if res.Planned != 2 {
		t.Fatalf("planned %d, want 2 (%+v)", res.Planned, res)
	}
	// Planning again adds nothing: receipts invited, twins in cooldown.
	if res, err = f.planner().Plan(ctx, false); err != nil || res.Planned != 0 {
		t.Fatalf("second plan: %+v %v", res, err)
	}
	// Nothing is due before the window opens in each store's zone.
	if out, err := f.db.ClaimDue(ctx, 10); err != nil || len(out) != 0 {
		t.Fatalf("due at 07:00 Moscow: %d, %v", len(out), err)
	}
}

func TestPlanner_HistoryImportMailsNobody(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var lines []store.PurchaseLine
	for d := 4; d < 5*365; d += 3 {
		lines = append(lines, store.PurchaseLine{StoreCode: "MSK", Receipt: time.Duration(d).String(), At: f.now.AddDate(0, 0, -d), CustomerCode: "c"})
	}
	f.load(t, []store.Customer{{Code: "c", Email: "c@example.ru", Consent: true}}, lines)
	res, err := f.planner().Plan(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Planned != 0 || res.Candidates != 0 {
		t.Fatalf("five years of history planned %+v", res)
	}
}
