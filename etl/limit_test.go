package etl

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// repeated yields head, then unit over and over up to total bytes in all,
// without holding them.
type repeated struct {
	head, unit string
	left, read int64
	pos        int
}

func repeat(head, unit string, total int64) *repeated {
	return &repeated{head: head, unit: unit, left: total}
}

func (r *repeated) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.left > 0 {
		var c int
		if r.head != "" {
			c = copy(p[n:], r.head)
			r.head = r.head[c:]
		} else {
			c = copy(p[n:], r.unit[r.pos:])
			r.pos = (r.pos + c) % len(r.unit)
		}
		c = int(min(int64(c), r.left))
		n += c
		r.left -= int64(c)
	}
	r.read += int64(n)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// TestLimits_EndlessInput feeds each reader 64 MiB that never ends its row
// or token: the file fails naming where, having read no more than a few
// MiB of it, and what came before the bad part was read.
func TestLimits_EndlessInput(t *testing.T) {
	const total = 64 << 20
	header := "НомерЧека;НомерСтроки;Дата;Магазин;КодКлиента;КодТовара;Товар;Категория;Количество;Цена;Сумма\n"
	good := "R1;1;01.11.2026 9:05:00;0001;;T1;Молоко;Молочное;1;89,90;89,90\n"
	cml := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.10\">\n"
	tests := []struct {
		name, head, unit string
		xml              bool
		want             string
		rows             int   // rows read before the failure
		maxRead          int64 // bytes read of the input at most
	}{
		{name: "quote left open", head: header + good + "R2;1;01.11.2026;0001;;T1;\"Молоко\n", unit: good,
			want: "строка 3: запись длиннее 1024 КиБ: не закрыта кавычка?", rows: 1, maxRead: 2 << 20},
		{name: "line without end", head: header + good + good, unit: "Молоко ",
			want: "строка 4: запись длиннее 1024 КиБ: не закрыта кавычка?", rows: 2, maxRead: 2 << 20},
		{name: "blank lines", head: header + good, unit: "\r\n",
			want: "после строки 2: больше 1024 КиБ без перевода строки", rows: 1, maxRead: 2 << 20},
		{name: "text without end", xml: true, head: cml + "<Документ>\n<Товары>\n<Товар>\n<Наименование>", unit: "Молоко ",
			want: "строка 6: лексема XML длиннее 2048 КиБ", maxRead: 3 << 20},
		{name: "attribute without end", xml: true, head: cml + "<Документ Номер=\"", unit: "1",
			want: "строка 3: лексема XML длиннее 2048 КиБ", maxRead: 3 << 20},
		{name: "comment without end", xml: true, head: cml + "<!--", unit: "x",
			want: "строка 3: лексема XML длиннее 2048 КиБ", maxRead: 3 << 20},
		{name: "document of long texts", xml: true, head: cml + "<Документ>\n",
			unit: "<Комментарий>" + strings.Repeat("ж", xmlMaxText/2-16) + "</Комментарий>\n",
			want: "строка 20: в <Документ> больше 16 МиБ текста", maxRead: 18 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := repeat(tt.head, tt.unit, total)
			rows := 0
			var err error
			if tt.xml {
				count := func(*xnode) error { rows++; return nil }
				err = readCommerceML(in, true, cmlSink{document: count, party: count, groups: count, product: count})
			} else {
				err = readCSV(in, feeds[FeedPurchases], nil, func(*csvRow) error { rows++; return nil },
					func(e *RowError) error { t.Errorf("row rejected: %v", e); return nil })
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Reason != tt.want {
				t.Fatalf("error %v, want a file error %q", err, tt.want)
			}
			if rows != tt.rows {
				t.Errorf("%d rows read before it, want %d", rows, tt.rows)
			}
			if in.read > tt.maxRead {
				t.Errorf("read %d bytes of the input, want at most %d", in.read, tt.maxRead)
			}
		})
	}
}

// TestBlocker_BoundedBytes: rows long enough end a block before it holds
// maxBlockRows of them.
func TestBlocker_BoundedBytes(t *testing.T) {
	var sizes []int
	n := 0
	b := newBlocker(func([]byte) (bool, error) { return false, nil },
		func(*csvRow) (func() (outcome, error), *RowError) { return nil, nil },
		func(p parsedRow) error {
			n++
			if p.block != nil {
				sizes = append(sizes, n)
				n = 0
			}
			return nil
		}, 0)
	long := strings.Repeat("я", 32<<10) // 64 KiB
	for i := range 300 {
		r := &csvRow{line: i + 2, index: map[string]int{"name": 0}, fields: []string{long}}
		if err := b.row(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.end(); err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes[:len(sizes)-1] {
		if s*len(long) > maxBlockBytes+len(long)+16 {
			t.Fatalf("blocks of %v rows: more than %d bytes held", sizes, maxBlockBytes)
		}
	}
	if len(sizes) < 300*len(long)/maxBlockBytes {
		t.Fatalf("blocks of %v rows: too few for %d bytes", sizes, 300*len(long))
	}
}

// TestLimits_Counts: a file with more tokens outside its documents, or
// more documents, than the limits fails naming the line it got to.
func TestLimits_Counts(t *testing.T) {
	tokens, docs := xmlMaxTokens, xmlMaxDocuments
	t.Cleanup(func() { xmlMaxTokens, xmlMaxDocuments = tokens, docs })
	xmlMaxTokens, xmlMaxDocuments = 1000, 3
	cml := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.10\">\n"
	doc := "<Документ>\n<Роль>Покупатель</Роль>\n</Документ>\n"
	tests := []struct {
		name, in, want string
	}{
		{"tokens", cml + strings.Repeat("<Пусто/>\n", 400) + "</КоммерческаяИнформация>\n",
			"строка 335: больше 1000 лексем XML"},
		{"documents", cml + strings.Repeat(doc, 5) + "</КоммерческаяИнформация>\n",
			"строка 12: больше 3 документов"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &xmlLoad{}
			err := readCommerceML(strings.NewReader(tt.in), true, cmlSink{document: x.document})
			var fe *FileError
			if !errors.As(err, &fe) || fe.Reason != tt.want {
				t.Fatalf("error %v, want a file error %q", err, tt.want)
			}
		})
	}
	// Tokens inside documents count against the documents' own limits.
	if err := readCommerceML(strings.NewReader(cml+strings.Repeat("<Документ>\n"+strings.Repeat("<Роль>Покупатель</Роль>\n", 200)+"</Документ>\n", 3)+
		"</КоммерческаяИнформация>\n"), true, cmlSink{document: (&xmlLoad{}).document}); err != nil {
		t.Fatalf("3 documents of 1,000 tokens and more: %v", err)
	}
}
