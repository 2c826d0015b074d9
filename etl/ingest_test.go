package etl_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/store"
)

func newIngester(tb testing.TB) (*etl.Ingester, *store.DB) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	msk, _ := time.LoadLocation("Europe/Moscow")
	return &etl.Ingester{DB: db, Spool: filepath.Join(dir, "spool"), Zone: msk, BatchSize: 100}, db
}

// rejectsFile reads the one rejects file in the spool's archive beside a
// copy named by the glob name.
func rejectsFile(tb testing.TB, in *etl.Ingester, name string) []byte {
	tb.Helper()
	found, _ := filepath.Glob(filepath.Join(in.Spool, "archive", "*", "*", name+".rejects.csv"))
	if len(found) != 1 {
		tb.Fatalf("rejects files %s: %v", name, found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func status(tb testing.TB, db *store.DB) store.Status {
	tb.Helper()
	s, err := db.Status(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestIngester_SampleDropOnce(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	drop := t.TempDir()
	sum, err := sample.Write(drop, sample.Options{Now: time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC), Customers: 200, Days: 5, Receipts: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	spec := etl.SourceSpec{Name: "office", Source: &etl.Local{Dir: drop}}
	res, err := in.Run(ctx, []etl.SourceSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Ingested, len(sum.Files); got != want {
		t.Fatalf("ingested %d files, want %d", got, want)
	}
	if got, want := res.Rejected, int64(sum.BadRows); got != want {
		t.Fatalf("rejected %d rows, want %d", got, want)
	}
	s := status(t, db)
	if got, want := s.PurchaseLines, int64(sum.Lines); got != want {
		t.Fatalf("purchase lines = %d, want %d", got, want)
	}
	if got, want := s.Purchases, int64(sum.Receipts); got != want {
		t.Fatalf("purchases = %d, want %d", got, want)
	}
	if got, want := s.Customers, int64(sum.Customers); got != want {
		t.Fatalf("customers = %d, want %d", got, want)
	}
	if s.Stores != int64(len(sample.Stores)) {
		t.Fatalf("stores = %d", s.Stores)
	}

	// A second run over the same folder takes nothing.
	res, err = in.Run(ctx, []etl.SourceSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested+res.Failed+res.SkippedDuplicate+res.SourceErrors != 0 || res.Loaded+res.Duplicate+res.Rejected != 0 {
		t.Fatalf("second run did something: %+v", res)
	}

	// The same bytes under another name are skipped as a whole.
	last := filepath.Join(drop, sum.Files[len(sum.Files)-1])
	body, _ := os.ReadFile(last)
	os.WriteFile(filepath.Join(drop, "sales_copy.csv"), body, 0o644)
	// An export overlapping a loaded one adds only duplicates.
	os.WriteFile(filepath.Join(drop, "purchases_again.csv"), append(body, "\r\n"...), 0o644)
	res, err = in.Run(ctx, []etl.SourceSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedDuplicate != 1 || res.Ingested != 1 || res.Loaded != 0 || res.Duplicate == 0 {
		t.Fatalf("re-delivery: %+v, want 1 skipped file and 1 file of duplicates", res)
	}
	if after := status(t, db); after.PurchaseLines != s.PurchaseLines {
		t.Fatalf("purchase lines changed from %d to %d", s.PurchaseLines, after.PurchaseLines)
	}
}

func TestIngester_NotReadyAndUnsafe(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	now := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	in.Now = func() time.Time { return now }
	drop := t.TempDir()
	path := filepath.Join(drop, "stores.csv")
	os.WriteFile(path, []byte("Код;Наименование\r\n1;Один\r\n"), 0o644)
	os.Chtimes(path, now.Add(-10*time.Second), now.Add(-10*time.Second))
	spec := etl.SourceSpec{Name: "office", Source: &etl.Local{Dir: drop}, Ready: etl.Readiness{MinAge: time.Minute}}
	res, err := in.Run(ctx, []etl.SourceSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 0 {
		t.Fatalf("took a file 10s old with min_age 1m")
	}
	now = now.Add(time.Minute)
	if res, err = in.Run(ctx, []etl.SourceSpec{spec}); err != nil || res.Ingested != 1 {
		t.Fatalf("after a minute: %+v %v", res, err)
	}
	if got := status(t, db).Stores; got != 1 {
		t.Fatalf("stores = %d", got)
	}
	if _, err := (&etl.Local{Dir: drop}).Open(ctx, "../etc/passwd", 0); err == nil {
		t.Fatal("opened a name with a path")
	}
}

func TestIngester_BadFileFailsOnce(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	drop := t.TempDir()
	os.WriteFile(filepath.Join(drop, "customers.csv"), []byte("ФИО;Email\r\nИванов;i@mail.ru\r\n"), 0o644)
	os.WriteFile(filepath.Join(drop, "stores.csv"), []byte("Код\r\n1\r\n"), 0o644)
	spec := etl.SourceSpec{Name: "office", Source: &etl.Local{Dir: drop}}
	for range 2 {
		if _, err := in.Run(ctx, []etl.SourceSpec{spec}); err != nil {
			t.Fatal(err)
		}
	}
	s := status(t, db)
	if s.Files.Failed != 1 || s.Files.Ingested != 1 {
		t.Fatalf("files = %+v, want 1 failed (once) and 1 ingested", s.Files)
	}
}

func TestIngester_MissingSourceDoesNotStopOthers(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	drop := t.TempDir()
	os.WriteFile(filepath.Join(drop, "stores.csv"), []byte("Код\r\n1\r\n"), 0o644)
	res, err := in.Run(ctx, []etl.SourceSpec{
		{Name: "gone", Source: &etl.Local{Dir: filepath.Join(drop, "missing")}},
		{Name: "office", Source: &etl.Local{Dir: drop}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SourceErrors != 1 || res.Ingested != 1 || status(t, db).Stores != 1 {
		t.Fatalf("res = %+v", res)
	}
}

// TestIngester_Columns: a source whose 1C names columns its own way loads
// through its columns mapping, and rejects name its headers.
func TestIngester_Columns(t *testing.T) {
	ctx := context.Background()
	body := "НомерДокумента;НомерСтроки;Дата;Магазин;КодКлиента;Количество;СуммаСоСкидкой\r\n" +
		"R1;1;01.11.2026 10:00:00;0001;C1;1;100,00\r\n" +
		"R2;1;01.11.2026 10:05:00;0001;C2;1;сто\r\n"
	cols := map[string]map[string]string{etl.FeedPurchases: {"receipt": "НомерДокумента", "sum": "Сумма со скидкой"}}
	for _, tc := range []struct {
		name    string
		columns map[string]map[string]string
		want    etl.Result
	}{
		{"defaults", nil, etl.Result{Failed: 1}},
		{"mapped", cols, etl.Result{Ingested: 1, Loaded: 1, Rejected: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, db := newIngester(t)
			drop := t.TempDir()
			os.WriteFile(filepath.Join(drop, "purchases_20261101.csv"), []byte(body), 0o644)
			res, err := in.Run(ctx, []etl.SourceSpec{{Name: "office", Source: &etl.Local{Dir: drop}, Columns: tc.columns}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ingested != tc.want.Ingested || res.Failed != tc.want.Failed || res.Loaded != tc.want.Loaded || res.Rejected != tc.want.Rejected {
				t.Fatalf("res = %+v, want %+v", res, tc.want)
			}
			if tc.columns == nil {
				return
			}
			rej, err := db.Rejects(ctx, 10)
			if err != nil || len(rej) != 1 || rej[0].Line != 3 || rej[0].Field != "Сумма со скидкой" {
				t.Fatalf("rejects = %+v, %v; want line 3, field Сумма со скидкой", rej, err)
			}
		})
	}
}

func TestIngestFiles(t *testing.T) {
	ctx := context.Background()
	in, _ := newIngester(t)
	res, err := in.IngestFiles(ctx, etl.FeedStores, []string{"../testdata/csv/stores/cp1251_crlf.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 1 || res.Loaded != 2 || res.Rejected != 3 {
		t.Fatalf("res = %+v", res)
	}
	// The rejects lie beside the archived copy, for Excel.
	b := rejectsFile(t, in, "*cp1251_crlf.csv")
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	if len(lines) != 4 || lines[0] != "\ufeffФайл;Строка;Поле;Причина;Строка загружена" ||
		!strings.HasPrefix(lines[1], "cp1251_crlf.csv;4;") || !strings.HasPrefix(lines[3], "cp1251_crlf.csv;6;") {
		t.Fatalf("rejects.csv:\n%s", b)
	}
	bad := filepath.Join(t.TempDir(), "stores_nocode.csv")
	os.WriteFile(bad, []byte("Наименование\r\nХофф\r\n"), 0o644)
	if res, err := in.IngestFiles(ctx, etl.FeedStores, []string{bad}); err != nil || res.Failed != 1 {
		t.Fatalf("a file without its key column: %+v %v", res, err)
	}
	if b = rejectsFile(t, in, "*stores_nocode.csv"); !strings.Contains(string(b), "stores_nocode.csv;;;файл не загружен: ") {
		t.Fatalf("rejects.csv of a failed file:\n%s", b)
	}
	if _, err := in.IngestFiles(ctx, "", []string{"../testdata/csv/purchases/empty.csv"}); err == nil {
		t.Fatal("a file matching no feed was accepted")
	}
	// The roll-ups are up to date once the files are in.
	if _, err := in.IngestFiles(ctx, etl.FeedPurchases, []string{"../testdata/csv/purchases/tab_lf.csv"}); err != nil {
		t.Fatal(err)
	}
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, in.Zone)
	sales, err := in.DB.MonthlySales(ctx, nov, nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sales["2026-11"]; len(got) != 1 || got[0].Category != "Кухни" || got[0].RevenueKop != 1836000 {
		t.Fatalf("November's sales from the roll-ups = %+v, want the Кухни line", got)
	}
}

func TestIngester_Readiness(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	body := []byte("Код\r\n1\r\n")
	for _, tc := range []struct {
		name  string
		ready etl.Readiness
		files []string
		steps []time.Duration // runs at these offsets; growing the file before the second
		want  []int           // files ingested after each run
	}{
		{"marker", etl.Readiness{MarkerSuffixes: []string{".done", ".ok"}}, []string{"stores.csv"}, nil, nil},
		{"drop marker", etl.Readiness{DropMarker: "READY"}, []string{"stores.csv"}, nil, nil},
		{"temporary name", etl.Readiness{}, []string{"stores.csv.part", ".stores.csv"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, _ := newIngester(t)
			in.Now = func() time.Time { return now }
			drop := t.TempDir()
			for _, f := range tc.files {
				writeAt(t, filepath.Join(drop, f), body, now.Add(-time.Hour))
			}
			spec := etl.SourceSpec{Name: "s", Source: &etl.Local{Dir: drop}, Ready: tc.ready}
			res, err := in.Run(ctx, []etl.SourceSpec{spec})
			if err != nil || res.Ingested != 0 {
				t.Fatalf("without its marker: %+v %v", res, err)
			}
			switch tc.name {
			case "marker":
				os.WriteFile(filepath.Join(drop, "stores.csv.ok"), nil, 0o644)
			case "drop marker":
				os.WriteFile(filepath.Join(drop, "READY"), nil, 0o644)
			default:
				return
			}
			if res, err = in.Run(ctx, []etl.SourceSpec{spec}); err != nil || res.Ingested != 1 {
				t.Fatalf("with the marker: %+v %v", res, err)
			}
		})
	}
	t.Run("growing file", func(t *testing.T) {
		in, _ := newIngester(t)
		clock := now
		in.Now = func() time.Time { return clock }
		in.DB.Now = in.Now
		drop := t.TempDir()
		path := filepath.Join(drop, "stores.csv")
		writeAt(t, path, body, now.Add(-time.Hour))
		spec := etl.SourceSpec{Name: "s", Source: &etl.Local{Dir: drop}, Ready: etl.Readiness{StableFor: time.Minute}}
		run := func() int {
			res, err := in.Run(ctx, []etl.SourceSpec{spec})
			if err != nil {
				t.Fatal(err)
			}
			return res.Ingested
		}
		if run() != 0 {
			t.Fatal("taken on the first listing")
		}
		clock = clock.Add(time.Minute)
		writeAt(t, path, append(body, "2\r\n"...), clock.Add(-time.Second)) // still being written
		if run() != 0 {
			t.Fatal("taken while growing")
		}
		clock = clock.Add(30 * time.Second)
		if run() != 0 {
			t.Fatal("taken before a minute of stability")
		}
		clock = clock.Add(31 * time.Second)
		if run() != 1 {
			t.Fatal("not taken after a minute of stability")
		}
	})
}

func TestIngester_SpoolArchivedAndSwept(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	now := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	in.Now = func() time.Time { return now }
	db.Now = in.Now
	in.KeepDays = 7
	drop := t.TempDir()
	writeAt(t, filepath.Join(drop, "stores.csv"), []byte("Код;ЧасовойПояс\r\n1;\r\n2;Марс\r\n"), now.Add(-time.Hour))
	if _, err := in.Run(ctx, []etl.SourceSpec{{Name: "s", Source: &etl.Local{Dir: drop}}}); err != nil {
		t.Fatal(err)
	}
	gz, _ := filepath.Glob(filepath.Join(in.Spool, "archive", "s", "2026-11-02", "*_stores.csv.gz"))
	raw, _ := filepath.Glob(filepath.Join(in.Spool, "archive", "s", "2026-11-02", "*_stores.csv"))
	if len(gz) != 1 || len(raw) != 0 {
		t.Fatalf("spool: gz %v raw %v", gz, raw)
	}
	rejected := func() []string {
		t.Helper()
		rs, err := db.Rejects(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, r := range rs {
			files = append(files, r.File)
		}
		return files
	}
	if got := rejected(); len(got) != 1 {
		t.Fatalf("rejects %v, want the bad time zone's", got)
	}
	// A week later a new file's rejects come; the next day the first
	// file's copy and rejects go, the new one's stay.
	now = now.AddDate(0, 0, 7)
	writeAt(t, filepath.Join(drop, "stores_2.csv"), []byte("Код;ЧасовойПояс\r\n3;Луна\r\n"), now.Add(-time.Hour))
	if _, err := in.Run(ctx, []etl.SourceSpec{{Name: "s", Source: &etl.Local{Dir: drop}}}); err != nil {
		t.Fatal(err)
	}
	if got := rejected(); len(got) != 2 {
		t.Fatalf("rejects %v, want both files'", got)
	}
	now = now.AddDate(0, 0, 1)
	if _, err := in.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(in.Spool, "archive", "s", "2026-11-02")); !os.IsNotExist(err) {
		t.Fatalf("old spool day kept: %v", err)
	}
	if got := rejected(); len(got) != 1 || got[0] != "stores_2.csv" {
		t.Fatalf("rejects after the sweep %v, want stores_2.csv's alone", got)
	}
}

// writeAt writes a file with the given modification time.
func writeAt(tb testing.TB, path string, data []byte, mtime time.Time) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		tb.Fatal(err)
	}
}

// listing is a Source that lists whatever names a hostile server sends.
type listing struct {
	etl.Local
	names []string
}

func (l *listing) List(ctx context.Context) ([]etl.Entry, error) {
	var out []etl.Entry
	for _, n := range l.names {
		out = append(out, etl.Entry{Name: n, Size: 1, ModTime: time.Now().Add(-time.Hour)})
	}
	return out, nil
}

func TestIngester_RefusesUnsafeNames(t *testing.T) {
	in, db := newIngester(t)
	var logs strings.Builder
	in.Log = slog.New(slog.NewTextHandler(&logs, nil))
	src := &listing{names: []string{"../stores.csv", "/etc/stores.csv", "stores\n.csv", `..\stores.csv`}}
	res, err := in.Run(context.Background(), []etl.SourceSpec{{Name: "evil", Source: src}})
	if err != nil || res.Ingested+res.Failed != 0 {
		t.Fatalf("res = %+v, %v", res, err)
	}
	if got := strings.Count(logs.String(), "refused file name"); got != 4 {
		t.Fatalf("%d refusals logged, want 4:\n%s", got, logs.String())
	}
	if entries, _ := os.ReadDir(filepath.Join(in.Spool, "tmp")); len(entries) != 0 {
		t.Fatalf("spool got %v", entries)
	}
	if s := status(t, db); s.Files.Ingested+s.Files.Failed != 0 {
		t.Fatal(s.Files)
	}
}

// TestIngestFiles_RowCutOff: a quote left open before a megabyte of rows
// fails the file at the row it opened on; the rows before it stay loaded
// and the rejects file says so.
func TestIngestFiles_RowCutOff(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	var b strings.Builder
	b.WriteString("НомерЧека;НомерСтроки;Дата;Магазин;КодКлиента;КодТовара;Товар;Категория;Количество;Цена;Сумма\r\n")
	b.WriteString("R1;1;01.11.2026;0001;;T1;Молоко;Молочное;1;89,90;89,90\r\n")
	b.WriteString("R1;2;01.11.2026;0001;;T2;Хлеб;Хлеб;1;45,00;45,00\r\n")
	b.WriteString("R2;1;01.11.2026;0001;;T1;\"Молоко;Молочное;1;89,90;89,90\r\n")
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "R%d;1;01.11.2026;0001;;T1;Молоко;Молочное;1;89,90;89,90\r\n", i+3)
	}
	path := filepath.Join(t.TempDir(), "purchases_open_quote.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := in.IngestFiles(ctx, etl.FeedPurchases, []string{path})
	if err != nil || res.Failed != 1 {
		t.Fatalf("res = %+v, err %v: want the file failed", res, err)
	}
	if s := status(t, db); s.PurchaseLines != 2 {
		t.Fatalf("%d purchase lines, want the 2 before the row cut off", s.PurchaseLines)
	}
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, in.Zone)
	sales, err := in.DB.MonthlySales(ctx, nov, nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	var revenue int64
	for _, s := range sales["2026-11"] {
		revenue += s.RevenueKop
	}
	if revenue != 8990+4500 {
		t.Fatalf("November's revenue in the roll-ups %d kopecks, want the 2 lines' %d", revenue, 8990+4500)
	}
	got := rejectsFile(t, in, "*purchases_open_quote.csv")
	want := "\ufeffФайл;Строка;Поле;Причина;Строка загружена\r\n" +
		"purchases_open_quote.csv;;;файл загружен не до конца (до этого места строк: 2): строка 4: запись длиннее 1024 КиБ: не закрыта кавычка?;\r\n"
	if string(got) != want {
		t.Fatalf("rejects.csv:\n%s\nwant:\n%s", got, want)
	}
}

func TestIngester_RefusesLargeFile(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	in.MaxFileBytes = 64
	drop := t.TempDir()
	path := filepath.Join(drop, "stores.csv")
	os.WriteFile(path, []byte("Код;Наименование\r\n0001;Тверская\r\n0002;Арбат\r\n0003;Ленинский проспект\r\n"), 0o644)
	spec := etl.SourceSpec{Name: "office", Source: &etl.Local{Dir: drop}}
	res, err := in.Run(ctx, []etl.SourceSpec{spec})
	if err != nil || res.Failed != 1 || res.Ingested != 0 {
		t.Fatalf("res = %+v, err %v: want the file refused", res, err)
	}
	if s := status(t, db); s.Stores != 0 || s.Files.Failed != 1 {
		t.Fatalf("stores %d, files %+v: want nothing loaded and the file failed", s.Stores, s.Files)
	}
	want := "\ufeffФайл;Строка;Поле;Причина;Строка загружена\r\nstores.csv;;;файл не загружен: в файле 115 байт, больше предела 64 байт (max_file_mb);\r\n"
	if got := rejectsFile(t, in, "stores.csv"); string(got) != want {
		t.Fatalf("rejects.csv:\n%s\nwant:\n%s", got, want)
	}
	if tmp, _ := os.ReadDir(filepath.Join(in.Spool, "tmp")); len(tmp) != 0 {
		t.Fatalf("left in the spool: %v", tmp)
	}
	// Not tried again while it stays as it is; taken once it changes.
	if res, err := in.Run(ctx, []etl.SourceSpec{spec}); err != nil || res.Failed != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	os.WriteFile(path, []byte("Код\r\n0001\r\n"), 0o644)
	os.Chtimes(path, time.Now(), time.Now().Add(-time.Minute))
	if res, err := in.Run(ctx, []etl.SourceSpec{spec}); err != nil || res.Ingested != 1 {
		t.Fatalf("the file made smaller: %+v, %v", res, err)
	}
}

// endless is a source whose one file goes on past the size listed, as a
// file still being written or a device would.
type endless struct{ read int64 }

func (s *endless) List(context.Context) ([]etl.Entry, error) {
	return []etl.Entry{{Name: "stores.csv", Size: 1000, ModTime: time.Now().Add(-time.Hour)}}, nil
}

func (s *endless) Open(context.Context, string, int64) (io.ReadCloser, error) {
	return io.NopCloser(s), nil
}

func (s *endless) Read(p []byte) (int, error) {
	if s.read >= 64<<20 {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = 'x'
	}
	s.read += int64(len(p))
	return len(p), nil
}

func (s *endless) Close() error { return nil }

func TestIngester_StopsPastListedSize(t *testing.T) {
	in, db := newIngester(t)
	src := &endless{}
	res, err := in.Run(context.Background(), []etl.SourceSpec{{Name: "office", Source: src}})
	if err != nil || res.Ingested != 0 || res.Failed != 0 || res.SourceErrors != 0 {
		t.Fatalf("res = %+v, err %v: want the file left for the next run", res, err)
	}
	if src.read > 1<<20 {
		t.Fatalf("read %d bytes of a file listed at 1000", src.read)
	}
	if s := status(t, db); s.Files.Failed+s.Files.Ingested != 0 {
		t.Fatalf("files %+v: want none recorded", s.Files)
	}
}

// TestIngester_EncodingPerFeed: a feed's forced encoding wins over the
// source's and over the bytes (Windows-1251 text that happens to be valid
// UTF-8); CommerceML is decided by its bytes whatever is forced.
func TestIngester_EncodingPerFeed(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	drop := t.TempDir()
	// "Рџ" in Windows-1251 is D0 9F, which UTF-8 reads as "П".
	os.WriteFile(filepath.Join(drop, "stores.csv"), []byte("code;name\r\n0001;\xd0\x9f\r\n"), 0o644)
	os.WriteFile(filepath.Join(drop, "customers.csv"), []byte("code;name\r\nC1;\xd0\x9f\r\n"), 0o644)
	raw, err := os.ReadFile("../testdata/malformed/orders_declared_cp1251_but_utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(drop, "orders.xml"), raw, 0o644)
	// Windows-1251 for every CSV feed but stores, and never for XML.
	spec := etl.SourceSpec{Name: "office", Source: &etl.Local{Dir: drop}, Encoding: etl.EncodingCP1251,
		Encodings: map[string]string{etl.FeedStores: etl.EncodingUTF8},
		Patterns:  map[string][]string{etl.FeedStores: {"stores*"}, etl.FeedCustomers: {"customers*"}, etl.FeedOrders: {"orders*"}}}
	res, err := in.Run(ctx, []etl.SourceSpec{spec})
	conn, cerr := sql.Open("sqlite", db.Path())
	if cerr != nil {
		t.Fatal(cerr)
	}
	defer conn.Close()
	if err != nil || res.Ingested != 3 {
		var failed string
		conn.QueryRow(`SELECT group_concat(name || ': ' || error, '; ') FROM files WHERE status = 'failed'`).Scan(&failed)
		t.Fatalf("res = %+v, err %v; failed: %s", res, err, failed)
	}
	var store, customer, product string
	for q, v := range map[string]*string{
		`SELECT name FROM stores WHERE code = '0001'`:       &store,
		`SELECT name FROM customers WHERE code = 'C1'`:      &customer,
		`SELECT product FROM purchase_lines WHERE line = 1`: &product,
	} {
		if err := conn.QueryRow(q).Scan(v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if store != "П" || customer != "Рџ" || product != "Стул" {
		t.Fatalf("store %q, customer %q, product %q: want П (utf-8 forced), Рџ (windows-1251 forced), Стул (the bytes)",
			store, customer, product)
	}
}

// A card whose email, phone or birth date cannot be read loads without
// that value, and the rejects file says which and why, marked as loaded;
// words in place of a value ("нет", "-") and 1C's empty date are no value.
func TestIngestFiles_DroppedValues(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "customers.csv")
	os.WriteFile(path, []byte("Код;ФИО;Email;Телефон;ДатаРождения;СогласиеНаРассылку\r\n"+
		"C1;Иванов;ivan@mail;8 916 123-45-67;01.02.1980;Да\r\n"+
		"C2;Петрова;нет;-;01.01.0001 0:00:00;Да\r\n"+
		"C3;Сидоров;SID@ya.ru;12345;31.02.1990;Нет\r\n"+
		"C4;Кузнецова;k@bk.ru;;;Возможно\r\n"), 0o644)
	res, err := in.IngestFiles(ctx, etl.FeedCustomers, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 1 || res.Loaded != 3 || res.Rejected != 1 || res.Dropped != 3 {
		t.Fatalf("res = %+v, want 3 cards loaded, 1 rejected, 3 values dropped", res)
	}
	got := string(rejectsFile(t, in, "*customers.csv"))
	want := "\ufeffФайл;Строка;Поле;Причина;Строка загружена\r\n" +
		"customers.csv;2;Email;\"в адресе \"\"ivan@mail\"\" нет правильного домена после @\";да, без этого значения\r\n" +
		"customers.csv;4;Телефон;\"номера \"\"12345\"\" нет в российском плане нумерации\";да, без этого значения\r\n" +
		"customers.csv;4;ДатаРождения;\"\"\"31.02.1990\"\" — такой даты нет в календаре\";да, без этого значения\r\n" +
		"customers.csv;5;СогласиеНаРассылку;\"\"\"Возможно\"\" — не «да» и не «нет» (Да/Нет, Истина/Ложь, 1/0, true/false)\";нет\r\n"
	if got != want {
		t.Errorf("rejects.csv:\n%s\nwant:\n%s", got, want)
	}
	conn, err := sql.Open("sqlite", db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cards := texts(t, conn, `SELECT code || ' ' || coalesce(email, '-') || ' ' || coalesce(phone, '-') || ' ' || coalesce(birth_date, '-')
		FROM customers ORDER BY code`)
	if want := "[C1 - +79161234567 1980-02-01 C2 - - - C3 sid@ya.ru - -]"; fmt.Sprint(cards) != want {
		t.Errorf("cards %v, want %s", cards, want)
	}
	s, err := db.Summarize(ctx, store.Period{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s.RowsRejected != 1 || s.ValuesDropped != 3 || len(s.RejectReasons) != 4 {
		t.Errorf("summary: %d rejected, %d values dropped, reasons %v", s.RowsRejected, s.ValuesDropped, s.RejectReasons)
	}
}

// A CommerceML buyer's contact that cannot be read is left out the same
// way, named by the counterparty and the contact's type, at the line of
// its document.
func TestIngestFiles_DroppedContact(t *testing.T) {
	ctx := context.Background()
	in, _ := newIngester(t)
	doc := func(id, email, phone string) string {
		return `<Документ><Ид>` + id + `</Ид><Номер>` + id + `</Номер><Дата>2026-11-01</Дата><Время>10:05:00</Время>
<ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль>
<Контрагенты><Контрагент><Ид>c-` + id + `</Ид><Наименование>Иванова Анна</Наименование><Роль>Покупатель</Роль>
<Контакты><Контакт><Тип>Почта</Тип><Значение>` + email + `</Значение></Контакт>
<Контакт><Тип>ТелефонМобильный</Тип><Значение>` + phone + `</Значение></Контакт></Контакты></Контрагент></Контрагенты>
<Товары><Товар><Ид>p-1</Ид><Наименование>Диван</Наименование><Количество>1</Количество><Сумма>45990.00</Сумма></Товар></Товары>
</Документ>
`
	}
	path := filepath.Join(t.TempDir(), "orders.xml")
	os.WriteFile(path, []byte(`<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.10">
`+doc("1", "anna@example", "8 (912) 345-67-89")+doc("2", "нет", "123")+doc("3", "a@b.ru", "-")+`</КоммерческаяИнформация>
`), 0o644)
	res, err := in.IngestFiles(ctx, "", []string{path})
	if err != nil || res.Ingested != 1 || res.Loaded != 3 || res.Dropped != 2 {
		t.Fatalf("res = %+v, err %v; want 3 lines loaded, 2 contacts dropped", res, err)
	}
	got := string(rejectsFile(t, in, "*orders.xml"))
	want := "\ufeffФайл;Строка;Поле;Причина;Строка загружена\r\n" +
		"orders.xml;3;Контрагент c-1/Контакт Почта;\"в адресе \"\"anna@example\"\" нет правильного домена после @\";да, без этого значения\r\n" +
		"orders.xml;10;Контрагент c-2/Контакт ТелефонМобильный;\"номера \"\"123\"\" нет в российском плане нумерации\";да, без этого значения\r\n"
	if got != want {
		t.Errorf("rejects.csv:\n%s\nwant:\n%s", got, want)
	}
}

// A later export without a column leaves what the cards and stores
// loaded before hold in it: a column renamed in 1C for a night does not
// wipe every card's consent or every store's time zone.
func TestIngestFiles_AbsentColumnKeepsValues(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		return path
	}
	first := []string{
		write("stores_1.csv", "Код;Наименование;ЧасовойПояс\r\n0001;Тверская;Asia/Yekaterinburg\r\n"),
		write("customers_1.csv", "Код;ФИО;Email;СогласиеНаРассылку\r\nC1;Иванов;ivan@bk.ru;Да\r\nC2;Петрова;anna@bk.ru;Нет\r\n"),
	}
	if res, err := in.IngestFiles(ctx, "", first); err != nil || res.Loaded != 3 {
		t.Fatalf("first: %+v %v", res, err)
	}
	// The next night's files lack the time zone, the email and the
	// consent; a name changed, and a new card comes without them.
	next := []string{
		write("stores_2.csv", "Код;Наименование\r\n0001;Тверская 12\r\n"),
		write("customers_2.csv", "Код;ФИО\r\nC1;Иванов Иван\r\nC2;Петрова\r\nC3;Сидоров\r\n"),
	}
	res, err := in.IngestFiles(ctx, "", next)
	if err != nil || res.Loaded != 3 || res.Duplicate != 1 {
		t.Fatalf("next: %+v %v; want the store, C1 and C3 written, C2 unchanged", res, err)
	}
	conn, err := sql.Open("sqlite", db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := texts(t, conn, `SELECT code || ' ' || name || ' ' || timezone FROM stores
		UNION ALL SELECT * FROM (SELECT code || ' ' || name || ' ' || coalesce(email, '-') || ' ' || consent FROM customers ORDER BY code)`)
	want := "[0001 Тверская 12 Asia/Yekaterinburg C1 Иванов Иван ivan@bk.ru 1 C2 Петрова anna@bk.ru 0 C3 Сидоров - 0]"
	if fmt.Sprint(got) != want {
		t.Errorf("after the next night's files:\n%v\nwant\n%s", got, want)
	}
}

// texts returns the one text column of a query's rows.
func texts(t *testing.T, conn *sql.DB, query string) []string {
	t.Helper()
	rows, err := conn.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
