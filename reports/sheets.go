package reports

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otklik/otklik/store"
	"github.com/xuri/excelize/v2"
)

// More sheet names.
const (
	SheetStores   = "Магазины"
	SheetComments = "Комментарии"
	SheetMethod   = "Методика"
)

const maxComments = 10000

func (b *book) cell(col, row int) string {
	c, _ := excelize.CoordinatesToCellName(col, row)
	return c
}

// row writes values from column 1 on, with one style for all (0: none).
func (b *book) row(sheet string, r int, style int, vals ...any) error {
	for i, v := range vals {
		if err := b.set(sheet, i+1, r, v, style); err != nil {
			return err
		}
	}
	return nil
}

// header writes a header row, freezes it and puts a filter on the table
// below it.
func (b *book) header(sheet string, r int, names []string, lastRow int) error {
	for i, n := range names {
		if err := b.set(sheet, i+1, r, n, b.title2); err != nil {
			return err
		}
	}
	if err := b.f.SetPanes(sheet, &excelize.Panes{Freeze: true, YSplit: r, TopLeftCell: b.cell(1, r+1), ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	if lastRow > r {
		return b.f.AutoFilter(sheet, b.cell(1, r)+":"+b.cell(len(names), lastRow), nil)
	}
	return nil
}

// widths sets column widths, in characters.
func (b *book) widths(sheet string, ws ...float64) {
	for i, w := range ws {
		col, _ := excelize.ColumnNumberToName(i + 1)
		b.f.SetColWidth(sheet, col, col, w)
	}
}

// local turns an instant into the wall-clock time of the report's zone,
// which is what a spreadsheet cell holds.
func (b *book) local(t time.Time) time.Time {
	l := t.In(b.o.Zone)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

func (b *book) summarySheet(ctx context.Context, db *store.DB, s *Summary) error {
	sh := SheetSummary
	title := "Отзывы покупателей: " + MonthName(s.Month)
	if s.Scope != "" {
		title += " — " + s.Scope
	}
	if err := b.set(sh, 1, 1, title, b.title); err != nil {
		return err
	}
	f, p := s.Fig, s.Prev
	rows := []struct {
		label     string
		cur, prev any
		style     int
	}{
		{"Приглашений отправлено", f.Sent, p.Sent, b.d},
		{"Доставлено (без отказов почтовых серверов)", f.Delivered, p.Delivered, b.d},
		{"Открыли анкету из письма", f.Opened, p.Opened, b.d},
		{"Доля открывших анкету", f.OpenRate, p.OpenRate, b.pct},
		{"Ответов получено", f.Answers, p.Answers, b.d},
		{"Доля ответов", f.ResponseRate, p.ResponseRate, b.pct},
		{"CSI, средняя оценка (1–5)", f.CSI, p.CSI, b.num},
		{"NPS (% сторонников − % критиков)", f.NPS, p.NPS, b.num},
		{"Доля негативных ответов", f.NegShare, p.NegShare, b.pct},
		{"Индекс качества управления (0–100)", f.MQI, p.MQI, b.num},
	}
	if err := b.row(sh, 3, b.title2, "Показатель", "Этот месяц", "Прошлый месяц"); err != nil {
		return err
	}
	for i, r := range rows {
		if err := b.row(sh, 4+i, 0, r.label); err != nil {
			return err
		}
		if err := b.set(sh, 2, 4+i, r.cur, r.style); err != nil {
			return err
		}
		if err := b.set(sh, 3, 4+i, r.prev, r.style); err != nil {
			return err
		}
	}
	r := 5 + len(rows)
	if !math.IsNaN(f.CSI) {
		b.set(sh, 1, r, fmt.Sprintf("CSI %s ± %s, NPS %s ± %s (95%% доверительный интервал).",
			FormatNumber(f.CSI, 2), FormatNumber(f.CSIMoE, 2), FormatNPS(f.NPS), FormatNumber(f.NPSMoE, 0)), b.note)
		r++
	}
	r++
	if err := b.set(sh, 1, r, "Главное за месяц", b.title2); err != nil {
		return err
	}
	r++
	if s.Empty() {
		return b.set(sh, 1, r, "За этот месяц нет ни отправленных приглашений, ни ответов.", 0)
	}
	lines := s.Movements
	if len(lines) == 0 {
		lines = []string{"Заметных изменений против прошлого месяца нет."}
	}
	for _, l := range lines {
		if err := b.set(sh, 1, r, "• "+l, 0); err != nil {
			return err
		}
		r++
	}
	b.widths(sh, 52, 18, 18)
	return nil
}

// storeRow is one store's line of the stores sheet.
type storeRow struct {
	store.StoreSurvey
	fig, prev Figures
	prevStats store.SurveyStats
	p         float64 // p-value of the change in the negative share
	ranked    bool
}

func (b *book) storesSheet(ctx context.Context, db *store.DB, s *Summary) error {
	sh := SheetStores
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	cur, err := db.StoreSurveys(ctx, period(s.Month), b.o.Scope)
	if err != nil {
		return err
	}
	prev, err := db.StoreSurveys(ctx, period(s.Month.AddDate(0, -1, 0)), b.o.Scope)
	if err != nil {
		return err
	}
	prevBy := map[string]store.StoreSurvey{}
	for _, p := range prev {
		prevBy[p.Code] = p
	}
	var rows []storeRow
	for _, c := range cur {
		pr := prevBy[c.Code]
		r := storeRow{StoreSurvey: c, fig: figures(c.SurveyStats), prev: figures(pr.SurveyStats), prevStats: pr.SurveyStats,
			ranked: c.Responses >= int64(b.o.MinAnswers)}
		r.p = twoProportionP(c.Negative, c.Responses, pr.Negative, pr.Responses)
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].ranked != rows[j].ranked {
			return rows[i].ranked
		}
		if rows[i].ranked {
			return rows[i].fig.MQI > rows[j].fig.MQI
		}
		return rows[i].Code < rows[j].Code
	})
	names := []string{"Место", "Код", "Магазин", "Регион", "Приглашений", "Ответов", "Доля ответов", "CSI", "CSI ±",
		"NPS", "NPS ±", "Доля негатива", "ИКУ", "Δ CSI", "Δ NPS", "Δ негатива, п.п.", "p-value", "Изменение значимо", "Примечание"}
	if err := b.header(sh, 1, names, 1+len(rows)); err != nil {
		return err
	}
	rank := 0
	for i, r := range rows {
		y := 2 + i
		place, note := any("—"), ""
		mqi := any(r.fig.MQI)
		if r.ranked {
			rank++
			place = rank
		} else {
			note, mqi = "мало ответов", "мало ответов"
		}
		sig := "—"
		if !math.IsNaN(r.p) {
			sig = map[bool]string{true: "да", false: "нет"}[r.p < 0.05]
		}
		vals := []struct {
			v     any
			style int
		}{
			{place, 0}, {r.Code, 0}, {r.Name, 0}, {r.Region, 0}, {r.Sent, b.d}, {r.Responses, b.d},
			{r.fig.ResponseRate, b.pct}, {r.fig.CSI, b.num}, {r.fig.CSIMoE, b.num}, {r.fig.NPS, b.num}, {r.fig.NPSMoE, b.num},
			{r.fig.NegShare, b.pct}, {mqi, b.num}, {r.fig.CSI - r.prev.CSI, b.num}, {r.fig.NPS - r.prev.NPS, b.num},
			{100 * (r.fig.NegShare - r.prev.NegShare), b.num}, {r.p, b.num3}, {sig, 0}, {note, 0},
		}
		for col, v := range vals {
			if err := b.set(sh, col+1, y, v.v, v.style); err != nil {
				return err
			}
		}
	}
	if rank > 1 {
		// The worst ranked stores red, the best green.
		rng := fmt.Sprintf("M2:M%d", 1+rank)
		if err := b.f.SetConditionalFormat(sh, rng, []excelize.ConditionalFormatOptions{{
			Type: "3_color_scale", Criteria: "=", MinType: "min", MidType: "percentile", MidValue: "50", MaxType: "max",
			MinColor: "#F8696B", MidColor: "#FFEB84", MaxColor: "#63BE7B",
		}}); err != nil {
			return err
		}
	}
	b.widths(sh, 7, 8, 28, 16, 12, 10, 11, 8, 8, 8, 8, 11, 8, 8, 8, 11, 9, 11, 14)
	if len(rows) == 0 {
		return b.set(sh, 1, 2, "За этот месяц ответов нет.", b.note)
	}
	s.Movements = append(s.Movements, storeMovements(rows)...)
	return nil
}

// storeMovements describes the stores whose negative share changed
// significantly, the largest changes first, at most three.
func storeMovements(rows []storeRow) []string {
	var sig []storeRow
	for _, r := range rows {
		if r.ranked && !math.IsNaN(r.p) && r.p < 0.05 {
			sig = append(sig, r)
		}
	}
	sort.Slice(sig, func(i, j int) bool {
		return math.Abs(sig[i].fig.NegShare-sig[i].prev.NegShare) > math.Abs(sig[j].fig.NegShare-sig[j].prev.NegShare)
	})
	var out []string
	for _, r := range sig[:min(3, len(sig))] {
		verb := "выросла"
		if r.fig.NegShare < r.prev.NegShare {
			verb = "снизилась"
		}
		out = append(out, fmt.Sprintf("%s: доля негативных ответов %s с %s до %s (значимо, p = %s).",
			nameOf(r.StoreSurvey), verb, FormatPercent(r.prev.NegShare), FormatPercent(r.fig.NegShare), FormatNumber(r.p, 3)))
	}
	return out
}

func nameOf(s store.StoreSurvey) string {
	if s.Name != "" {
		return s.Name
	}
	return "Магазин " + s.Code
}

func (b *book) categoriesSheet(ctx context.Context, db *store.DB, s *Summary) error {
	sh := SheetCategories
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	names := []string{"Месяц"}
	for _, tone := range []string{"−", "+"} {
		for _, c := range Categories {
			names = append(names, c.Label+" "+tone)
		}
	}
	ms := months(s.Month)
	if err := b.header(sh, 1, names, 1+len(ms)); err != nil {
		return err
	}
	byMonth, err := db.MonthlyFeedback(ctx, ms[0], ms[len(ms)-1], b.o.Scope)
	if err != nil {
		return err
	}
	var last, before map[store.Feedback]int64
	for i, m := range ms {
		counts := byMonth[m.Format("2006-01")]
		before, last = last, counts
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
	b.widths(sh, 16, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14)
	s.Movements = append(s.Movements, categoryMovements(last, before)...)
	for _, half := range []struct {
		tone  string
		first int
		title string
		at    string
	}{{"negative", 2, "Жалобы по категориям за 12 месяцев", "A16"}, {"positive", 2 + len(Categories), "Похвала по категориям за 12 месяцев", "A34"}} {
		var series []excelize.ChartSeries
		for i := range Categories {
			col, _ := excelize.ColumnNumberToName(half.first + i)
			series = append(series, excelize.ChartSeries{
				Name:       fmt.Sprintf("'%s'!$%s$1", sh, col),
				Categories: fmt.Sprintf("'%s'!$A$2:$A$13", sh),
				Values:     fmt.Sprintf("'%s'!$%s$2:$%s$13", sh, col, col),
			})
		}
		if err := b.f.AddChart(sh, half.at, &excelize.Chart{
			Type: excelize.Line, Series: series,
			Title:  excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: half.title}}},
			Legend: excelize.ChartLegend{Position: "bottom"},
			Format: excelize.GraphicOptions{ScaleX: 1.6, ScaleY: 1.2},
		}); err != nil {
			return err
		}
	}
	return nil
}

// categoryMovements describes the categories whose complaints changed
// most against last month, at most three.
func categoryMovements(cur, prev map[store.Feedback]int64) []string {
	type move struct {
		label    string
		now, was int64
	}
	var ms []move
	for _, c := range Categories {
		k := store.Feedback{Category: c.Key, Tone: "negative"}
		if cur[k] != prev[k] {
			ms = append(ms, move{c.Label, cur[k], prev[k]})
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		di, dj := ms[i].now-ms[i].was, ms[j].now-ms[j].was
		return max(di, -di) > max(dj, -dj)
	})
	var out []string
	for _, m := range ms[:min(3, len(ms))] {
		verb := "больше"
		if m.now < m.was {
			verb = "меньше"
		}
		out = append(out, fmt.Sprintf("Жалоб на «%s» %s: %d против %d в прошлом месяце.", strings.ToLower(m.label), verb, m.now, m.was))
	}
	return out
}

func (b *book) commentsSheet(ctx context.Context, db *store.DB, s *Summary) error {
	sh := SheetComments
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	cs, err := db.NegativeComments(ctx, period(s.Month), b.o.Scope, maxComments)
	if err != nil {
		return err
	}
	names := []string{"Дата", "Магазин", "Оценка", "NPS", "Что не понравилось", "Комментарий"}
	if err := b.header(sh, 1, names, 1+len(cs)); err != nil {
		return err
	}
	b.widths(sh, 17, 26, 8, 6, 24, 90)
	if len(cs) == 0 {
		return b.set(sh, 1, 2, "Негативных комментариев за месяц нет.", b.note)
	}
	for i, c := range cs {
		y := 2 + i
		name := c.StoreName
		if name == "" {
			name = c.StoreCode
		}
		var cats []string
		for _, k := range c.Categories {
			cats = append(cats, labelOf(k))
		}
		nps := any("")
		if c.NPS != nil {
			nps = *c.NPS
		}
		comment := c.Comment
		if utf8.RuneCountInString(comment) > 32000 { // a cell holds 32,767 characters
			comment = string([]rune(comment)[:32000]) + "…"
		}
		vals := []struct {
			v     any
			style int
		}{{b.local(c.At), b.date}, {name, b.wrap}, {c.Rating, 0}, {nps, 0}, {strings.Join(cats, ", "), b.wrap}, {comment, b.wrap}}
		for col, v := range vals {
			if err := b.set(sh, col+1, y, v.v, v.style); err != nil {
				return err
			}
		}
	}
	if len(cs) == maxComments {
		b.set(sh, 1, 2+len(cs), fmt.Sprintf("Показаны последние %d комментариев.", maxComments), b.note)
	}
	return nil
}

func labelOf(key string) string {
	for _, c := range Categories {
		if c.Key == key {
			return c.Label
		}
	}
	return key
}

func (b *book) salesSheet(ctx context.Context, db *store.DB, s *Summary) error {
	sh := SheetSales
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	ms := months(s.Month)
	sales, err := db.MonthlySales(ctx, ms[0], ms[len(ms)-1], b.o.Scope)
	if err != nil {
		return err
	}
	byMonth := make([]map[string]store.CategorySales, len(ms))
	seen := map[string]bool{}
	var cats []string
	for i, m := range ms {
		byMonth[i] = map[string]store.CategorySales{}
		for _, r := range sales[m.Format("2006-01")] {
			byMonth[i][r.Category] = r
			if !seen[r.Category] {
				seen[r.Category] = true
				cats = append(cats, r.Category)
			}
		}
	}
	sort.Strings(cats)
	tables := []struct {
		title string
		value func(store.CategorySales) any
		style int
	}{
		{"Выручка по категориям товаров, руб.", func(c store.CategorySales) any { return float64(c.RevenueKop) / 100 }, b.money},
		{"Чеков с товарами категории", func(c store.CategorySales) any { return c.Receipts }, b.d},
		{"Строк чеков", func(c store.CategorySales) any { return c.Lines }, b.d},
		{"Возвраты, руб.", func(c store.CategorySales) any { return float64(c.ReturnsKop) / 100 }, b.money},
	}
	y := 1
	for ti, t := range tables {
		if err := b.set(sh, 1, y, t.title, b.title); err != nil {
			return err
		}
		if err := b.set(sh, 1, y+1, "Месяц", b.title2); err != nil {
			return err
		}
		for j, c := range cats {
			label := c
			if label == "" {
				label = "(без категории)"
			}
			if err := b.set(sh, 2+j, y+1, label, b.title2); err != nil {
				return err
			}
		}
		for i, m := range ms {
			if err := b.set(sh, 1, y+2+i, MonthName(m), 0); err != nil {
				return err
			}
			for j, c := range cats {
				if err := b.set(sh, 2+j, y+2+i, t.value(byMonth[i][c]), t.style); err != nil {
					return err
				}
			}
		}
		if ti == 0 && len(cats) > 0 {
			var series []excelize.ChartSeries
			for j := range cats {
				col, _ := excelize.ColumnNumberToName(2 + j)
				series = append(series, excelize.ChartSeries{
					Name:       fmt.Sprintf("'%s'!$%s$%d", sh, col, y+1),
					Categories: fmt.Sprintf("'%s'!$A$%d:$A$%d", sh, y+2, y+13),
					Values:     fmt.Sprintf("'%s'!$%s$%d:$%s$%d", sh, col, y+2, col, y+13),
				})
			}
			lastCol, _ := excelize.ColumnNumberToName(max(3, len(cats)+3))
			if err := b.f.AddChart(sh, fmt.Sprintf("%s%d", lastCol, y), &excelize.Chart{
				Type: excelize.Line, Series: series,
				Title:  excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: "Выручка по категориям за 12 месяцев"}}},
				Legend: excelize.ChartLegend{Position: "bottom"},
				Format: excelize.GraphicOptions{ScaleX: 1.4, ScaleY: 1.1},
			}); err != nil {
				return err
			}
		}
		y += len(ms) + 4
	}
	if len(cats) == 0 {
		b.set(sh, 1, y, "Продаж за эти месяцы нет.", b.note)
	}
	widths := []float64{16}
	for range cats {
		widths = append(widths, 16)
	}
	b.widths(sh, widths...)
	return nil
}

// method explains each figure in plain Russian.
var method = [][2]string{
	{"Приглашения", "Письма с просьбой оценить покупку, отправленные за месяц: на следующий день после покупки, в рабочие часы магазина по его местному времени, не чаще одного раза в период охлаждения на человека. Возвраты и чеки без карты лояльности не опрашиваются."},
	{"Доставлено", "Приглашения, которые почтовый сервер покупателя принял (без отказов вида «такого адреса нет»)."},
	{"Открыли анкету", "Приглашения, по ссылке из которых анкету открыли хотя бы раз; доля — от доставленных. Открытие самого письма не отслеживается: в письмах нет счётчиков и пикселей. Почтовые системы, которые проверяют ссылки в письмах, тоже открывают анкету, поэтому показатель может быть немного завышен."},
	{"Доля ответов", "Ответы за месяц, делённые на приглашения, отправленные за месяц."},
	{"CSI", "Индекс удовлетворённости: средняя оценка обслуживания по шкале от 1 до 5. Рядом — 95% доверительный интервал (±1,96 стандартной ошибки среднего)."},
	{"NPS", "Индекс готовности рекомендовать: доля ответивших 9–10 («сторонники») минус доля ответивших 0–6 («критики»), в процентных пунктах, от −100 до +100. Интервал: ±1,96·√((p + d − (p − d)²)/n)·100, где p и d — доли сторонников и критиков, n — число ответов с NPS."},
	{"Негативный ответ", "Оценка от 1 до 3, или что-то отмеченное покупателем в «Что можно улучшить», или жалоба, найденная в комментарии по словарю."},
	{"Категории", "Обслуживание, ассортимент, цены, комфорт, другое: сначала то, что отметил сам покупатель, затем найденное в комментарии по словарю ключевых слов (с учётом форм слов и отрицаний вроде «не помог»)."},
	{"ИКУ", "Индекс качества управления магазином, от 0 до 100: 100 × (0,4 × (CSI − 1)/4 + 0,4 × (NPS + 100)/200 + 0,2 × (1 − доля негатива)). 100 — все покупатели в восторге, 0 — все потеряны."},
	{"Изменение значимо", "Изменение доли негативных ответов против прошлого месяца проверено z-тестом для двух долей; «да» — если p-value меньше 0,05, то есть такое изменение вряд ли случайно."},
	{"Мало ответов", "Магазин с числом ответов за месяц меньше порога не ранжируется: его показатели слишком неточны."},
	{"Продажи", "Строки чеков из выгрузок 1С по категориям товаров за 12 месяцев; возвраты (отрицательное количество) показаны отдельно и в выручку не входят. Чек считается в каждой категории, товары которой в нём есть; месяцы и дни — по часовому поясу отчёта."},
}

func (b *book) methodSheet(ctx context.Context, db *store.DB, s *Summary) error {
	sh := SheetMethod
	if _, err := b.f.NewSheet(sh); err != nil {
		return err
	}
	if err := b.set(sh, 1, 1, "Как считаются показатели", b.title); err != nil {
		return err
	}
	for i, m := range method {
		if err := b.set(sh, 1, 3+i, m[0], b.boldTop); err != nil {
			return err
		}
		text := m[1]
		if m[0] == "Мало ответов" {
			text = fmt.Sprintf("%s Порог: %d ответов.", text, b.o.MinAnswers)
		}
		if err := b.set(sh, 2, 3+i, text, b.wrap); err != nil {
			return err
		}
	}
	b.widths(sh, 22, 110)
	return nil
}
