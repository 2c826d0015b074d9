package etl

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReadCSV feeds arbitrary bytes through decoding and every feed's
// parser: nothing may panic, and every row is either parsed or rejected.
func FuzzReadCSV(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/csv/*/*.csv")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Код;Наименование\r\n\"unterminated"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u utf8Checker
		u.Write(data)
		for _, name := range Feeds {
			r, err := decoder(bytes.NewReader(data), u.Encoding())
			if err != nil {
				t.Fatal(err)
			}
			row := func(cr *csvRow) error {
				switch name {
				case FeedStores:
					parseStore(cr)
				case FeedCustomers:
					parseCustomer(cr)
				case FeedPurchases:
					parsePurchase(cr, func(string) *time.Location { return time.UTC }, time.Now())
				}
				return nil
			}
			readCSV(r, feeds[name], nil, row, func(*RowError) error { return nil })
		}
	})
}

// FuzzParseFixed checks the value parsers never panic, and that the
// one-pass readings of numbers and dates agree with the general ones.
func FuzzParseFixed(f *testing.F) {
	for _, s := range []string{"45\u00a0990,00", "-1,5", ",", "1e9", "999999999999999999", "- 1 2,30", "1,2,3",
		"01.11.2026 9:05:00", "29.02.2028 23:59:59", "31.04.2026 10:00:00", "01.01.0001 0:00:00", "29.03.2026 2:30:00",
		"1.234,56", "1,234,567", "(1 234,50 ₽)", "99,90 руб.", "ivan,petrov@mail.ru", "нет, a@bk.ru; b@bk.ru"} {
		f.Add(s)
	}
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := plainDateTime(s, moscow); ok {
			if w, err := anyDateTime(s, moscow); err != nil || !w.Equal(v) {
				t.Errorf("%q: one pass read %v, the layouts %v, %v", s, v, w, err)
			}
		}
		for scale := 2; scale <= 3; scale++ {
			if v, ok := plainFixed(s, scale); ok {
				if w, err := anyFixed(s, scale); err != nil || w != v {
					t.Errorf("%q at scale %d: one pass read %d, the general reader %d, %v", s, scale, v, w, err)
				}
			}
		}
		parseDateTime(s, time.UTC)
		parseKopecks(s)
		contactValue(s, normalizePhone, phoneMark)
		contactValue(s, normalizeEmail, emailMark)
	})
}

// FuzzReadCommerceML feeds arbitrary bytes to the CommerceML reader:
// nothing may panic, whatever the nesting, entities or encoding.
func FuzzReadCommerceML(f *testing.F) {
	for _, glob := range []string{"../testdata/malformed/*.xml", "../../shared/realworld/cml20*.xml"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`<КоммерческаяИнформация><Документ><Роль>Продавец</Роль><Товары><Товар><Количество>1</Количество></Товар></Товары></Документ></КоммерческаяИнформация>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u utf8Checker
		u.Write(data)
		nop := func(*xnode) error { return nil }
		readCommerceML(bytes.NewReader(data), u.Encoding() == EncodingUTF8, cmlSink{document: nop, party: nop, groups: nop, product: nop})
	})
}
