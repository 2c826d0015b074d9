package etl

import (
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestNotText(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		lines bool
		want  string
	}{
		{"header", "НомерЧека;Дата\tСумма\r", false, ""},
		{"xml", "<?xml version=\"1.0\"?>\r\n<КоммерческаяИнформация>\n\t<Документ>", true, ""},
		{"form feed", "Чек;\x0cДата", false, "строка 1, символ 5: управляющий символ 0x0C: why"},
		{"second line", "<?xml?>\n<Корень>\x01", true, "строка 2, символ 9: управляющий символ 0x01: why"},
		{"line feed in a CSV line", "a\nb", false, "строка 1, символ 2: управляющий символ 0x0A: why"},
		{"NUL", "\x00", true, "строка 1, символ 1: управляющий символ 0x00: why"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notText([]byte(tt.in), tt.lines, "why"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsUTF16(t *testing.T) {
	le := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	be := func(s string) []byte {
		b := le(s)
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"BOM little-endian", []byte("\xff\xfeA\x00"), true},
		{"BOM big-endian", []byte("\xfe\xff\x00A"), true},
		{"Latin, little-endian", le("Code;Name;Email\r\n"), true},
		{"Cyrillic, little-endian", le("Код;Наименование;Почта\r\n"), true},
		{"Cyrillic, big-endian", be("Код;Наименование;Почта\r\n"), true},
		{"UTF-8", []byte("Код;Наименование;Почта\r\n"), false},
		{"Windows-1251", []byte("\xca\xee\xe4;\xcd\xe0\xe8\xec\xe5\xed\xee\xe2\xe0\xed\xe8\xe5\r\n"), false},
		{"short", le("Код"), false},
		{"NULs throughout", make([]byte, 64), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUTF16(tt.in); got != tt.want {
				t.Errorf("isUTF16(% x) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNotExport(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"PK\x03\x04\x14\x00", "архив ZIP (.zip или документ .xlsx, .docx)"},
		{"\x1f\x8b\x08\x00", "архив gzip"},
		{"%PDF-1.7\n", "документ PDF"},
		{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "документ Office 97-2003 (.xls, .doc)"},
		{"Код;Наименование\r\n", ""},
		{"PK", ""},
	}
	for _, tt := range tests {
		if got := notExport([]byte(tt.in)); got != tt.want {
			t.Errorf("notExport(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestXMLReasons makes encoding/xml give each error a file can cause and
// holds the Russian reason the 1C administrator reads. A new Go release
// that words one differently fails here instead of leaving it in English.
func TestXMLReasons(t *testing.T) {
	doc := func(inner string) string {
		return "<КоммерческаяИнформация><Документ>" + inner + "</Документ></КоммерческаяИнформация>"
	}
	const broken = "строка 1: XML повреждён: "
	tests := []struct{ xml, want string }{
		{`<КоммерческаяИнформация><Документ Ид="1`, broken + "файл обрывается посреди XML: он обрезан"},
		{`<КоммерческаяИнформация><Документ><![CDATA[x`, broken + "файл обрывается посреди CDATA: он обрезан"},
		{`<КоммерческаяИнформация></КоммерческаяИнформация></Документ>`, broken + "лишний закрывающий тег </Документ>"},
		{doc(`<Сумма>1</Цена>`), broken + "элемент <Сумма> закрыт тегом </Цена>"},
		{doc(`<a:Сумма xmlns:a="urn:x">1</Сумма>`), broken + "элемент <a:Сумма> закрыт тегом </Сумма>"},
		{doc(`<Сумма>1</ >`), broken + "после </ нет имени элемента"},
		{doc(`<Сумма>1</Сумма x>`), broken + "в закрывающем теге </Сумма> лишние знаки после имени"},
		{doc(`< Сумма/>`), broken + "после < нет имени элемента: знак < в тексте? нужно &lt;"},
		{doc(`<1Сумма/>`), broken + "недопустимое имя в XML: 1Сумма"},
		{doc(`<? ?>`), broken + "после <? нет имени инструкции"},
		{`<?xml version="1.1"?><КоммерческаяИнформация/>`, `строка 1: версия XML "1.1" не поддерживается, только 1.0`},
		{doc(`<!-x-->`), broken + "<!- не начинает комментарий: нужно <!--"},
		{doc(`<!-- a -- b -->`), broken + "два дефиса подряд внутри комментария"},
		{doc(`<![CDAT[x]]>`), broken + "<![ без CDATA[: секция CDATA начинается с <![CDATA["},
		{doc(`a]]>b`), broken + "]]> в тексте вне CDATA: нужно ]]&gt;"},
		{doc(`<Сумма /x>`), broken + "после / в теге нет >"},
		{doc(`<Сумма ="1">`), broken + "в теге посторонний знак вместо имени атрибута"},
		{doc(`<Сумма Валюта>`), broken + "у атрибута в теге нет = и значения"},
		{doc(`<Сумма Валюта=RUB>`), broken + "значение атрибута без кавычек или пропущено"},
		{doc(`<Сумма Валюта="<"/>`), broken + "знак < в значении атрибута: нужно &lt;"},
		{doc(`<Наименование>Рога & Копыта</Наименование>`), broken + "знак & в тексте: нужно &amp;"},
		{doc(`<Наименование>Рога &amp Копыта</Наименование>`), broken + "&amp без ; на конце: знак & в тексте пишется &amp;"},
		{doc(`<Наименование>Рога&nbsp;Копыта</Наименование>`), broken + "неизвестная сущность &nbsp; (DTD и внешние сущности не поддерживаются)"},
		{doc(`&#xZZ;`), broken + "неверная ссылка на символ &#x"},
		{doc(`&#1;`), broken + "символ U+0001 недопустим в XML"},
		{doc("\xff"), broken + "байты не в кодировке UTF-8"},
	}
	nop := func(*xnode) error { return nil }
	for _, tt := range tests {
		err := readCommerceML(strings.NewReader(tt.xml), true, cmlSink{document: nop, party: nop, groups: nop, product: nop})
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Errorf("%q: got %v, want a FileError", tt.xml, err)
			continue
		}
		if fe.Reason != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.xml, fe.Reason, tt.want)
		}
	}
}

func TestCSVReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&csv.ParseError{StartLine: 4, Line: 4, Column: 9, Err: csv.ErrBareQuote},
			`кавычка " внутри значения без кавычек: удвойте её ("") или заключите всё значение в кавычки`},
		// A quoted value that holds line breaks: the line of the quote.
		{&csv.ParseError{StartLine: 4, Line: 6, Column: 3, Err: csv.ErrQuote},
			`в строке 6: лишняя или незакрытая кавычка " в значении в кавычках`},
		{errors.New("read failed"), "read failed"},
	}
	for _, tt := range tests {
		if got := csvReason(tt.err); got != tt.want {
			t.Errorf("csvReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
