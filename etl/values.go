package etl

import (
	"errors"
	"fmt"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// The layouts 1C and hand-made exports use for dates. Go accepts a
// one-digit hour for "15", so "01.11.2026 9:05:00" parses, and one or two
// digits for "2" and "1": a 1C format string with "d" for the day writes
// "1.11.2026".
var dateTimeLayouts = []string{
	"2.1.2006 15:04:05",
	"2.1.2006 15:04",
	"2.1.2006",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	time.RFC3339, // with its offset, which then decides
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

var errEmpty = errors.New("пустое значение")

// parseDateTime reads a 1C date or date-time in loc. The 1C empty date
// (01.01.0001) reads as errEmpty.
func parseDateTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errEmpty
	}
	if t, ok := plainDateTime(s, loc); ok {
		return t, nil
	}
	return anyDateTime(s, loc)
}

// plainDateTime reads 1C's own "DD.MM.YYYY H:MM:SS" (the hour in one or
// two digits), the date of every purchase line, without time.Parse's
// search of its layout; anything else, or out of range, is left to
// anyDateTime.
func plainDateTime(s string, loc *time.Location) (time.Time, bool) {
	h := len(s) - 17 // the digits of the hour
	if h < 1 || h > 2 || s[2] != '.' || s[5] != '.' || s[10] != ' ' || s[11+h] != ':' || s[14+h] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) int {
		n := 0
		for _, c := range []byte(s[from:to]) {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	day, month, year := num(0, 2), num(3, 5), num(6, 10)
	hour, minute, sec := num(11, 11+h), num(12+h, 14+h), num(15+h, 17+h)
	if year <= 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, loc), true
}

// anyDateTime is parseDateTime for any layout it knows. A date written as
// a layout wants but naming no day of the calendar (31.02.2026,
// 01.13.2026) says so rather than that it is no date.
func anyDateTime(s string, loc *time.Location) (time.Time, error) {
	impossible := false
	for _, layout := range dateTimeLayouts {
		t, err := time.ParseInLocation(layout, s, loc)
		if err == nil {
			if t.Year() <= 1 {
				return time.Time{}, errEmpty
			}
			return t, nil
		}
		var pe *time.ParseError
		if errors.As(err, &pe) && (pe.Message == ": day out of range" || pe.Message == ": month out of range") {
			impossible = true
		}
	}
	if impossible {
		return time.Time{}, fmt.Errorf("%q — такой даты нет в календаре", s)
	}
	return time.Time{}, fmt.Errorf("%q — не дата (нужно ДД.ММ.ГГГГ или ДД.ММ.ГГГГ Ч:ММ:СС)", s)
}

// parseFixed reads a decimal number with up to scale fraction digits as an
// integer count of 10^-scale units, exactly (no floats): "1 234,56" with
// scale 2 is 123456. Spaces, non-breaking and narrow spaces group
// thousands; the decimal mark is a comma or a point.
func parseFixed(s string, scale int) (int64, error) {
	if v, ok := plainFixed(s, scale); ok {
		return v, nil
	}
	return anyFixed(s, scale)
}

// plainFixed reads what the quantity and money columns of every purchase
// line hold (digits, a minus, one decimal mark, spaces or non-breaking
// spaces) in one pass and without allocating; anything else, or anything
// out of the ordinary (too many decimals, too large), is left to anyFixed.
func plainFixed(s string, scale int) (int64, bool) {
	var v int64
	digits, frac, neg, mark := 0, 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if mark {
				if frac == scale {
					return 0, false
				}
				frac++
			}
			if v > (1<<62)/10 {
				return 0, false
			}
			v = v*10 + int64(c-'0')
			digits++
		case c == ',' || c == '.':
			if mark {
				return 0, false
			}
			mark = true
		case c == '-' && !neg && !mark && digits == 0:
			neg = true
		case c == ' ':
		case c == 0xc2 && i+1 < len(s) && s[i+1] == 0xa0: // U+00A0
			i++
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	for ; frac < scale; frac++ {
		if v > (1<<62)/10 {
			return 0, false
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, true
}

// anyFixed is parseFixed for any input, with the reason it is refused,
// one of units taken off its end. Beside what plainFixed reads, it takes
// an accounting negative in parentheses and points or commas grouping
// thousands, as Excel saves them in other locales: of "1.234,56" and
// "1,234.56" the last mark is the decimal one; a mark repeated
// ("1,234,567") groups digits.
func anyFixed(s string, scale int, units ...string) (int64, error) {
	orig := s
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\u00a0' || r == '\u202f' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return 0, errEmpty
	}
	notNumber := fmt.Errorf("%q — не число", orig)
	neg := false
	if len(s) > 2 && s[0] == '(' && s[len(s)-1] == ')' {
		neg, s = true, s[1:len(s)-1]
	}
	for _, u := range units {
		if len(s) > len(u) && strings.EqualFold(s[len(s)-len(u):], u) {
			s = s[:len(s)-len(u)]
			break
		}
	}
	switch {
	case neg: // no sign inside the parentheses
	case s[0] == '-':
		neg, s = true, s[1:]
	case s[0] == '+':
		s = s[1:]
	}
	intPart, frac, ok := splitDecimal(s)
	if !ok || intPart == "" && frac == "" {
		return 0, notNumber
	}
	for _, part := range []string{intPart, frac} {
		if strings.ContainsFunc(part, func(c rune) bool { return c < '0' || c > '9' }) {
			return 0, notNumber
		}
	}
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return 0, fmt.Errorf("в %q больше %d знаков после запятой", orig, scale)
		}
		frac = frac[:scale]
	}
	var v int64
	for _, c := range intPart + frac + strings.Repeat("0", scale-len(frac)) {
		if v > (1<<62)/10 {
			return 0, fmt.Errorf("%q — слишком большое число", orig)
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

// splitDecimal splits a number without spaces or sign at its decimal
// mark, removing the marks that group thousands; ok is false if the
// marks are in no order a number has (groups of three digits after the
// first).
func splitDecimal(s string) (intPart, frac string, ok bool) {
	last := strings.LastIndexAny(s, ".,")
	if last < 0 {
		return s, "", true
	}
	mark, other := s[last], byte(',')
	if mark == ',' {
		other = '.'
	}
	switch n := strings.Count(s, string(mark)); {
	case n > 1 && strings.IndexByte(s, other) < 0:
		// One mark repeated: it groups thousands, and there is no fraction.
		intPart, ok = ungroup(s, mark)
		return intPart, "", ok
	case n > 1:
		return "", "", false
	}
	intPart, frac = s[:last], s[last+1:]
	if strings.IndexByte(intPart, other) < 0 {
		return intPart, frac, true
	}
	intPart, ok = ungroup(intPart, other)
	return intPart, frac, ok
}

// ungroup removes the mark that groups s's digits in threes.
func ungroup(s string, mark byte) (string, bool) {
	groups := strings.Split(s, string(mark))
	if len(groups[0]) < 1 || len(groups[0]) > 3 {
		return "", false
	}
	for _, g := range groups[1:] {
		if len(g) != 3 {
			return "", false
		}
	}
	return strings.Join(groups, ""), true
}

// parseKopecks reads a money amount in roubles into kopecks. A rouble
// sign after it, as Excel's currency format saves it ("99,90 ₽",
// "99,90 р."), is taken off.
func parseKopecks(s string) (int64, error) {
	if v, ok := plainFixed(s, 2); ok {
		return v, nil
	}
	return anyFixed(s, 2, roubleSigns...)
}

// roubleSigns are what may follow an amount, longest first.
var roubleSigns = []string{"руб.", "руб", "rub", "р.", "₽"}

// parseMilli reads a quantity into thousandths.
func parseMilli(s string) (int64, error) { return parseFixed(s, 3) }

// parseBool reads the ways 1C and people write yes and no.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "да", "истина", "1", "true", "yes", "y", "д":
		return true, nil
	case "нет", "ложь", "0", "false", "no", "n", "н", "":
		return false, nil
	}
	return false, fmt.Errorf("%q — не «да» и не «нет» (Да/Нет, Истина/Ложь, 1/0, true/false)", s)
}

// NormalizeEmail trims and lower-cases an address and checks it, as the
// customers feed does.
func NormalizeEmail(s string) (string, error) { return normalizeEmail(s) }

// NormalizePhone normalizes a Russian phone number to +7XXXXXXXXXX, as the
// customers feed does.
func NormalizePhone(s string) (string, error) { return normalizePhone(s) }

// normalizeEmail trims and lower-cases an address and checks it. Only
// ASCII local parts are accepted: most relays refuse SMTPUTF8.
func normalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if e == "" {
		return "", errEmpty
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", fmt.Errorf("%q — не адрес электронной почты", s)
	}
	local, domain, _ := strings.Cut(e, "@")
	if !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fmt.Errorf("в адресе %q нет правильного домена после @", s)
	}
	for _, r := range local {
		if r > unicode.MaxASCII {
			return "", fmt.Errorf("в адресе %q до @ не только латинские буквы, цифры и знаки", s)
		}
	}
	return e, nil
}

// contactValue returns a contact field's value for norm (normalizeEmail
// or normalizePhone), or why there is none. Words in place of a value,
// which 1C operators type when a customer gives none ("нет", "-", "не
// дала"), are no value: "" without an error. A value holds mark: an
// email an @, a phone a digit.
//
// 1C's contact fields may list several ("ivanov@mail.ru; ivanov@yandex.ru",
// "нет, anna@bk.ru"): s whole is tried first, then each listed value in
// turn (see contactList), and without a valid one it is norm's error for
// s.
func contactValue(s string, norm func(string) (string, error), mark string) (string, error) {
	if !strings.ContainsAny(s, mark) {
		return "", nil
	}
	v, err := norm(s)
	if err == nil || !strings.ContainsAny(s, ",;") {
		return v, err
	}
	for _, part := range contactList(s, mark) {
		if v, perr := norm(part); perr == nil {
			return v, nil
		}
	}
	return "", err
}

// contactList splits a contact field into the values it lists. A
// semicolon always separates; a comma only when a space follows it or
// values (holding mark) stand on both sides of it. A comma typed for a
// point inside one address ("ivan,petrov@mail.ru") separates nothing:
// split, it would give another person's address.
func contactList(s, mark string) []string {
	var parts []string
	for _, semi := range strings.Split(s, ";") {
		pieces := strings.Split(semi, ",")
		cur := pieces[0]
		for _, next := range pieces[1:] {
			if strings.HasPrefix(next, " ") || strings.ContainsAny(cur, mark) && strings.ContainsAny(next, mark) {
				parts = append(parts, cur)
				cur = next
				continue
			}
			cur += "," + next
		}
		parts = append(parts, cur)
	}
	return parts
}

// The marks that make a contact field a value for contactValue.
const (
	emailMark = "@"
	phoneMark = "0123456789"
)

// normalizePhone turns a Russian phone number in any common notation
// (8 (912) 345-67-89, +7 912 3456789, 9123456789, with an extension
// "доб. 12" dropped) into +7XXXXXXXXXX. Whether the number is one that
// Russia or Kazakhstan (which share +7) gives out is libphonenumber's
// call, from its numbering plans. Digits and separators alone, the usual
// case, are read here (the library's parser costs ten times its check);
// anything else goes through the library's parser.
func normalizePhone(s string) (string, error) {
	n, ok := plainPhone(s)
	if !ok {
		var err error
		if n, err = phonenumbers.Parse(s, "RU"); err != nil {
			if strings.TrimSpace(s) == "" {
				return "", errEmpty
			}
			return "", fmt.Errorf("%q — не номер телефона", s)
		}
	}
	if n.GetCountryCode() != 7 {
		return "", fmt.Errorf("%q — не российский номер телефона", s)
	}
	if !validPlus7(n) {
		return "", fmt.Errorf("номера %q нет в российском плане нумерации", s)
	}
	national := strconv.FormatUint(n.GetNationalNumber(), 10)
	if len(national) != 10 {
		return "", fmt.Errorf("%q — не российский номер телефона", s)
	}
	return "+7" + national, nil
}

// A ten-digit +7 number divided by planRest is its first five digits,
// which decide whether the numbering plans of Russia and Kazakhstan give
// it out: each of their patterns for such numbers is at most five digits
// followed by any digits (a Kazakh landline, 71043, is the longest). A
// test holds this to the library's own verdict for every prefix.
const planRest = 100000

// planVerdicts caches the library's verdict on ten-digit +7 numbers by
// their first five digits, two bits a prefix: known, and valid. The
// library matches a number against a dozen regular expressions, a third
// of the time a customers export took to load, and a chain's numbers
// share a few thousand prefixes.
var planVerdicts [(10_000_000_000/planRest*2 + 31) / 32]atomic.Uint32

// validPlus7 is phonenumbers.IsValidNumber for a +7 number, cached by
// prefix for the ten-digit ones.
func validPlus7(n *phonenumbers.PhoneNumber) bool {
	national := n.GetNationalNumber()
	if national < 1e9 || national >= 1e10 || n.GetItalianLeadingZero() {
		return phonenumbers.IsValidNumber(n)
	}
	bit := national / planRest * 2
	word, shift := &planVerdicts[bit/32], bit%32
	if v := word.Load() >> shift; v&1 != 0 {
		return v&2 != 0
	}
	valid := phonenumbers.IsValidNumber(n)
	verdict := uint32(1)
	if valid {
		verdict |= 2
	}
	word.Or(verdict << shift)
	return valid
}

// plainPhone reads a number written with digits, spaces, brackets, dots
// and dashes only, as +7, 7 or 8 and ten digits, or ten digits.
func plainPhone(s string) (*phonenumbers.PhoneNumber, bool) {
	var d []byte
	plus := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			d = append(d, byte(r))
		case r == '+' && len(d) == 0:
			plus = true
		case r == '(' || r == ')' || r == '-' || r == '.' || unicode.IsSpace(r):
		default:
			return nil, false
		}
	}
	switch {
	case len(d) == 11 && (d[0] == '7' || d[0] == '8' && !plus):
		d = d[1:]
	case len(d) == 10 && !plus:
	default:
		return nil, false
	}
	national, err := strconv.ParseUint(string(d), 10, 64)
	if err != nil {
		return nil, false
	}
	cc := int32(7)
	return &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}, true
}

// Bounds of a purchase line's quantity, price and sum. A value beyond
// them is another column read as one (a barcode, a phone number) rather
// than a sale, and loaded it would break the sums of its day: SQLite's
// sum() stops with an error past 2^63, and a few thousand such lines of
// one store and day reach that.
const (
	maxLineMilli   = 10_000_000 * 1000   // ten million units
	maxLineKopecks = 1_000_000_000 * 100 // a billion roubles
)

// beyond reports whether v is out of -max..max.
func beyond(v, max int64) bool { return v > max || v < -max }

// lineBeyond returns which of a line's quantity (in thousandths), price
// and sum (in kopecks) is beyond its bound, by its feed key ("qty",
// "price", "sum"), or "".
func lineBeyond(qtyMilli, price, sum int64) string {
	switch {
	case beyond(qtyMilli, maxLineMilli):
		return "qty"
	case beyond(price, maxLineKopecks):
		return "price"
	case beyond(sum, maxLineKopecks):
		return "sum"
	}
	return ""
}

// lineSum is a line's sum from its price and quantity (in thousandths),
// or false if it would be beyond maxLineKopecks.
func lineSum(price, qtyMilli int64) (int64, bool) {
	if math.Abs(float64(price)*float64(qtyMilli)/1000) > maxLineKopecks {
		return 0, false
	}
	return price * qtyMilli / 1000, true // the product is below 2^47 here
}

// earliestPurchase bounds a purchase's date from below: a year before it
// is a typo (1926 for 2026), and so is one after the load's latest.
var earliestPurchase = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// aheadOfClock is how far past the clock a purchase may be dated: a store
// some zones east of the server, or a clock behind 1C's.
const aheadOfClock = 48 * time.Hour

// checkPurchaseDate returns why at, read from s, cannot be a purchase's
// date, or nil.
func checkPurchaseDate(s string, at, latest time.Time) error {
	if at.Before(earliestPurchase) {
		return fmt.Errorf("%q — раньше %d года: опечатка в годе?", s, earliestPurchase.Year())
	}
	if at.After(latest) {
		return fmt.Errorf("%q — дата в будущем: опечатка в годе?", s)
	}
	return nil
}
