package etl

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// FeedOrders is CommerceML XML: documents of sales and orders, customers,
// and catalogs whose groups give the product categories.
const FeedOrders = "orders"

// Limits of a CommerceML file, so that a hostile or broken file cannot
// exhaust memory: elements are read as a stream, and only one document,
// customer, product or group tree is held at a time.
const (
	xmlMaxDepth = 64
	xmlMaxNodes = 200000   // in one document or group tree
	xmlMaxText  = 1 << 20  // bytes of one element's text
	xmlMaxTree  = 16 << 20 // bytes of text and attributes in one document or group tree
	xmlMaxToken = 2 << 20  // bytes of input one token may span (a text, a tag, a comment)
)

// Limits on counts, which bound a file's time rather than memory; tests
// lower them. Tokens are counted outside the items (inside one, its own
// limits hold).
var (
	xmlMaxTokens    = 50000000
	xmlMaxDocuments = 1000000
)

// xnode is an element read into memory, by local name: namespaces and
// schema versions differ between exports, the names do not.
type xnode struct {
	line  int // of its start tag
	name  string
	attrs map[string]string
	text  strings.Builder
	kids  []*xnode
}

func (n *xnode) child(name string) *xnode {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (n *xnode) children(name string) []*xnode {
	if n == nil {
		return nil
	}
	var out []*xnode
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

// get returns the trimmed text of a path of children, "" if missing.
func (n *xnode) get(path ...string) string {
	for _, p := range path {
		n = n.child(p)
	}
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.text.String())
}

// cmlSink receives what a CommerceML file holds, one piece at a time.
type cmlSink struct {
	document func(*xnode) error // each Документ
	party    func(*xnode) error // a Контрагент listed under the root
	groups   func(*xnode) error // a catalog's Классификатор/Группы tree
	product  func(*xnode) error // each Каталог/Товары/Товар
}

// readCommerceML streams a CommerceML 2.x or 3.x file. isUTF8 says what
// the bytes are: 1C keeps encoding="windows-1251" in the declaration of
// files it re-encoded to UTF-8, so the bytes decide, not the declaration.
func readCommerceML(r io.Reader, isUTF8 bool, sink cmlSink) error {
	br := bufio.NewReaderSize(r, sniffBytes)
	// A read error here comes back from the decoder's first read.
	head, _ := br.Peek(sniffBytes)
	if !isUTF8 {
		// Decoded, so that the position counts characters; control
		// characters are the same bytes in both.
		head, _ = charmap.Windows1251.NewDecoder().Bytes(head)
	}
	if why := notText(head, true, "в XML недопустим: двоичные данные или повреждённый файл"); why != "" {
		return &FileError{Reason: why}
	}
	d := &cmlDecoder{lim: newRunLimit(br, xmlMaxToken)}
	d.Decoder = xml.NewDecoder(d.lim)
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		if isUTF8 {
			return in, nil
		}
		return charmap.Windows1251.NewDecoder().Reader(in), nil
	}
	var stack []string
	tokens := 0
	sawRoot := false
	for {
		tok, err := d.token()
		if errors.Is(err, io.EOF) {
			if !sawRoot {
				return &FileError{Reason: "нет ни одного элемента XML: файл пуст или это не XML"}
			}
			return nil
		}
		if err != nil {
			return xmlError(d, err)
		}
		if tokens++; tokens > xmlMaxTokens {
			return &FileError{Reason: fmt.Sprintf("строка %d: больше %d лексем XML", line(d), xmlMaxTokens)}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if len(stack) == 0 {
				sawRoot = true
				if name != "КоммерческаяИнформация" {
					return &FileError{Reason: fmt.Sprintf("корневой элемент <%s>, а не <КоммерческаяИнформация>: это не CommerceML", name)}
				}
			}
			if len(stack) >= xmlMaxDepth {
				return &FileError{Reason: fmt.Sprintf("строка %d: вложенность элементов глубже %d", line(d), xmlMaxDepth)}
			}
			parent, grand := at(stack, 1), at(stack, 2)
			var fn func(*xnode) error
			switch {
			case name == "Документ":
				if attr(t, "ХозОперация") != "" {
					return &FileError{Reason: "CommerceML 1.x (1С:Предприятие 7.7, данные в атрибутах) не поддерживается: выгружайте CommerceML 2 или CSV"}
				}
				fn = sink.document
			case name == "Контрагент" && parent == "Контрагенты" && len(stack) == 2:
				fn = sink.party
			case name == "Группы" && parent == "Классификатор":
				fn = sink.groups
			case name == "Товар" && parent == "Товары" && grand == "Каталог":
				fn = sink.product
			}
			if fn != nil {
				n, err := readTree(d, t, len(stack))
				if err != nil {
					return err
				}
				if err := fn(n); err != nil {
					return err
				}
				continue
			}
			stack = append(stack, name)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
}

func at(stack []string, back int) string {
	if len(stack) < back {
		return ""
	}
	return stack[len(stack)-back]
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// cmlDecoder is an xml.Decoder whose tokens each span at most xmlMaxToken
// bytes of input: encoding/xml holds a whole token in memory, however long.
type cmlDecoder struct {
	*xml.Decoder
	lim *runLimit
}

func (d *cmlDecoder) token() (xml.Token, error) {
	start := line(d)
	tok, err := d.Token()
	if d.lim.tripped {
		return nil, &FileError{Reason: fmt.Sprintf("строка %d: лексема XML длиннее %d КиБ", start, xmlMaxToken>>10)}
	}
	d.lim.mark()
	return tok, err
}

func line(d interface{ InputPos() (int, int) }) int {
	l, _ := d.InputPos()
	return l
}

func xmlError(d *cmlDecoder, err error) error {
	var fe *FileError
	if errors.As(err, &fe) {
		return err
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return &FileError{Reason: fmt.Sprintf("строка %d: XML повреждён: %s", se.Line, syntaxReason(se.Msg))}
	}
	// An XML version other than 1.0 is the one such error a file causes
	// that encoding/xml does not give as a SyntaxError.
	return &FileError{Reason: fmt.Sprintf("строка %d: %s", line(d), syntaxReason(err.Error()))}
}

// syntaxReason says in Russian what encoding/xml's message says: each
// message a file can cause (etl's TestXMLReasons makes every one of them
// happen). An unknown message stays as it is.
func syntaxReason(msg string) string {
	if ru, ok := syntaxExact[msg]; ok {
		return ru
	}
	if ru, ok := closedBy(msg); ok {
		return ru
	}
	if ent, ok := strings.CutPrefix(msg, "invalid character entity "); ok {
		return entityReason(ent)
	}
	for _, m := range syntaxPatterns {
		if rest, ok := strings.CutPrefix(msg, m.en); ok {
			if rest, ok := strings.CutSuffix(rest, m.suffix); ok {
				return fmt.Sprintf(m.ru, rest)
			}
		}
	}
	return msg
}

var syntaxExact = map[string]string{
	"unexpected EOF":                                 "файл обрывается посреди XML: он обрезан",
	"unexpected EOF in CDATA section":                "файл обрывается посреди CDATA: он обрезан",
	"invalid UTF-8":                                  "байты не в кодировке UTF-8",
	"unescaped < inside quoted string":               "знак < в значении атрибута: нужно &lt;",
	"expected element name after <":                  "после < нет имени элемента: знак < в тексте? нужно &lt;",
	"expected element name after </":                 "после </ нет имени элемента",
	"expected target name after <?":                  "после <? нет имени инструкции",
	"invalid sequence <!- not part of <!--":          "<!- не начинает комментарий: нужно <!--",
	`invalid sequence "--" not allowed in comments`:  "два дефиса подряд внутри комментария",
	"invalid <![ sequence":                           "<![ без CDATA[: секция CDATA начинается с <![CDATA[",
	"expected /> in element":                         "после / в теге нет >",
	"expected attribute name in element":             "в теге посторонний знак вместо имени атрибута",
	"attribute name without = in element":            "у атрибута в теге нет = и значения",
	"unquoted or missing attribute value in element": "значение атрибута без кавычек или пропущено",
	"unescaped ]]> not in CDATA section":             "]]> в тексте вне CDATA: нужно ]]&gt;",
}

// syntaxPatterns: what lies between en and suffix is the %s.
var syntaxPatterns = []struct{ en, suffix, ru string }{
	{"unexpected end element ", "", "лишний закрывающий тег %s"},
	{"illegal character code ", "", "символ %s недопустим в XML"},
	{"invalid characters between ", " and >", "в закрывающем теге %s> лишние знаки после имени"},
	{"invalid XML name: ", "", "недопустимое имя в XML: %s"},
	{"xml: unsupported version ", "; only version 1.0 is supported", "версия XML %s не поддерживается, только 1.0"},
}

// closedBy says "element <a> closed by </b>" in Russian. When only the
// namespace prefixes differ, encoding/xml adds " in space p" after each
// tag: said as <p:a>.
func closedBy(msg string) (string, bool) {
	open, close, ok := strings.Cut(msg, " closed by ")
	open, isElement := strings.CutPrefix(open, "element ")
	if !ok || !isElement {
		return "", false
	}
	prefixed := func(tag string) string {
		tag, space, ok := strings.Cut(tag, " in space ")
		if !ok || space == `""` {
			return tag
		}
		lt := "<"
		if strings.HasPrefix(tag, "</") {
			lt = "</"
		}
		return lt + space + ":" + strings.TrimPrefix(tag, lt)
	}
	return "элемент " + prefixed(open) + " закрыт тегом " + prefixed(close), true
}

// entityReason says what is wrong with an entity encoding/xml could not
// read: most often a bare & in a name ("Рога & Копыта") that the program
// which wrote the file did not escape.
func entityReason(ent string) string {
	name, noSemicolon := strings.CutSuffix(ent, " (no semicolon)")
	switch {
	case name == "&":
		return "знак & в тексте: нужно &amp;"
	case strings.HasPrefix(name, "&#"):
		return "неверная ссылка на символ " + name
	case noSemicolon:
		return name + " без ; на конце: знак & в тексте пишется &amp;"
	default:
		return "неизвестная сущность " + name + " (DTD и внешние сущности не поддерживаются)"
	}
}

// readTree reads the element that start opened into memory, within the
// limits.
func readTree(d *cmlDecoder, start xml.StartElement, depth int) (*xnode, error) {
	root := &xnode{name: start.Name.Local, line: line(d)}
	size := 0 // bytes of text and attributes held
	for _, a := range start.Attr {
		if root.attrs == nil {
			root.attrs = map[string]string{}
		}
		root.attrs[a.Name.Local] = a.Value
		size += len(a.Name.Local) + len(a.Value)
	}
	stack := []*xnode{root}
	nodes := 1
	for len(stack) > 0 {
		tok, err := d.token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, &FileError{Reason: fmt.Sprintf("файл кончается внутри <%s>: он обрезан", stack[len(stack)-1].name)}
			}
			return nil, xmlError(d, err)
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if nodes++; nodes > xmlMaxNodes {
				return nil, &FileError{Reason: fmt.Sprintf("строка %d: в <%s> больше %d элементов", line(d), root.name, xmlMaxNodes)}
			}
			if depth+len(stack) >= xmlMaxDepth {
				return nil, &FileError{Reason: fmt.Sprintf("строка %d: вложенность элементов глубже %d", line(d), xmlMaxDepth)}
			}
			n := &xnode{name: t.Name.Local}
			top.kids = append(top.kids, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if top.text.Len()+len(t) > xmlMaxText {
				return nil, &FileError{Reason: fmt.Sprintf("строка %d: текст <%s> длиннее %d байт", line(d), top.name, xmlMaxText)}
			}
			if size += len(t); size > xmlMaxTree {
				return nil, &FileError{Reason: fmt.Sprintf("строка %d: в <%s> больше %d МиБ текста", line(d), root.name, xmlMaxTree>>20)}
			}
			top.text.Write(t)
		}
	}
	return root, nil
}

// norm folds a CommerceML enumeration value for comparison: case, spaces
// and the Latin C that 1C's own schema writes in "CчетНаОплату".
func norm(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	return strings.ReplaceAll(s, "c", "с")
}

// clean trims a name and undoes the double escaping some exports carry
// ("Телевизор &amp;quot;JVC&amp;quot;").
func clean(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if strings.Contains(s, "&") {
		s = html.UnescapeString(s)
	}
	return s
}

// placeholders are shared buyers of web shops, not people: their
// purchases load as anonymous and are never surveyed.
var placeholders = []string{"покупатель через интернет-магазин", "розничный покупатель", "частное лицо"}

func isPlaceholder(party *xnode) bool {
	for _, s := range []string{party.get("Ид"), party.get("Наименование"), party.get("ПолноеНаименование")} {
		s = strings.ToLower(s)
		for _, p := range placeholders {
			if strings.Contains(s, p) {
				return true
			}
		}
	}
	return false
}

// partyName is the best name a counterparty has.
func partyName(p *xnode) string {
	for _, k := range []string{"Наименование", "ПолноеНаименование", "ОфициальноеНаименование"} {
		if v := clean(p.get(k)); v != "" {
			return v
		}
	}
	return clean(strings.Join([]string{p.get("Фамилия"), p.get("Имя"), p.get("Отчество")}, " "))
}

// contacts returns a counterparty's first valid email and phone, and, of
// each kind without a valid one, why its first value was left out (at
// line, where the counterparty's element starts).
func contacts(p *xnode, line int) (email, phone string, dropped []*RowError) {
	var badEmail, badPhone *RowError
	for _, c := range p.child("Контакты").children("Контакт") {
		typ, val := strings.ToLower(c.get("Тип")), c.get("Значение")
		var err error
		var bad **RowError
		switch {
		case strings.Contains(typ, "почта") && email == "":
			email, err = contactValue(val, normalizeEmail, emailMark)
			bad = &badEmail
		case strings.HasPrefix(typ, "телефон") && phone == "":
			phone, err = contactValue(val, normalizePhone, phoneMark)
			bad = &badPhone
		}
		if err != nil && *bad == nil {
			*bad = &RowError{Line: line, Field: "Контрагент " + p.get("Ид") + "/Контакт " + c.get("Тип"), Reason: err.Error()}
		}
	}
	if email == "" && badEmail != nil {
		dropped = append(dropped, badEmail)
	}
	if phone == "" && badPhone != nil {
		dropped = append(dropped, badPhone)
	}
	return email, phone, dropped
}
