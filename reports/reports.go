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

// Summary holds the month's headline figures.
type Summary struct {
	Month        time.Time
	Stats        store.SurveyStats
	ResponseRate float64 // answers / invitations sent; NaN without sends
	CSI          float64 // mean rating 1..5; NaN without answers
	NPS          float64 // % promoters - % detractors; NaN without NPS answers
}

// Empty reports whether the month had neither sends nor answers.
func (s Summary) Empty() bool { return s.Stats.Sent == 0 && s.Stats.Responses == 0 }

func summarize(month time.Time, st store.SurveyStats) Summary {
	s := Summary{Month: month, Stats: st, ResponseRate: math.NaN(), CSI: math.NaN(), NPS: math.NaN()}
	if st.Sent > 0 {
		s.ResponseRate = float64(st.Responses) / float64(st.Sent)
	}
	if st.Responses > 0 {
		s.CSI = float64(st.RatingSum) / float64(st.Responses)
	}
	if st.NPSAnswers > 0 {
		s.NPS = 100 * float64(st.Promoters-st.Detractors) / float64(st.NPSAnswers)
	}
	return s
}

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
func Build(ctx context.Context, db *store.DB, month time.Time, path, tmpDir string) (Summary, error) {
	st, err := db.SurveyStats(ctx, period(month))
	if err != nil {
		return Summary{}, err
	}
	sum := summarize(month, st)
	// Excelize spills to temporary files above 16 MB and keeps them until
	// Close (PITFALLS: excelize temp files).
	f := excelize.NewFile(excelize.Options{TmpDir: tmpDir})
	defer f.Close()
	w := &book{f: f}
	if err := w.styles(); err != nil {
		return sum, err
	}
	if err := w.summary(sum); err != nil {
		return sum, err
	}
	if err := w.categories(ctx, db, month); err != nil {
		return sum, err
	}
	if err := w.sales(ctx, db, month); err != nil {
		return sum, err
	}
	f.SetActiveSheet(0)
	f.SetDocProps(&excelize.DocProperties{Title: "Отзывы покупателей за " + MonthName(month), Creator: "otklik", Language: "ru-RU"})
	if err := f.SaveAs(path); err != nil {
		return sum, fmt.Errorf("save report %s: %w", path, err)
	}
	return sum, nil
}

type book struct {
	f                                 *excelize.File
	title, header, pct, money, num, d int
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
	b.header = mk(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDE7F5"}},
		Alignment: &excelize.Alignment{WrapText: true, Vertical: "center"}})
	pctFmt := "0.0%"
	b.pct = mk(&excelize.Style{CustomNumFmt: &pctFmt})
	moneyFmt := "#,##0.00"
	b.money = mk(&excelize.Style{CustomNumFmt: &moneyFmt})
	numFmt := "0.00"
	b.num = mk(&excelize.Style{CustomNumFmt: &numFmt})
	b.d = mk(&excelize.Style{NumFmt: 3})
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

func (b *book) summary(s Summary) error {
	sh := SheetSummary
	if err := b.f.SetSheetName("Sheet1", sh); err != nil {
		return err
	}
	b.f.SetColWidth(sh, "A", "A", 42)
	b.f.SetColWidth(sh, "B", "B", 16)
	rows := []struct {
		label string
		v     any
		style int
	}{
		{"Приглашений отправлено", s.Stats.Sent, b.d},
		{"Ответов получено", s.Stats.Responses, b.d},
		{"Доля ответов", s.ResponseRate, b.pct},
		{"CSI, средняя оценка (1–5)", s.CSI, b.num},
		{"NPS (% сторонников − % критиков)", s.NPS, b.num},
		{"Ответов с NPS", s.Stats.NPSAnswers, b.d},
		{"Негативных ответов (оценка 1–3 или жалоба)", s.Stats.Negative, b.d},
	}
	if err := b.set(sh, 1, 1, "Отзывы покупателей: "+MonthName(s.Month), b.title); err != nil {
		return err
	}
	for i, r := range rows {
		if err := b.set(sh, 1, 3+i, r.label, 0); err != nil {
			return err
		}
		if err := b.set(sh, 2, 3+i, r.v, r.style); err != nil {
			return err
		}
	}
	note := "Данные за месяц есть."
	if s.Empty() {
		note = "За этот месяц нет ни отправленных приглашений, ни ответов."
	}
	return b.set(sh, 1, 4+len(rows), note, 0)
}

// months returns the 12 months ending with month, oldest first.
func months(month time.Time) []time.Time {
	out := make([]time.Time, 12)
	for i := range out {
		out[i] = month.AddDate(0, i-11, 0)
	}
	return out
}

func (b *book) categories(ctx context.Context, db *store.DB, month time.Time) error {
	sh := SheetCategories
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	if err := b.set(sh, 1, 1, "Месяц", b.header); err != nil {
		return err
	}
	col := 2
	for _, tone := range []struct{ key, label string }{{"negative", "−"}, {"positive", "+"}} {
		for _, c := range Categories {
			if err := b.set(sh, col, 1, c.Label+" "+tone.label, b.header); err != nil {
				return err
			}
			col++
		}
	}
	for i, m := range months(month) {
		counts, err := db.FeedbackCounts(ctx, period(m))
		if err != nil {
			return err
		}
		if err := b.set(sh, 1, 2+i, MonthName(m), 0); err != nil {
			return err
		}
		col := 2
		for _, tone := range []string{"negative", "positive"} {
			for _, c := range Categories {
				if err := b.set(sh, col, 2+i, counts[store.Feedback{Category: c.Key, Tone: tone}], b.d); err != nil {
					return err
				}
				col++
			}
		}
	}
	b.f.SetColWidth(sh, "A", "A", 16)
	b.f.SetColWidth(sh, "B", "K", 14)
	b.f.SetPanes(sh, &excelize.Panes{Freeze: true, XSplit: 1, YSplit: 1, TopLeftCell: "B2", ActivePane: "bottomRight"})
	var series []excelize.ChartSeries
	for i := range Categories {
		colName, _ := excelize.ColumnNumberToName(2 + i)
		series = append(series, excelize.ChartSeries{
			Name:       fmt.Sprintf("'%s'!$%s$1", sh, colName),
			Categories: fmt.Sprintf("'%s'!$A$2:$A$13", sh),
			Values:     fmt.Sprintf("'%s'!$%s$2:$%s$13", sh, colName, colName),
		})
	}
	return b.f.AddChart(sh, "A16", &excelize.Chart{
		Type:   excelize.Line,
		Series: series,
		Title:  excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: "Жалобы по категориям за 12 месяцев"}}},
		Legend: excelize.ChartLegend{Position: "bottom"},
		Format: excelize.GraphicOptions{ScaleX: 1.6, ScaleY: 1.2},
	})
}

func (b *book) sales(ctx context.Context, db *store.DB, month time.Time) error {
	sh := SheetSales
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	ms := months(month)
	byMonth := make([]map[string]store.CategorySales, len(ms))
	seen := map[string]bool{}
	var cats []string
	for i, m := range ms {
		rows, err := db.SalesByCategory(ctx, period(m))
		if err != nil {
			return err
		}
		byMonth[i] = map[string]store.CategorySales{}
		for _, r := range rows {
			byMonth[i][r.Category] = r
			if !seen[r.Category] {
				seen[r.Category] = true
				cats = append(cats, r.Category)
			}
		}
	}
	if err := b.set(sh, 1, 1, "Выручка по категориям товаров, руб. (возвраты — отдельно, ниже)", b.title); err != nil {
		return err
	}
	if err := b.set(sh, 1, 2, "Месяц", b.header); err != nil {
		return err
	}
	for j, c := range cats {
		label := c
		if label == "" {
			label = "(без категории)"
		}
		if err := b.set(sh, 2+j, 2, label, b.header); err != nil {
			return err
		}
	}
	retRow := 2 + len(ms) + 2
	if err := b.set(sh, 1, retRow, "Возвраты, руб.", b.title); err != nil {
		return err
	}
	for i, m := range ms {
		if err := b.set(sh, 1, 3+i, MonthName(m), 0); err != nil {
			return err
		}
		if err := b.set(sh, 1, retRow+1+i, MonthName(m), 0); err != nil {
			return err
		}
		for j, c := range cats {
			r := byMonth[i][c]
			if err := b.set(sh, 2+j, 3+i, float64(r.RevenueKop)/100, b.money); err != nil {
				return err
			}
			if err := b.set(sh, 2+j, retRow+1+i, float64(r.ReturnsKop)/100, b.money); err != nil {
				return err
			}
		}
	}
	last, _ := excelize.ColumnNumberToName(max(2, 1+len(cats)))
	b.f.SetColWidth(sh, "A", "A", 16)
	b.f.SetColWidth(sh, "B", last, 16)
	if len(cats) == 0 {
		return b.set(sh, 1, 3+len(ms), "Продаж за эти месяцы нет.", 0)
	}
	var series []excelize.ChartSeries
	for j := range cats {
		colName, _ := excelize.ColumnNumberToName(2 + j)
		series = append(series, excelize.ChartSeries{
			Name:       fmt.Sprintf("'%s'!$%s$2", sh, colName),
			Categories: fmt.Sprintf("'%s'!$A$3:$A$14", sh),
			Values:     fmt.Sprintf("'%s'!$%s$3:$%s$14", sh, colName, colName),
		})
	}
	return b.f.AddChart(sh, "A"+fmt.Sprint(retRow+len(ms)+3), &excelize.Chart{
		Type:   excelize.Line,
		Series: series,
		Title:  excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: "Выручка по категориям за 12 месяцев"}}},
		Legend: excelize.ChartLegend{Position: "bottom"},
		Format: excelize.GraphicOptions{ScaleX: 1.6, ScaleY: 1.2},
	})
}
