// Package sample writes a realistic 1C drop for the demo and the tests:
// stores in several time zones, a few thousand customers and daily
// purchase exports, in Windows-1251 with the quirks 1C exports have
// (';' separators, CRLF, decimal commas, non-breaking-space thousands,
// unpadded hours, quoted fields holding ';' and line breaks, trailing
// spaces in codes, empty trailing columns) and a few bad rows.
package sample

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// Options shape the drop.
type Options struct {
	// Now is the moment of the drop: the last purchase day is the day
	// before Now in each store's time zone.
	Now       time.Time
	Customers int    // 0 means 3000
	Days      int    // days of purchases, 0 means 60
	Receipts  int    // receipts a day across the chain, 0 means 120
	Seed      uint64 // for the random choices; the same seed gives the same drop
}

// Store is a store of the sample chain.
type Store struct {
	Code, Name, City, TimeZone, Region, Director string
}

// Stores are the sample chain's stores: six time zones, and one store
// whose card has no time zone (it uses the configured default).
var Stores = []Store{
	{"0001", "Хофф Москва Химки", "Москва", "Europe/Moscow", "Центр", "director.center@example.ru"},
	{"0002", "Хофф Казань", "Казань", "Europe/Moscow", "Поволжье", "director.volga@example.ru"},
	{"0003", "Хофф Самара", "Самара", "Europe/Samara", "Поволжье", "director.volga@example.ru"},
	{"0004", "Хофф Екатеринбург", "Екатеринбург", "Asia/Yekaterinburg", "Урал", "director.ural@example.ru"},
	{"0005", "Хофф Новосибирск", "Новосибирск", "Asia/Novosibirsk", "Сибирь", "director.siberia@example.ru"},
	{"0006", "Хофф Владивосток", "Владивосток", "Asia/Vladivostok", "Дальний Восток", "director.east@example.ru"},
	{"0007", "Хофф Калининград", "Калининград", "Europe/Kaliningrad", "Северо-Запад", "director.nw@example.ru"},
	{"0008", "Хофф Тула", "Тула", "", "Центр", ""},
}

type product struct {
	code, name, category string
	priceKop             int64
}

var products = []product{
	{"Т-1001", "Диван-кровать \"Марсель\"", "Диваны", 4599000},
	{"Т-1002", "Кресло \"Осло\"", "Диваны", 1899000},
	{"Т-2001", "Кровать \"Сканди\" 160×200", "Спальни", 3299000},
	{"Т-2002", "Матрас \"Комфорт\" 160×200", "Спальни", 2199000},
	{"Т-3001", "Кухонный гарнитур \"Лайт\" 2,4 м", "Кухни", 8990000},
	{"Т-3002", "Стул \"Венский\"; бук", "Кухни", 459000},
	{"Т-4001", "Плед \"Уют\" 140×200", "Текстиль", 149900},
	{"Т-4002", "Комплект постельного белья", "Текстиль", 349900},
	{"Т-5001", "Торшер \"Луч\"", "Освещение", 549000},
	{"Т-5002", "Люстра \"Капля\"\n(5 плафонов)", "Освещение", 1299000},
	{"Т-6001", "Ваза декоративная", "Декор", 89900},
	{"Т-6002", "Зеркало в раме", "Декор", 399000},
	{"Т-7001", "Шкаф-купе \"Рио\" 180 см", "Хранение", 3799000},
	{"Т-7002", "Комод \"Нордик\"", "Хранение", 1499000},
}

var (
	lastNames  = []string{"Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров"}
	firstNames = []string{"Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Иван", "Михаил"}
	femNames   = []string{"Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана"}
	patrs      = []string{"Александров", "Сергеев", "Иванов", "Петров", "Николаев", "Андреев"}
	domains    = []string{"mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "rambler.ru"}
	sellers    = []string{"Орлова Е.", "Зайцев П.", "Белова Н.", "Крылов А.", "Гусева Т."}
)

// Summary says what was written.
type Summary struct {
	Files     []string
	Customers int
	Receipts  int
	Lines     int
	BadRows   int
	// Mistyped are the cards whose email holds a comma for a point: they
	// load without it.
	Mistyped int
}

// Write writes the drop into dir, creating it.
func Write(dir string, o Options) (Summary, error) {
	if o.Customers <= 0 {
		o.Customers = 3000
	}
	if o.Days <= 0 {
		o.Days = 60
	}
	if o.Receipts <= 0 {
		o.Receipts = 120
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var sum Summary
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sum, fmt.Errorf("sample: %w", err)
	}
	stamp := o.Now.Format("20060102")

	name := "stores_" + stamp + ".csv"
	err := writeCSV(filepath.Join(dir, name), func(w *csv.Writer) error {
		w.Write([]string{"Код", "Наименование", "Город", "ЧасовойПояс", "Регион", "EmailДиректора", ""})
		for _, s := range Stores {
			w.Write([]string{s.Code, s.Name, s.City, s.TimeZone, s.Region, s.Director, ""})
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Files = append(sum.Files, name)

	name = "customers_" + stamp + ".csv"
	err = writeCSV(filepath.Join(dir, name), func(w *csv.Writer) error {
		w.Write(customersHeader)
		prev := ""
		for i := range o.Customers {
			card := customerRow(rng, i, prev)
			prev = card[2]
			if strings.Contains(card[2], ",") {
				sum.Mistyped++
			}
			w.Write(card)
		}
		// A card with an unreadable consent: rejected, the rest loads.
		w.Write([]string{"999999999", "Ошибкин Тест", "error@example.ru", "", "", "Может быть", "0001"})
		sum.BadRows++
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Files = append(sum.Files, name)
	sum.Customers = o.Customers

	// Promo codes 1C issued for thank-you emails; when they run out,
	// otklik generates its own.
	name = "promo_" + stamp + ".csv"
	err = writeCSV(filepath.Join(dir, name), func(w *csv.Writer) error {
		w.Write([]string{"Промокод", "Скидка"})
		for i := range 20 {
			w.Write([]string{fmt.Sprintf("HOFF-%s-%03d", stamp[2:6], i+1), "10%"})
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Files = append(sum.Files, name)

	for d := o.Days; d >= 1; d-- {
		day := o.Now.AddDate(0, 0, -d)
		name := "purchases_" + day.Format("20060102") + ".csv"
		err := writeCSV(filepath.Join(dir, name), func(w *csv.Writer) error {
			w.Write(purchasesHeader)
			n := o.Receipts/2 + rng.IntN(o.Receipts+1)
			for k := range n {
				writeReceipt(w, rng, day, fmt.Sprintf("-%s-%05d", day.Format("060102"), k+1), o.Customers, &sum)
			}
			if d%20 == 0 {
				// Rows 1C should not have written: rejected with a reason.
				w.Write([]string{"BAD-1", "1", "31.02.2026 10:00:00", "0001", "", "Т-6001", "Ваза", "Декор", "1", "899,00", "899,00", "", ""})
				w.Write([]string{"BAD-2", "1", day.Format("02.01.2006"), "0001", "", "Т-6001", "Ваза", "Декор", "много", "899,00", "899,00", "", ""})
				sum.BadRows += 2
			}
			return nil
		})
		if err != nil {
			return sum, err
		}
		sum.Files = append(sum.Files, name)
	}
	return sum, nil
}

// purchasesHeader is the purchases export's header as 1C writes it.
var purchasesHeader = []string{"НомерЧека", "НомерСтроки", "Дата", "Магазин", "КодКлиента", "КодТовара", "Товар", "Категория", "Количество", "Цена", "Сумма", "Продавец"}

// writeReceipt writes the lines of one receipt of a day; the receipt
// number is the store's code followed by suffix.
func writeReceipt(w *csv.Writer, rng *rand.Rand, day time.Time, suffix string, customers int, sum *Summary) {
	st := Stores[rng.IntN(len(Stores))]
	loc := zone(st.TimeZone)
	y, m, dd := day.In(loc).Date()
	at := time.Date(y, m, dd, 10+rng.IntN(11), rng.IntN(60), rng.IntN(60), 0, loc)
	receipt := st.Code + suffix
	customer := fmt.Sprintf("%09d", 100000+rng.IntN(customers))
	if rng.IntN(5) == 0 {
		customer = "" // no loyalty card
	}
	ret := rng.IntN(40) == 0
	lines := 1 + rng.IntN(3)
	for ln := 1; ln <= lines; ln++ {
		p := products[rng.IntN(len(products))]
		qty := int64(1 + rng.IntN(2))
		if ret {
			qty = -1
		}
		w.Write([]string{receipt, fmt.Sprint(ln), at.Format("02.01.2006 15:04:05"), st.Code, customer,
			p.code, p.name, p.category, fmt.Sprint(qty), rubles(p.priceKop), rubles(p.priceKop * qty), pick(rng, sellers), ""})
		sum.Lines++
	}
	sum.Receipts++
}

var zones sync.Map // name -> *time.Location

// zone loads a store's time zone once; a store without one is in
// Moscow, as the ingest's default zone is.
func zone(name string) *time.Location {
	if name == "" {
		name = "Europe/Moscow"
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = time.UTC // the sample's zones are all valid IANA names
	}
	zones.Store(name, l)
	return l
}

var customersHeader = []string{"Код", "ФИО", "Email", "Телефон", "ДатаРождения", "СогласиеНаРассылку", "Магазин"}

// customerRow is the i-th card of an export, as 1C writes it: the email
// of the card before it is prev (a second card of the same person takes
// it).
func customerRow(rng *rand.Rand, i int, prev string) []string {
	code := fmt.Sprintf("%09d", 100000+i)
	female := rng.IntN(2) == 0
	last, first, patr := pick(rng, lastNames), pick(rng, firstNames), pick(rng, patrs)+"ич"
	if female {
		last, first, patr = last+"а", pick(rng, femNames), pick(rng, patrs)+"на"
		if strings.HasSuffix(last, "йа") {
			last = strings.TrimSuffix(last, "йа") + "я"
		}
	}
	fio := last + " " + first + " " + patr
	email := fmt.Sprintf("%s.%d@%s", translit(first), 100000+i, pick(rng, domains))
	switch r := rng.IntN(100); {
	case r < 5:
		email = "" // no email on the card
	case r < 6:
		email = "нет" // typed into the wrong field
	case r < 7:
		email = strings.Replace(email, ".", ",", 1) // a typo: the card loads without it
	case r < 12:
		email = "  " + strings.ToUpper(email) + " " // 1C keeps what the cashier typed
	case r < 15 && prev != "":
		email = prev // a second card of the same person
	}
	phone := fmt.Sprintf("9%09d", rng.IntN(1e9))
	switch rng.IntN(4) {
	case 0:
		phone = "8 (" + phone[:3] + ") " + phone[3:6] + "-" + phone[6:8] + "-" + phone[8:]
	case 1:
		phone = "+7 " + phone
	case 2:
		phone = "7" + phone
	}
	birth := time.Date(1950+rng.IntN(55), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC).Format("02.01.2006 0:00:00")
	if rng.IntN(10) == 0 {
		birth = "01.01.0001 0:00:00" // the 1C empty date
	}
	consent := pick(rng, []string{"Да", "Да", "Да", "Да", "Нет", "Истина", "1"})
	return []string{code + " ", fio, email, phone, birth, consent, Stores[rng.IntN(len(Stores))].Code}
}

// BigCustomers describes a full customers export, as a large chain's 1C
// delivers every night, for benchmarks.
type BigCustomers struct {
	Cards int
	Seed  uint64
	// Edited, if set, changes the consent of one card in Edited: the next
	// night's export of the same cards.
	Edited int
}

// WriteBigCustomers writes a customers export of b.Cards cards in
// Windows-1251.
func WriteBigCustomers(path string, b BigCustomers) (Summary, error) {
	rng := rand.New(rand.NewPCG(b.Seed, b.Seed^0x9e3779b97f4a7c15))
	var sum Summary
	err := writeCSV(path, func(w *csv.Writer) error {
		w.Write(customersHeader)
		prev := ""
		for i := range b.Cards {
			card := customerRow(rng, i, prev)
			prev = card[2]
			if b.Edited > 0 && i%b.Edited == 0 {
				if card[5] == "Нет" {
					card[5] = "Да"
				} else {
					card[5] = "Нет"
				}
			}
			w.Write(card)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Files, sum.Customers = []string{filepath.Base(path)}, b.Cards
	return sum, nil
}

// Big describes one large purchases export, as a chain's full re-export
// of a month would be, for benchmarks.
type Big struct {
	Lines     int       // at least this many purchase lines
	Now       time.Time // the purchases are on the 30 days before
	Customers int       // 0 means 1,000,000
	Seed      uint64
	// From is the number of the first receipt (each receipt number is
	// unique within the file): files with far apart From do not overlap.
	From int
}

// WriteBig writes a purchases export of b.Lines lines in Windows-1251.
func WriteBig(path string, b Big) (Summary, error) {
	if b.Customers <= 0 {
		b.Customers = 1000000
	}
	rng := rand.New(rand.NewPCG(b.Seed, b.Seed^0x9e3779b97f4a7c15))
	var sum Summary
	err := writeCSV(path, func(w *csv.Writer) error {
		w.Write(purchasesHeader)
		for k := b.From; sum.Lines < b.Lines; k++ {
			day := b.Now.AddDate(0, 0, -1-rng.IntN(30))
			writeReceipt(w, rng, day, fmt.Sprintf("-%09d", k), b.Customers, &sum)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Files = []string{filepath.Base(path)}
	return sum, nil
}

func pick(rng *rand.Rand, xs []string) string { return xs[rng.IntN(len(xs))] }

// rubles formats kopecks as 1C does: "12 345,00" with a non-breaking space.
func rubles(kop int64) string {
	neg := kop < 0
	if neg {
		kop = -kop
	}
	s := fmt.Sprint(kop / 100)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u00a0')
		}
		b.WriteRune(c)
	}
	out := fmt.Sprintf("%s,%02d", b.String(), kop%100)
	if neg {
		out = "-" + out
	}
	return out
}

var translitTable = map[rune]string{
	'А': "a", 'Б': "b", 'В': "v", 'Г': "g", 'Д': "d", 'Е': "e", 'Ё': "e", 'Ж': "zh", 'З': "z", 'И': "i",
	'Й': "y", 'К': "k", 'Л': "l", 'М': "m", 'Н': "n", 'О': "o", 'П': "p", 'Р': "r", 'С': "s", 'Т': "t",
	'У': "u", 'Ф': "f", 'Х': "h", 'Ц': "ts", 'Ч': "ch", 'Ш': "sh", 'Щ': "sch", 'Ы': "y", 'Э': "e", 'Ю': "yu",
	'Я': "ya", 'Ь': "", 'Ъ': "",
}

func translit(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if t, ok := translitTable[r]; ok {
			b.WriteString(t)
		}
	}
	return b.String()
}

// writeCSV writes a file as 1C does: Windows-1251, ';', CRLF, through a
// temporary name so that a reader never sees half a file.
func writeCSV(path string, fill func(*csv.Writer) error) error {
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	enc := encoding.ReplaceUnsupported(charmap.Windows1251.NewEncoder()).Writer(f)
	w := csv.NewWriter(enc)
	w.Comma = ';'
	w.UseCRLF = true
	err = fill(w)
	w.Flush()
	err = firstErr(err, w.Error(), closeIfCloser(enc), f.Close())
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sample: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	return nil
}

func closeIfCloser(w io.Writer) error {
	if c, ok := w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
