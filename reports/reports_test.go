package reports_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
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
		{Rating: 2, NPS: nps(3), Feedback: []store.Feedback{{Category: "service", Tone: "negative"}, {Category: "prices", Tone: "negative"}}},
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
	sum, err := reports.Build(context.Background(), db, month, path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// By hand: 4 answers of 10 sent; CSI (5+4+2+5)/4 = 4; NPS: promoters
	// 2 (10, 9), detractors 1 (3) of 4 = +25; negative: the one rated 2.
	if sum.Stats.Sent != 10 || sum.Stats.Responses != 4 || sum.ResponseRate != 0.4 || sum.CSI != 4 || sum.NPS != 25 || sum.Stats.Negative != 1 {
		t.Fatalf("summary = %+v", sum)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); fmt.Sprint(got) != fmt.Sprint([]string{reports.SheetSummary, reports.SheetCategories, reports.SheetSales}) {
		t.Fatalf("sheets = %v", got)
	}
	cell := func(sheet, axis string) string {
		v, err := f.GetCellValue(sheet, axis, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ sheet, axis, want string }{
		{reports.SheetSummary, "A1", "Отзывы покупателей: октябрь 2026"},
		{reports.SheetSummary, "B3", "10"},
		{reports.SheetSummary, "B4", "4"},
		{reports.SheetSummary, "B5", "0.4"},
		{reports.SheetSummary, "B6", "4"},
		{reports.SheetSummary, "B7", "25"},
		{reports.SheetCategories, "A13", "октябрь 2026"},
		{reports.SheetCategories, "A2", "ноябрь 2025"},
		{reports.SheetCategories, "B13", "1"}, // service negative
		{reports.SheetCategories, "D13", "1"}, // prices negative
		{reports.SheetCategories, "G13", "1"}, // service positive
		{reports.SheetCategories, "B12", "0"},
	} {
		if got := cell(tc.sheet, tc.axis); got != tc.want {
			t.Errorf("%s!%s = %q, want %q", tc.sheet, tc.axis, got, tc.want)
		}
	}
	// Sales: categories sorted; October is row 14; the return shown apart.
	rows, _ := f.GetRows(reports.SheetSales)
	header := rows[1]
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	if _, ok := col["=HYPERLINK(\"http://x\")"]; !ok {
		t.Fatalf("header = %v", header)
	}
	formulaCell, _ := excelize.CoordinatesToCellName(col["=HYPERLINK(\"http://x\")"]+1, 2)
	if fml, _ := f.GetCellFormula(reports.SheetSales, formulaCell); fml != "" {
		t.Fatalf("text from 1C became a formula: %q", fml)
	}
	sofas, _ := excelize.CoordinatesToCellName(col["Диваны"]+1, 14)
	if got := cell(reports.SheetSales, sofas); got != "55990" {
		t.Errorf("sofas revenue in October = %s, want 55990", got)
	}
	ret, _ := excelize.CoordinatesToCellName(col["Диваны"]+1, 2+12+2+12)
	if got := cell(reports.SheetSales, ret); got != "10000" {
		t.Errorf("sofas returns in October = %s, want 10000", got)
	}
}

func TestBuild_EmptyMonthSaysSo(t *testing.T) {
	db := dataset(t)
	month, _ := reports.ParseMonth("2025-01", time.UTC)
	path := filepath.Join(t.TempDir(), "r.xlsx")
	sum, err := reports.Build(context.Background(), db, month, path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Empty() || !math.IsNaN(sum.CSI) {
		t.Fatalf("summary = %+v", sum)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, _ := f.GetCellValue(reports.SheetSummary, "A11"); v != "За этот месяц нет ни отправленных приглашений, ни ответов." {
		t.Fatalf("A11 = %q", v)
	}
	if v, _ := f.GetCellValue(reports.SheetSummary, "B6"); v != "—" {
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
