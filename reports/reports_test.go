package reports_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/reports"
	"github.com/otklik/otklik/store"
	"github.com/xuri/excelize/v2"
)

// dataset: 10 invitations sent in October 2026, 4 answers with known
// ratings, NPS and categories, and sales in two categories with a return.
func dataset(tb testing.TB) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	now := time.Date(2026, 10, 10, 8, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	b, _ := db.BeginBatch(ctx, 0)
	for i, l := range []store.PurchaseLine{
		{Category: "Диваны", QtyMilli: 1000, SumKop: 4599000},
		{Category: "Диваны", QtyMilli: 1000, SumKop: 1000000},
		{Category: "=HYPERLINK(\"http://x\")", QtyMilli: 2000, SumKop: 50000},
		{Category: "Диваны", QtyMilli: -1000, SumKop: -1000000},
	} {
		l.StoreCode, l.Receipt, l.Line, l.At = "0001", fmt.Sprint("R", i), 1, now
		if _, err := b.AddPurchaseLine(ctx, l); err != nil {
			tb.Fatal(err)
		}
	}
	b.Commit()
	var invs []store.NewInvitation
	for i := range 10 {
		invs = append(invs, store.NewInvitation{Candidate: store.Candidate{StoreCode: "0001", Receipt: fmt.Sprint("R", i),
			At: now, CustomerCode: "C", Email: fmt.Sprintf("c%d@example.ru", i)}, Token: fmt.Sprint("t", i), DueAt: now, Expires: now.Add(time.Hour)})
	}
	if _, err := db.AddInvitations(ctx, invs, now); err != nil {
		tb.Fatal(err)
	}
	out, _ := db.ClaimDue(ctx, 100)
	for _, o := range out {
		db.Start(ctx, o)
		db.MarkSent(ctx, o, "")
	}
	nps := func(n int) *int { return &n }
	for i, r := range []store.Response{
		{Rating: 5, NPS: nps(10), Feedback: []store.Feedback{{Category: "service", Tone: "positive"}}},
		{Rating: 4, NPS: nps(9)},
		{Rating: 2, NPS: nps(3), Comment: "=cmd|' /C calc'!A0 грубо", Feedback: []store.Feedback{{Category: "service", Tone: "negative"}, {Category: "prices", Tone: "negative"}}},
		{Rating: 5, NPS: nps(7)},
	} {
		if _, err := db.AddResponse(ctx, fmt.Sprint("t", i), r); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

func TestBuild_Numbers(t *testing.T) {
	db := dataset(t)
	msk, _ := time.LoadLocation("Europe/Moscow")
	month, _ := reports.ParseMonth("2026-10", msk)
	path := filepath.Join(t.TempDir(), "r.xlsx")
	sum, err := reports.Build(context.Background(), db, reports.Options{Month: month, Zone: msk, TmpDir: t.TempDir()}, path)
	if err != nil {
		t.Fatal(err)
	}
	// By hand: 4 answers of 10 sent; CSI (5+4+2+5)/4 = 4, s² = (1+0+4+1)/3
	// = 2, margin 1.96·√2/2 = 1.386; NPS: promoters 2 (10, 9), detractors
	// 1 (3) of 4 = +25, margin 196·√((0.5+0.25−0.0625)/4) = 81.26;
	// negative: the one rated 2 = 25%; MQI = 100·(0.4·3/4 + 0.4·125/200 +
	// 0.2·0.75) = 70.
	f := sum.Fig
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.01 }
	if f.Sent != 10 || f.Answers != 4 || f.ResponseRate != 0.4 || f.CSI != 4 || f.NPS != 25 || f.Negative != 1 ||
		!near(f.CSIMoE, 1.386) || !near(f.NPSMoE, 81.26) || f.NegShare != 0.25 || !near(f.MQI, 70) {
		t.Fatalf("figures = %+v", f)
	}
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	want := []string{reports.SheetSummary, reports.SheetStores, reports.SheetCategories, reports.SheetComments, reports.SheetSales, reports.SheetMethod}
	if got := x.GetSheetList(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sheets = %v", got)
	}
	cell := func(sheet, axis string) string {
		v, err := x.GetCellValue(sheet, axis, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ sheet, axis, want string }{
		{reports.SheetSummary, "A1", "Отзывы покупателей: октябрь 2026"},
		{reports.SheetSummary, "B4", "10"},
		{reports.SheetSummary, "B5", "10"},  // delivered
		{reports.SheetSummary, "B6", "4"},   // opened: each answer was
		{reports.SheetSummary, "B7", "0.4"}, // of the delivered
		{reports.SheetSummary, "B8", "4"},
		{reports.SheetSummary, "B9", "0.4"},
		{reports.SheetSummary, "B10", "4"},
		{reports.SheetSummary, "B11", "25"},
		{reports.SheetCategories, "A13", "октябрь 2026"},
		{reports.SheetCategories, "A2", "ноябрь 2025"},
		{reports.SheetCategories, "B13", "1"}, // service negative
		{reports.SheetCategories, "D13", "1"}, // prices negative
		{reports.SheetCategories, "G13", "1"}, // service positive
		{reports.SheetCategories, "B12", "0"},
		{reports.SheetStores, "B2", "0001"},
		{reports.SheetStores, "S2", "мало ответов"},
		{reports.SheetComments, "F2", "=cmd|' /C calc'!A0 грубо"},
	} {
		if got := cell(tc.sheet, tc.axis); got != tc.want {
			t.Errorf("%s!%s = %q, want %q", tc.sheet, tc.axis, got, tc.want)
		}
	}
	// Text from customers and 1C stays text, never a formula.
	for _, sh := range x.GetSheetList() {
		rows, _ := x.GetRows(sh)
		for r, row := range rows {
			for c := range row {
				axis, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if fml, _ := x.GetCellFormula(sh, axis); fml != "" {
					t.Fatalf("%s!%s is a formula: %q", sh, axis, fml)
				}
			}
		}
	}
	// Sales: October is row 14 of the revenue table; returns are apart,
	// in the fourth table (16 rows a table).
	rows, _ := x.GetRows(reports.SheetSales)
	col := map[string]int{}
	for i, h := range rows[1] {
		col[h] = i
	}
	if _, ok := col["=HYPERLINK(\"http://x\")"]; !ok {
		t.Fatalf("header = %v", rows[1])
	}
	sofas, _ := excelize.CoordinatesToCellName(col["Диваны"]+1, 14)
	if got := cell(reports.SheetSales, sofas); got != "55990" {
		t.Errorf("sofas revenue in October = %s, want 55990", got)
	}
	ret, _ := excelize.CoordinatesToCellName(col["Диваны"]+1, 3*16+14)
	if got := cell(reports.SheetSales, ret); got != "10000" {
		t.Errorf("sofas returns in October = %s, want 10000", got)
	}
}

// TestBuild_StoreSignificance checks the stores sheet against numbers
// worked by hand: 20 of 40 answers negative this month against 5 of 40
// last month; pooled share 0.3125, z = 0.375 / √(0.3125·0.6875·(2/40))
// = 3.618, two-sided p = erfc(3.618/√2) = 0.000297: significant.
func TestBuild_StoreSignificance(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "otklik.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	msk, _ := time.LoadLocation("Europe/Moscow")
	answer := func(at time.Time, n, negatives int, prefix string) {
		db.Now = func() time.Time { return at }
		var invs []store.NewInvitation
		for i := range n {
			invs = append(invs, store.NewInvitation{Candidate: store.Candidate{StoreCode: "0001", Receipt: fmt.Sprint(prefix, i),
				At: at, CustomerCode: "c", Email: fmt.Sprintf("%s%d@example.ru", prefix, i)},
				Token: fmt.Sprint(prefix, i), DueAt: at, Expires: at.Add(time.Hour)})
		}
		db.AddInvitations(ctx, invs, at)
		out, _ := db.ClaimDue(ctx, 1000)
		for _, o := range out {
			db.Start(ctx, o)
			db.MarkSent(ctx, o, "")
		}
		for i := range n {
			rating := 5
			if i < negatives {
				rating = 2
			}
			if _, err := db.AddResponse(ctx, fmt.Sprint(prefix, i), store.Response{Rating: rating}); err != nil {
				t.Fatal(err)
			}
		}
	}
	answer(time.Date(2026, 9, 10, 9, 0, 0, 0, time.UTC), 40, 5, "sep")
	answer(time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC), 40, 20, "oct")
	month, _ := reports.ParseMonth("2026-10", msk)
	path := filepath.Join(t.TempDir(), "r.xlsx")
	sum, err := reports.Build(ctx, db, reports.Options{Month: month, Zone: msk, TmpDir: t.TempDir()}, path)
	if err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	p, _ := x.GetCellValue(reports.SheetStores, "Q2", excelize.Options{RawCellValue: true})
	pv, _ := strconv.ParseFloat(p, 64)
	if math.Abs(pv-0.000297) > 0.00001 {
		t.Fatalf("p-value = %s, want 0.000297", p)
	}
	if sig, _ := x.GetCellValue(reports.SheetStores, "R2"); sig != "да" {
		t.Fatalf("significant = %q", sig)
	}
	if dn, _ := x.GetCellValue(reports.SheetStores, "P2", excelize.Options{RawCellValue: true}); dn != "37.5" {
		t.Fatalf("change of the negative share = %s points, want 37.5", dn)
	}
	if len(sum.Movements) == 0 || !strings.Contains(sum.Movements[0], "выросла с 12,5 % до 50,0 %") {
		t.Fatalf("movements = %q", sum.Movements)
	}
}

func TestBuild_EmptyMonthSaysSo(t *testing.T) {
	db := dataset(t)
	month, _ := reports.ParseMonth("2025-01", time.UTC)
	path := filepath.Join(t.TempDir(), "r.xlsx")
	sum, err := reports.Build(context.Background(), db, reports.Options{Month: month, Zone: time.UTC, TmpDir: t.TempDir()}, path)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Empty() || !math.IsNaN(sum.Fig.CSI) {
		t.Fatalf("summary = %+v", sum)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _ := f.GetRows(reports.SheetSummary)
	found := false
	for _, r := range rows {
		found = found || len(r) > 0 && r[0] == "За этот месяц нет ни отправленных приглашений, ни ответов."
	}
	if !found {
		t.Fatalf("the empty month does not say so: %q", rows)
	}
	if v, _ := f.GetCellValue(reports.SheetSummary, "B9"); v != "—" {
		t.Fatalf("CSI of an empty month = %q, want a dash", v)
	}
}

func TestFormat(t *testing.T) {
	if got := reports.FormatPercent(0.15); got != "15,0 %" {
		t.Errorf("FormatPercent = %q", got)
	}
	if got := reports.FormatNPS(42.4); got != "+42" {
		t.Errorf("FormatNPS = %q", got)
	}
	if got := reports.FormatNumber(math.NaN(), 2); got != "—" {
		t.Errorf("FormatNumber(NaN) = %q", got)
	}
}
