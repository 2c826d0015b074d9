// Package reports builds the monthly workbook managers open in Excel or
// LibreOffice: a summary, feedback categories by month for a year and
// sales by product category by month, in Russian.
package reports

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/otklik/otklik/store"
	"github.com/xuri/excelize/v2"
)

// Sheet names.
const (
	SheetSummary    = "Сводка"
	SheetCategories = "Категории"
	SheetSales      = "Продажи"
)

// Categories are the feedback categories in report order, with labels.
var Categories = []struct{ Key, Label string }{
	{"service", "Обслуживание"},
	{"assortment", "Ассортимент"},
	{"prices", "Цены"},
	{"comfort", "Комфорт"},
	{"other", "Другое"},
}

var monthNames = []string{"январь", "февраль", "март", "апрель", "май", "июнь", "июль",
	"август", "сентябрь", "октябрь", "ноябрь", "декабрь"}

// MonthName returns "ноябрь 2026".
func MonthName(t time.Time) string {
	return monthNames[t.Month()-1] + " " + fmt.Sprint(t.Year())
}

// Month returns the first instant of the month of t in loc.
func Month(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
}

// ParseMonth reads "2026-11" as the first instant of that month in loc.
func ParseMonth(s string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a month like 2026-11", s)
	}
	return t, nil
}

func period(month time.Time) store.Period {
	return store.Period{From: month, To: month.AddDate(0, 1, 0)}
}

// Options say which report to build.
type Options struct {
	Month time.Time      // the first instant of the month, in Zone
	Zone  *time.Location // months, days and times are shown here
	// Scope limits the report to some stores (a director's); nil is the
	// whole chain. ScopeName says whose stores they are.
	Scope     store.Scope
	ScopeName string
	// MinAnswers: a store with fewer answers in the month is shown as
	// "мало ответов" and not ranked. 0 means 30.
	MinAnswers int
	TmpDir     string // for excelize's temporary files
}

// Summary holds the month's headline figures.
type Summary struct {
	Month     time.Time
	Scope     string
	Fig, Prev Figures // this month and the month before
	Stats     store.SurveyStats
	Movements []string // the largest changes against last month, in Russian
}

// Empty reports whether the month had neither sends nor answers.
func (s Summary) Empty() bool { return s.Stats.Sent == 0 && s.Stats.Responses == 0 }

// FormatPercent writes a share as Russian readers expect: "15,0 %".
func FormatPercent(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strings.Replace(fmt.Sprintf("%.1f %%", 100*v), ".", ",", 1)
}

// FormatNumber writes a number with a decimal comma, or a dash for NaN.
func FormatNumber(v float64, decimals int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strings.Replace(fmt.Sprintf("%.*f", decimals, v), ".", ",", 1)
}

// FormatNPS writes an NPS with its sign: "+42".
func FormatNPS(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%+.0f", v)
}

// Build computes the month's report and writes it to path.
func Build(ctx context.Context, db *store.DB, o Options, path string) (Summary, error) {
	if o.Zone == nil {
		o.Zone = time.UTC
	}
	if o.MinAnswers <= 0 {
		o.MinAnswers = 30
	}
	month := o.Month
	// Loads refresh the roll-ups; answers since the last load are added
	// here.
	if _, err := db.RefreshRollups(ctx, o.Zone); err != nil {
		return Summary{}, err
	}
	cur, err := db.SurveyStats(ctx, period(month), o.Scope)
	if err != nil {
		return Summary{}, err
	}
	prev, err := db.SurveyStats(ctx, period(month.AddDate(0, -1, 0)), o.Scope)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Month: month, Scope: o.ScopeName, Fig: figures(cur), Prev: figures(prev), Stats: cur}
	// Excelize spills to temporary files above 16 MB and keeps them until
	// Close (PITFALLS: excelize temp files).
	f := excelize.NewFile(excelize.Options{TmpDir: o.TmpDir})
	defer f.Close()
	w := &book{f: f, o: o}
	if err := w.styles(); err != nil {
		return sum, err
	}
	steps := []func(context.Context, *store.DB, *Summary) error{
		w.summarySheet, w.storesSheet, w.categoriesSheet, w.commentsSheet, w.salesSheet, w.methodSheet,
	}
	// The summary sheet is written last, once the other sheets have
	// found the month's movements, but stays first in the workbook.
	if err := f.SetSheetName("Sheet1", SheetSummary); err != nil {
		return sum, err
	}
	for _, step := range steps[1:] {
		if err := step(ctx, db, &sum); err != nil {
			return sum, err
		}
	}
	if err := steps[0](ctx, db, &sum); err != nil {
		return sum, err
	}
	f.SetActiveSheet(0)
	title := "Отзывы покупателей за " + MonthName(month)
	if o.ScopeName != "" {
		title += " (" + o.ScopeName + ")"
	}
	f.SetDocProps(&excelize.DocProperties{Title: title, Creator: "otklik", Language: "ru-RU"})
	if err := f.SaveAs(path); err != nil {
		return sum, fmt.Errorf("save report %s: %w", path, err)
	}
	return sum, nil
}

type book struct {
	f                                       *excelize.File
	o                                       Options
	title, title2, pct, money, num, num3, d int
	date, wrap, boldTop, note               int
}

func (b *book) styles() error {
	var err error
	mk := func(s *excelize.Style) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = b.f.NewStyle(s)
		return id
	}
	b.title = mk(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}})
	b.title2 = mk(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDE7F5"}},
		Alignment: &excelize.Alignment{WrapText: true, Vertical: "center"}})
	pctFmt := "0.0%"
	b.pct = mk(&excelize.Style{CustomNumFmt: &pctFmt})
	moneyFmt := "#,##0.00"
	b.money = mk(&excelize.Style{CustomNumFmt: &moneyFmt})
	numFmt := "0.00"
	b.num = mk(&excelize.Style{CustomNumFmt: &numFmt})
	b.d = mk(&excelize.Style{NumFmt: 3})
	dateFmt := "dd.mm.yyyy hh:mm"
	b.date = mk(&excelize.Style{CustomNumFmt: &dateFmt, Alignment: &excelize.Alignment{Vertical: "top"}})
	b.wrap = mk(&excelize.Style{Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}})
	b.boldTop = mk(&excelize.Style{Font: &excelize.Font{Bold: true}, Alignment: &excelize.Alignment{Vertical: "top"}})
	num3Fmt := "0.000"
	b.num3 = mk(&excelize.Style{CustomNumFmt: &num3Fmt})
	b.note = mk(&excelize.Style{Font: &excelize.Font{Italic: true, Color: "666666"}})
	if err != nil {
		return fmt.Errorf("report styles: %w", err)
	}
	return nil
}

// set writes a value; text always goes in as a string, so text from 1C or
// customers that starts with "=" is never a formula.
func (b *book) set(sheet string, col, row int, v any, style int) error {
	cell, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		return err
	}
	if f, ok := v.(float64); ok && math.IsNaN(f) {
		v = "—"
	}
	if s, ok := v.(string); ok {
		if err := b.f.SetCellStr(sheet, cell, s); err != nil {
			return err
		}
	} else if err := b.f.SetCellValue(sheet, cell, v); err != nil {
		return err
	}
	if style != 0 {
		return b.f.SetCellStyle(sheet, cell, cell, style)
	}
	return nil
}

// months returns the 12 months ending with month, oldest first.
func months(month time.Time) []time.Time {
	out := make([]time.Time, 12)
	for i := range out {
		out[i] = month.AddDate(0, i-11, 0)
	}
	return out
}
