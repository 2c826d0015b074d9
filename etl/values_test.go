package etl

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
)

func TestParseKopecks(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"99,90 руб.", "9990"},
		{"99,90 РУБ", "9990"},
		{"1\u00a0000,00\u00a0₽", "100000"},
		{"99,90 р.", "9990"},
		{"-5 ₽", "-500"},
		{"(1 234,50 ₽)", "-123450"},
		{"руб.", `"руб." — не число`},
		{"₽ 99", `"₽ 99" — не число`},
		{"99,90 руб. 00", `"99,90 руб. 00" — не число`},
		{"1,5x", `"1,5x" — не число`},
		{"899,001", `в "899,001" больше 2 знаков после запятой`},
		{"12.34,56", `"12.34,56" — не число`},
	} {
		v, err := parseKopecks(tc.in)
		got := fmt.Sprint(v)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("parseKopecks(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseFixed(t *testing.T) {
	for _, tc := range []struct {
		in      string
		scale   int
		want    int64
		wantErr bool
	}{
		{"45\u00a0990,00", 2, 4599000, false},
		{"1 299,5", 2, 129950, false},
		{"2248.50", 2, 224850, false},
		{"-1 499,00", 2, -149900, false},
		{"+7", 2, 700, false},
		{",5", 2, 50, false},
		{"12\u202f345", 2, 1234500, false},
		{"899,001", 2, 0, true},
		{"899,000", 2, 89900, false},
		{"1,5", 3, 1500, false},
		{"много", 2, 0, true},
		{"1,2,3", 2, 0, true},
		{"", 2, 0, true},
		{"-", 2, 0, true},
		{"99999999999999999999", 2, 0, true},
		{"1 2 3,4 5", 2, 12345, false},
		{"- 5", 2, -500, false},
		{"5-", 2, 0, true},
		{"--5", 2, 0, true},
		{"007", 2, 700, false},
		{"1.", 2, 100, false},
		{".", 2, 0, true},
		{" 1,50 ", 2, 150, false},
		{"\u00a0", 2, 0, true},
		{"1\t000", 2, 100000, false},
		{"461168601842738791", 2, 0, true},
		{"46116860184273879", 2, 4611686018427387900, false},
		// Other locales' groups, and the accounting negative.
		{"1.234,56", 2, 123456, false},
		{"1,234.56", 2, 123456, false},
		{"1,234,567", 2, 123456700, false},
		{"1.234.567,5", 2, 123456750, false},
		{"12.34,56", 2, 0, true},
		{"1.234.56", 2, 0, true},
		{"1,234,56", 2, 0, true},
		{"(5,00)", 2, -500, false},
		{"(-5)", 2, 0, true},
		{"()", 2, 0, true},
		{"(5", 2, 0, true},
		{"99,90 руб.", 2, 0, true}, // parseKopecks takes the sign off
		{"1,5x", 2, 0, true},
	} {
		got, err := parseFixed(tc.in, tc.scale)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseFixed(%q, %d) = %d, %v; want %d, err=%v", tc.in, tc.scale, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseDateTime(t *testing.T) {
	msk, _ := time.LoadLocation("Europe/Moscow")
	for _, tc := range []struct {
		in   string
		want string // UTC RFC 3339, or "" for an error
	}{
		{"01.11.2026 9:05:00", "2026-11-01T06:05:00Z"},
		{"01.11.2026 09:05:00", "2026-11-01T06:05:00Z"},
		{"01.11.2026", "2026-10-31T21:00:00Z"},
		{"2026-11-01T18:30:00", "2026-11-01T15:30:00Z"},
		{"2026-11-01", "2026-10-31T21:00:00Z"},
		{"2026-11-01T18:30:00+05:00", "2026-11-01T13:30:00Z"},
		{"2026-11-01 18:30:00+03:00", "2026-11-01T15:30:00Z"},
		{"2026-11-01T18:30:00Z", "2026-11-01T18:30:00Z"},
		{"01.01.0001 0:00:00", ""},
		{"31.02.2026", ""},
		{"29.02.2028 23:59:59", "2028-02-29T20:59:59Z"},
		{"29.02.2027 10:00:00", ""},
		{"31.04.2026 10:00:00", ""},
		{"01.11.2026 24:00:00", ""},
		{"01.11.2026 9:60:00", ""},
		{"1.11.2026 9:05:00", "2026-11-01T06:05:00Z"},
		{"1.1.2027", "2026-12-31T21:00:00Z"},
		{"001.11.2026", ""},
		{"01.11.2026 09:05:00.5", "2026-11-01T06:05:00Z"},
		{"вчера", ""},
		{"", ""},
	} {
		got, err := parseDateTime(tc.in, msk)
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseDateTime(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.UTC().Format(time.RFC3339) != tc.want {
			t.Errorf("parseDateTime(%q) = %v, %v; want %s", tc.in, got.UTC(), err, tc.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"Да": true, "да": true, "Истина": true, "1": true, "true": true, "TRUE": true,
		"Нет": false, "Ложь": false, "0": false, "false": false, "": false} {
		got, err := parseBool(in)
		if err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseBool("Может быть"); err == nil {
		t.Error("parseBool(Может быть) gave no error")
	}
}

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{" Anna.Iva@Mail.RU ", "anna.iva@mail.ru"},
		{"a+b@example.ru", "a+b@example.ru"},
		{"нет", ""},
		{"a@b", ""},
		{"Иван <ivan@mail.ru>", ""},
		{"иван@mail.ru", ""},
		{"a@@mail.ru", ""},
		{"a@mail.ru\r\nBcc: x@y.ru", ""},
	} {
		got, err := normalizeEmail(tc.in)
		if tc.want == "" && err == nil || tc.want != "" && got != tc.want {
			t.Errorf("normalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"8 (912) 345-67-89", "+79123456789"},
		{"+7 912 3456789", "+79123456789"},
		{"79123456789", "+79123456789"},
		{"9123456789", "+79123456789"},
		{"8-495-123-45-67", "+74951234567"},
		{"+7 (701) 123-45-67", "+77011234567"}, // Kazakhstan shares +7
		{"8 912 345-67-89 доб. 12", "+79123456789"},
		{"тел.: +7 912 345 67 89", "+79123456789"},
		{"8 800 555-35-35", "+78005553535"},
		{"+7 000 000-00-00", ""}, // no such numbering range
		{"89", ""},
		{"12345", ""},
		{"+8 912 345-67-89", ""},
		{"+375 29 123-45-67", ""},
		{"+1 212 555 0100", ""},
		{"тел. 912", ""},
		{"нет", ""},
		{"", ""},
	} {
		got, err := normalizePhone(tc.in)
		if tc.want == "" && err == nil || tc.want != "" && got != tc.want {
			t.Errorf("normalizePhone(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLineSum(t *testing.T) {
	tests := []struct {
		price, qty int64
		want       int64
		ok         bool
	}{
		{8990, 1000, 8990, true},
		{8990, 1500, 13485, true},
		{8990, -2000, -17980, true},
		{maxLineKopecks, 1000, maxLineKopecks, true},
		{maxLineKopecks, 1001, 0, false},
		{maxLineKopecks, maxLineMilli, 0, false}, // 10^21 before the division: no wrap
		{-maxLineKopecks, maxLineMilli, 0, false},
		{1 << 62, 1 << 62, 0, false},
		{0, maxLineMilli * 10, 0, true},
	}
	for _, tt := range tests {
		got, ok := lineSum(tt.price, tt.qty)
		if got != tt.want || ok != tt.ok {
			t.Errorf("lineSum(%d, %d) = %d, %v; want %d, %v", tt.price, tt.qty, got, ok, tt.want, tt.ok)
		}
	}
}

func TestContactValue(t *testing.T) {
	tests := []struct {
		in    string
		norm  func(string) (string, error)
		mark  string
		want  string
		valid bool
	}{
		{"Ivanov@Mail.ru; ivanov@yandex.ru", normalizeEmail, emailMark, "ivanov@mail.ru", true},
		{"нет, ivanov@yandex.ru", normalizeEmail, emailMark, "ivanov@yandex.ru", true},
		{"ivanov@mail.ru", normalizeEmail, emailMark, "ivanov@mail.ru", true},
		{"a@mail,ru,b@bk.ru", normalizeEmail, emailMark, "b@bk.ru", true},
		{"нет; никогда", normalizeEmail, emailMark, "", true}, // words: no value
		{"-", normalizeEmail, emailMark, "", true},
		{",;", normalizeEmail, emailMark, "", true},
		{"ivanov@mail", normalizeEmail, emailMark, "", false},
		// A comma for a point: one broken address, not a list.
		{"ivan,petrov@mail.ru", normalizeEmail, emailMark, "", false},
		{"ivanov@mail,ru", normalizeEmail, emailMark, "", false},
		{"+7 (495) 123-45-67, 8 912 345-67-89", normalizePhone, phoneMark, "+74951234567", true},
		{"89; 8 912 345-67-89", normalizePhone, phoneMark, "+79123456789", true},
		{"не давала", normalizePhone, phoneMark, "", true},
		{"12345, 678", normalizePhone, phoneMark, "", false},
	}
	for _, tt := range tests {
		got, err := contactValue(tt.in, tt.norm, tt.mark)
		if got != tt.want || (err == nil) != tt.valid {
			t.Errorf("contactValue(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestPlanPrefix holds validPlus7's cache to the library: for every
// prefix of five digits, numbers that differ after it get the same
// verdict from the library, the one the cache gives.
func TestPlanPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const rest = planRest
	for prefix := uint64(1e9 / rest); prefix < 1e10/rest; prefix++ {
		var want bool
		for i, tail := range []uint64{0, rest - 1, rng.Uint64N(rest), rng.Uint64N(rest)} {
			cc, national := int32(7), prefix*rest+tail
			n := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}
			got := phonenumbers.IsValidNumber(n)
			if i == 0 {
				want = got
			} else if got != want {
				t.Fatalf("+7%d: the library says %v, but %v for +7%d: more digits decide", national, got, want, prefix*rest)
			}
			if cached := validPlus7(n); cached != got {
				t.Fatalf("+7%d: validPlus7 says %v, the library %v", national, cached, got)
			}
		}
	}
}
