package etl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/otklik/otklik/store"
)

// Feed names.
const (
	FeedStores    = "stores"
	FeedCustomers = "customers"
	FeedPurchases = "purchases"
	// FeedPromoCodes are codes 1C issues for thank-you emails.
	FeedPromoCodes = "promo_codes"
)

// Feeds lists the CSV feeds in the order a drop is loaded: stores first so
// that purchase times are read in their store's time zone.
var Feeds = []string{FeedStores, FeedCustomers, FeedPurchases, FeedPromoCodes, FeedOrders}

// DefaultPatterns are the file name globs of each feed.
var DefaultPatterns = map[string][]string{
	FeedStores:     {"stores*.csv"},
	FeedCustomers:  {"customers*.csv", "clients*.csv"},
	FeedPurchases:  {"purchases*.csv", "sales*.csv"},
	FeedPromoCodes: {"promo*.csv"},
	FeedOrders:     {"*.xml"},
}

type column struct {
	key      string
	aliases  []string // 1C's Russian header first
	required bool
}

type feed struct {
	name    string
	columns []column
}

var feeds = map[string]feed{
	FeedStores: {FeedStores, []column{
		{"code", []string{"Код", "code"}, true},
		{"name", []string{"Наименование", "name"}, false},
		{"city", []string{"Город", "city"}, false},
		{"timezone", []string{"ЧасовойПояс", "timezone", "tz"}, false},
		{"region", []string{"Регион", "region"}, false},
		{"director_email", []string{"EmailДиректора", "director_email"}, false},
	}},
	FeedCustomers: {FeedCustomers, []column{
		{"code", []string{"Код", "code"}, true},
		{"name", []string{"ФИО", "name"}, false},
		{"email", []string{"Email", "ЭлектроннаяПочта", "e-mail"}, false},
		{"phone", []string{"Телефон", "phone"}, false},
		{"birth_date", []string{"ДатаРождения", "birth_date"}, false},
		{"consent", []string{"СогласиеНаРассылку", "consent"}, false},
		{"store", []string{"Магазин", "store"}, false},
	}},
	FeedPurchases: {FeedPurchases, []column{
		{"receipt", []string{"НомерЧека", "receipt"}, true},
		{"line", []string{"НомерСтроки", "line"}, true},
		{"date", []string{"Дата", "date"}, true},
		{"store", []string{"Магазин", "store"}, true},
		{"customer", []string{"КодКлиента", "customer"}, false},
		{"product_code", []string{"КодТовара", "product_code"}, false},
		{"product", []string{"Товар", "product"}, false},
		{"category", []string{"Категория", "category"}, false},
		{"qty", []string{"Количество", "qty"}, true},
		{"price", []string{"Цена", "price"}, false},
		{"sum", []string{"Сумма", "sum"}, true},
		{"seller", []string{"Продавец", "seller"}, false},
	}},
	FeedPromoCodes: {FeedPromoCodes, []column{
		{"code", []string{"Промокод", "code", "promo_code"}, true},
	}},
}

// surveyColumns are the optional columns without which a feed's new rows
// load but are never surveyed: a file without one says so, once, as a
// value its rows were loaded without (see absent). A column renamed in 1C
// would otherwise stop the surveys of new customers without a word.
var surveyColumns = map[string]map[string]string{
	FeedCustomers: {
		"email":   "в файле нет этого столбца: новые карточки загружены без email (опросы им не отправляются), у прежних email прежний",
		"consent": "в файле нет этого столбца: новые карточки загружены без согласия на рассылку (опросы им не отправляются), у прежних согласие прежнее",
	},
	FeedPurchases: {
		"customer": "в файле нет этого столбца: покупки загружены без покупателя, опросы по ним не отправляются",
	},
}

// absent returns a note, at the header's line, of each of the feed's
// surveyColumns that a file's header (matched into index) lacks.
func (f feed) absent(index map[string]int, line int) []*RowError {
	var notes []*RowError
	for _, c := range f.columns {
		why, ok := surveyColumns[f.name][c.key]
		if _, found := index[c.key]; ok && !found {
			notes = append(notes, &RowError{Line: line, Field: c.aliases[0], Reason: why})
		}
	}
	return notes
}

// cardColumns and storeColumns are the columns whose absence from a
// file leaves what a card or a store loaded before holds (see
// store.Customer's Absent).
var (
	cardColumns = []fieldColumn[store.CardFields]{{"name", store.CardName}, {"email", store.CardEmail},
		{"phone", store.CardPhone}, {"birth_date", store.CardBirthDate}, {"consent", store.CardConsent},
		{"store", store.CardStore}}
	storeColumns = []fieldColumn[store.StoreFields]{{"name", store.StoreName}, {"city", store.StoreCity},
		{"timezone", store.StoreTimeZone}, {"region", store.StoreRegion}, {"director_email", store.StoreDirectorEmail}}
)

// Columns returns the column keys of a CSV feed (what a source's
// columns mapping may name), or nil if the feed is not CSV.
func Columns(feedName string) []string {
	f, ok := feeds[feedName]
	if !ok {
		return nil
	}
	keys := make([]string, len(f.columns))
	for i, c := range f.columns {
		keys[i] = c.key
	}
	return keys
}

// withColumns returns the feed with a source's own header names (column
// key -> header): each is tried before the default aliases, and names its
// column in rejects.
func (f feed) withColumns(names map[string]string) feed {
	if len(names) == 0 {
		return f
	}
	cols := make([]column, len(f.columns))
	for i, c := range f.columns {
		if h := names[c.key]; h != "" {
			c.aliases = append([]string{h}, c.aliases...)
		}
		cols[i] = c
	}
	return feed{name: f.name, columns: cols}
}

// headerKey folds a header name for matching: case and white space do not
// count.
func headerKey(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '\ufeff' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// matchHeader maps the feed's column keys to field indexes. Extra columns
// are ignored; a missing required column is a *FileError naming it.
func (f feed) matchHeader(header []string) (map[string]int, error) {
	byName := map[string]int{}
	for i, h := range header {
		k := headerKey(h)
		if _, dup := byName[k]; !dup && k != "" {
			byName[k] = i
		}
	}
	index := map[string]int{}
	var missing []string
	for _, c := range f.columns {
		found := false
		for _, a := range c.aliases {
			if i, ok := byName[headerKey(a)]; ok {
				index[c.key], found = i, true
				break
			}
		}
		if !found && c.required {
			missing = append(missing, c.aliases[0])
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		what := "нет обязательного столбца"
		if len(missing) > 1 {
			what = "нет обязательных столбцов"
		}
		return nil, &FileError{Reason: fmt.Sprintf("выгрузка %s: %s %s (заголовок: %s)",
			f.name, what, strings.Join(missing, ", "), strings.Join(header, ";"))}
	}
	return index, nil
}

func (f feed) label(key string) string {
	for _, c := range f.columns {
		if c.key == key {
			return c.aliases[0]
		}
	}
	return key
}

// rowErr is a reject of a row's column, named as the file's header is.
func rowErr(r *csvRow, key, format string, args ...any) *RowError {
	return &RowError{Line: r.line, Field: r.feed.label(key), Reason: fmt.Sprintf(format, args...)}
}

// parseStore reads a stores row.
func parseStore(r *csvRow) (store.Store, *RowError) {
	s := store.Store{
		Code: r.get("code"), Name: r.get("name"), City: r.get("city"),
		TimeZone: r.get("timezone"), Region: r.get("region"), Absent: missingFields(r, storeColumns),
	}
	if s.Code == "" {
		return s, rowErr(r, "code", "пустой код магазина")
	}
	if s.TimeZone != "" {
		if _, err := time.LoadLocation(s.TimeZone); err != nil {
			return s, rowErr(r, "timezone", "%q — не часовой пояс IANA (например, Europe/Moscow)", s.TimeZone)
		}
	}
	if e := r.get("director_email"); e != "" {
		addr, err := normalizeEmail(e)
		if err != nil {
			return s, rowErr(r, "director_email", "%v", err)
		}
		s.DirectorEmail = addr
	}
	return s, nil
}

// parseCustomer reads a customers row. Of an email or phone field that
// lists several, the first valid one is kept. A card with an unreadable
// email, phone or birth date still loads without that value, so that its
// purchases keep their owner (a card without an email is never
// surveyed); dropped says which values were left out and why, for the
// 1C administrator to mend the card.
func parseCustomer(r *csvRow) (c store.Customer, dropped []*RowError, bad *RowError) {
	c = store.Customer{Code: r.get("code"), Name: r.get("name"), StoreCode: r.get("store")}
	if c.Code == "" {
		return c, nil, rowErr(r, "code", "пустой код покупателя")
	}
	c.Absent = missingFields(r, cardColumns)
	var err error
	if c.Email, err = contactValue(r.get("email"), normalizeEmail, emailMark); err != nil {
		dropped = append(dropped, rowErr(r, "email", "%v", err))
	}
	if c.Phone, err = contactValue(r.get("phone"), normalizePhone, phoneMark); err != nil {
		dropped = append(dropped, rowErr(r, "phone", "%v", err))
	}
	if b := r.get("birth_date"); b != "" {
		switch t, err := parseDateTime(b, time.UTC); {
		case err == nil:
			c.BirthDate = t.Format("2006-01-02")
		case err != errEmpty: // 1C's empty date is no birth date
			dropped = append(dropped, rowErr(r, "birth_date", "%v", err))
		}
	}
	consent, err := parseBool(r.get("consent"))
	if err != nil {
		return c, nil, rowErr(r, "consent", "%v", err)
	}
	c.Consent = consent
	return c, dropped, nil
}

// parsePurchase reads a purchases row; zone gives a store's time zone,
// and latest the latest a purchase may be dated.
func parsePurchase(r *csvRow, zone func(store string) *time.Location, latest time.Time) (store.PurchaseLine, *RowError) {
	p := store.PurchaseLine{
		StoreCode: r.get("store"), Receipt: r.get("receipt"), CustomerCode: r.get("customer"),
		ProductCode: r.get("product_code"), Product: r.get("product"), Category: r.get("category"),
		Seller: r.get("seller"),
	}
	if p.StoreCode == "" {
		return p, rowErr(r, "store", "пустой код магазина")
	}
	if p.Receipt == "" {
		return p, rowErr(r, "receipt", "пустой номер чека")
	}
	line, err := strconv.Atoi(r.get("line"))
	if err != nil || line < 0 {
		return p, rowErr(r, "line", "%q — не номер строки чека", r.get("line"))
	}
	p.Line = line
	at, err := parseDateTime(r.get("date"), zone(p.StoreCode))
	if err != nil {
		if err == errEmpty {
			return p, rowErr(r, "date", "пустая дата")
		}
		return p, rowErr(r, "date", "%v", err)
	}
	if err := checkPurchaseDate(r.get("date"), at, latest); err != nil {
		return p, rowErr(r, "date", "%v", err)
	}
	p.At = at
	if p.QtyMilli, err = parseMilli(r.get("qty")); err != nil {
		return p, rowErr(r, "qty", "%v", err)
	}
	if p.QtyMilli == 0 {
		return p, rowErr(r, "qty", "нулевое количество")
	}
	if s := r.get("price"); s != "" {
		if p.PriceKop, err = parseKopecks(s); err != nil {
			return p, rowErr(r, "price", "%v", err)
		}
	}
	if p.SumKop, err = parseKopecks(r.get("sum")); err != nil {
		return p, rowErr(r, "sum", "%v", err)
	}
	if key := lineBeyond(p.QtyMilli, p.PriceKop, p.SumKop); key != "" {
		limit := fmt.Sprintf("%d руб.", maxLineKopecks/100)
		if key == "qty" {
			limit = fmt.Sprintf("%d шт.", maxLineMilli/1000)
		}
		return p, rowErr(r, key, "%q — больше %s: значение другого столбца?", r.get(key), limit)
	}
	// A return is a negative quantity; 1C writes its sum either way.
	if p.QtyMilli < 0 && p.SumKop > 0 {
		p.SumKop = -p.SumKop
	}
	if p.QtyMilli > 0 && p.SumKop < 0 {
		return p, rowErr(r, "sum", "отрицательная сумма %s при положительном количестве", r.get("sum"))
	}
	return p, nil
}
