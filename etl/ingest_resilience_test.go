package etl_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
	_ "modernc.org/sqlite"
)

// TestIngest_RefreshFailsBeforeLoading: roll-ups that cannot be refreshed
// (here lines written past the loader, whose sums overflow) do not keep
// the next file from loading; the run reports the refresh.
func TestIngest_RefreshFailsBeforeLoading(t *testing.T) {
	in, _ := newIngester(t)
	ctx := context.Background()
	dir := t.TempDir()
	header := "НомерЧека;НомерСтроки;Дата;Магазин;Количество;Сумма\r\n"
	first := filepath.Join(dir, "purchases_1.csv")
	if err := os.WriteFile(first, []byte(header+"R1;1;01.11.2026 10:00:00;0001;1;100,00\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.IngestFiles(ctx, "", []string{first}); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", filepath.Join(filepath.Dir(in.Spool), "otklik.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`INSERT INTO purchase_lines (store_code, receipt, line, at, qty_milli, price_kop, sum_kop, file_id)
			SELECT store_code, 'X', n, at, 1000, 0, 4000000000000000000, file_id
			FROM purchase_lines, (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3)`,
		`INSERT INTO purchase_ranges (first_id, last_id, first_at, last_at)
			SELECT min(id), max(id), min(at), max(at) FROM purchase_lines WHERE receipt = 'X'`,
		`INSERT INTO rollup_dirty (kind, day, mark) SELECT 'sales', at / 86400, 1 FROM purchase_lines LIMIT 1`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	second := filepath.Join(dir, "purchases_2.csv")
	if err := os.WriteFile(second, []byte(header+"R2;1;02.11.2026 10:00:00;0001;1;50,00\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := in.IngestFiles(ctx, "", []string{second})
	if err == nil || !strings.Contains(err.Error(), "integer overflow") {
		t.Errorf("error %v, want the refresh's integer overflow", err)
	}
	if res.Ingested != 1 || res.Loaded != 1 {
		t.Errorf("%+v: want the second file loaded", res)
	}
}

// TestIngest_RejectsListedUpToLimit: of a file whose every row is
// rejected, or loads without a value, all are counted and the first
// 10,000 listed, in the database and in the rejects file, which says how
// many more there were.
func TestIngest_RejectsListedUpToLimit(t *testing.T) {
	tests := []struct {
		name, file, header, row string
		rows                    int
		badConsent              int // customers' rows after them rejected for their consent
		rejected, dropped       int64
		tail                    []string
	}{
		{"rows rejected", "purchases_1.csv", "НомерЧека;НомерСтроки;Дата;Магазин;КодКлиента;Количество;Сумма",
			"R%d;1;2026-11-01T10:00:00+0300;0001;C1;1;100,00", 10005, 0, 10005, 0,
			[]string{"purchases_1.csv;;;отклонено ещё строк: 5 (перечислены первые 10000);нет"}},
		// Cards loaded without their email come first; the last two are
		// rejected for their consent, past the listed 10,000.
		{"values left out", "customers_1.csv", "Код;Email;СогласиеНаРассылку",
			"C%d;ivan,petrov@mail.ru;Да", 10003, 2, 2, 10003,
			[]string{"customers_1.csv;;;отклонено ещё строк: 2 (перечислены первые 10000);нет",
				"customers_1.csv;;;ещё значений, без которых строки загружены: 3 (перечислены первые 10000);да, без этих значений"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, db := newIngester(t)
			ctx := context.Background()
			var b strings.Builder
			b.WriteString(tt.header + "\r\n")
			for i := range tt.rows {
				fmt.Fprintf(&b, tt.row+"\r\n", i)
			}
			for i := range tt.badConsent {
				fmt.Fprintf(&b, "X%d;a@bk.ru;Возможно\r\n", i)
			}
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := in.IngestFiles(ctx, "", []string{path})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rejected != tt.rejected || res.Dropped != tt.dropped {
				t.Errorf("%d rows rejected, %d values left out; want %d, %d", res.Rejected, res.Dropped, tt.rejected, tt.dropped)
			}
			listed := 0
			if err := db.EachReject(ctx, 1, func(store.Reject) error { listed++; return nil }); err != nil {
				t.Fatal(err)
			}
			if listed != 10000 {
				t.Errorf("%d rejects listed, want 10000", listed)
			}
			lines := strings.Split(strings.TrimSpace(string(rejectsFile(t, in, "*"+tt.file))), "\r\n")
			if tail := lines[min(len(lines), 1+10000):]; len(lines) != 1+10000+len(tt.tail) || fmt.Sprint(tail) != fmt.Sprint(tt.tail) {
				t.Errorf("%d lines in the rejects file, after the listed %q", len(lines), tail)
			}
		})
	}
}

// TestIngest_AbsentColumnNotedOnce: a customers file without the consent
// column loads, says so once at its header's line, and says it once
// still when its load is cut off after a batch and goes on at the next
// run.
func TestIngest_AbsentColumnNotedOnce(t *testing.T) {
	in, db := newIngester(t)
	var b strings.Builder
	b.WriteString("Код;ФИО;Email\r\n")
	const cards = 100000
	for i := range cards {
		fmt.Fprintf(&b, "C%d;Иванов;ivan%d@bk.ru\r\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for ctx.Err() == nil {
			var n int
			raw.QueryRow(`SELECT count(*) FROM files WHERE checkpoint > 1`).Scan(&n)
			if n > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, err := in.IngestFiles(ctx, "", []string{path}); err == nil {
		t.Fatal("the load was not cut off")
	}
	res, err := in.IngestFiles(context.Background(), "", []string{path})
	if err != nil {
		t.Fatal(err)
	}
	var loaded, dropped, notes int
	raw.QueryRow(`SELECT rows_loaded, values_dropped FROM files`).Scan(&loaded, &dropped)
	raw.QueryRow(`SELECT count(*) FROM rejects WHERE line = 1 AND kept AND field = 'СогласиеНаРассылку'`).Scan(&notes)
	if res.Ingested != 1 || loaded != cards || dropped != 1 || notes != 1 {
		t.Fatalf("res %+v; %d cards loaded, %d values dropped, %d notes of the consent column; want %d, 1, 1", res, loaded, dropped, notes, cards)
	}
}
