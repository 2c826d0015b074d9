package etl

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/otklik/otklik/store"
	"golang.org/x/text/encoding/charmap"
)

// OutFile is a file for 1C.
type OutFile struct {
	Name string
	Data []byte
}

// Exporter writes what 1C should know back as CSV files 1C imports:
// answers, promo codes issued and unsubscribes, one file of each per day
// (answers_20261122.csv ...), ';'-separated with CRLF and 1C's Russian
// headers, in Windows-1251 unless Encoding says utf-8. The files of a day
// are the same whenever they are made, so uploading them again is
// harmless.
type Exporter struct {
	DB       *store.DB
	Zone     *time.Location // days are counted here
	Encoding string         // EncodingCP1251 (default) or EncodingUTF8
}

var categoryNames = map[string]string{
	"service": "Обслуживание", "assortment": "Ассортимент", "prices": "Цены", "comfort": "Комфорт", "other": "Другое",
}

// Files makes the files of one day (a date in Zone).
func (x *Exporter) Files(ctx context.Context, day time.Time) ([]OutFile, error) {
	y, m, d := day.In(x.Zone).Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, x.Zone)
	p := store.Period{From: from, To: from.AddDate(0, 0, 1)}
	stamp := from.Format("20060102")
	ts := func(t time.Time) string { return t.In(x.Zone).Format("02.01.2006 15:04:05") }

	answers, err := x.DB.AnswersIn(ctx, p)
	if err != nil {
		return nil, err
	}
	rows := [][]string{{"Дата", "Магазин", "НомерЧека", "КодКлиента", "Оценка", "NPS", "Понравилось", "НеПонравилось", "Комментарий"}}
	for _, a := range answers {
		nps := ""
		if a.NPS != nil {
			nps = strconv.Itoa(*a.NPS)
		}
		rows = append(rows, []string{ts(a.At), a.StoreCode, a.Receipt, a.Customer, strconv.Itoa(a.Rating), nps,
			names(a.Good), names(a.Bad), a.Comment})
	}
	answersFile, err := x.csv("answers_"+stamp+".csv", rows)
	if err != nil {
		return nil, err
	}

	codes, err := x.DB.CodesIssuedIn(ctx, p)
	if err != nil {
		return nil, err
	}
	rows = [][]string{{"Дата", "КодКлиента", "Email", "Промокод"}}
	for _, c := range codes {
		rows = append(rows, []string{ts(c.At), c.Customer, c.Email, c.Code})
	}
	codesFile, err := x.csv("promocodes_"+stamp+".csv", rows)
	if err != nil {
		return nil, err
	}

	unsubs, err := x.DB.UnsubscribesIn(ctx, p)
	if err != nil {
		return nil, err
	}
	rows = [][]string{{"Дата", "Email", "КодыКлиентов", "Причина"}}
	for _, u := range unsubs {
		reason := "Отписался"
		if u.Reason == "bounced" {
			reason = "АдресНеСуществует"
		}
		rows = append(rows, []string{ts(u.At), u.Email, strings.Join(u.Customers, ","), reason})
	}
	unsubsFile, err := x.csv("unsubscribes_"+stamp+".csv", rows)
	if err != nil {
		return nil, err
	}
	return []OutFile{answersFile, codesFile, unsubsFile}, nil
}

func names(cats []string) string {
	out := make([]string, len(cats))
	for i, c := range cats {
		if n, ok := categoryNames[c]; ok {
			out[i] = n
		} else {
			out[i] = c
		}
	}
	return strings.Join(out, ",")
}

// csv writes rows as 1C reads them. A cell that a spreadsheet would take
// for a formula (= + - @) gets a leading apostrophe.
func (x *Exporter) csv(name string, rows [][]string) (OutFile, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma, w.UseCRLF = ';', true
	for _, r := range rows {
		for i, c := range r {
			c = strings.ReplaceAll(c, "\r\n", "\n")
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				c = "'" + c
			}
			r[i] = c
		}
		w.Write(r)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return OutFile{}, fmt.Errorf("export %s: %w", name, err)
	}
	data := b.Bytes()
	if x.Encoding != EncodingUTF8 {
		// Characters Windows-1251 lacks (emoji, mostly) become '?'.
		text := strings.Map(func(r rune) rune {
			if _, ok := charmap.Windows1251.EncodeRune(r); !ok {
				return '?'
			}
			return r
		}, string(data))
		var err error
		if data, err = charmap.Windows1251.NewEncoder().Bytes([]byte(text)); err != nil {
			return OutFile{}, fmt.Errorf("export %s: %w", name, err)
		}
	}
	return OutFile{Name: name, Data: data}, nil
}
