package etl

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// parseFile reads a fixture the way ingest does and describes every row,
// reject and file error, one per line.
func parseFile(tb testing.TB, path, feedName string) string {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var u utf8Checker
	u.Write(raw)
	r, err := decoder(bytes.NewReader(raw), u.Encoding())
	if err != nil {
		tb.Fatal(err)
	}
	moscow, _ := time.LoadLocation("Europe/Moscow")
	yekat, _ := time.LoadLocation("Asia/Yekaterinburg")
	zone := func(code string) *time.Location {
		if code == "0004" {
			return yekat
		}
		return moscow
	}
	var out strings.Builder
	fmt.Fprintf(&out, "encoding %s\n", u.Encoding())
	bad := func(e *RowError) error {
		fmt.Fprintf(&out, "reject %s\n", e)
		return nil
	}
	row := func(cr *csvRow) error {
		var rec any
		var rerr *RowError
		switch feedName {
		case FeedStores:
			rec, rerr = parseStore(cr)
		case FeedCustomers:
			c, dropped, e := parseCustomer(cr)
			for _, d := range dropped {
				fmt.Fprintf(&out, "dropped %s\n", d)
			}
			rec, rerr = c, e
		case FeedPurchases:
			p, e := parsePurchase(cr, zone, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
			p.At = p.At.UTC()
			rec, rerr = p, e
		}
		if rerr != nil {
			return bad(rerr)
		}
		fmt.Fprintf(&out, "line %d %s\n", cr.line, exported(rec))
		return nil
	}
	if err := readCSV(r, feeds[feedName], nil, row, bad); err != nil {
		fmt.Fprintf(&out, "file error: %v\n", err)
	}
	return out.String()
}

// exported prints a struct as %+v does, its unexported fields left out.
func exported(v any) string {
	rv := reflect.ValueOf(v)
	var fields []string
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.IsExported() {
			fields = append(fields, fmt.Sprintf("%s:%+v", f.Name, rv.Field(i).Interface()))
		}
	}
	return "{" + strings.Join(fields, " ") + "}"
}

func TestReadCSV_Golden(t *testing.T) {
	paths, err := filepath.Glob("../testdata/csv/*/*.csv")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range paths {
		feedName := filepath.Base(filepath.Dir(path))
		t.Run(feedName+"/"+filepath.Base(path), func(t *testing.T) {
			got := parseFile(t, path, feedName)
			golden := strings.TrimSuffix(path, ".csv") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./etl -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from golden:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

func TestDetectDelimiter(t *testing.T) {
	for _, tc := range []struct {
		line string
		want rune
	}{
		{"Код;Наименование;Город", ';'},
		{"code,name,city", ','},
		{"code\tname\tcity", '\t'},
		{`"a,b";c;d`, ';'},
		{"single", ';'},
	} {
		if got := detectDelimiter([]byte(tc.line)); got != tc.want {
			t.Errorf("detectDelimiter(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestUTF8Checker_SplitRunes(t *testing.T) {
	text := []byte("Иванов Пётр")
	for split := range len(text) {
		var u utf8Checker
		u.Write(text[:split])
		u.Write(text[split:])
		if got := u.Encoding(); got != EncodingUTF8 {
			t.Fatalf("split at %d: %s, want utf-8", split, got)
		}
	}
	var u utf8Checker
	u.Write([]byte{0xc8, 0xe2, 0xe0, 0xed}) // "Иван" in Windows-1251
	if got := u.Encoding(); got != EncodingCP1251 {
		t.Fatalf("cp1251 bytes: %s", got)
	}
	var trunc utf8Checker
	trunc.Write([]byte("ok\xd0"))
	if got := trunc.Encoding(); got != EncodingCP1251 {
		t.Fatalf("truncated rune at the end: %s, want windows-1251", got)
	}
}
