package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/etl/sample"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otklik/otklik/mailer/inbox"
	"github.com/otklik/otklik/store"
)

// TestIngest_SourceDownAlertsOnce: a source that keeps failing is
// reported to the administrator once, and its recovery once.
func TestIngest_SourceDownAlertsOnce(t *testing.T) {
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: share
    dir: share
    ready:
      min_age: 0s
  - name: office
    dir: office
smtp:
  address: %s
  from: "otklik <noreply@example.ru>"
  tls: none
survey:
  base_url: https://otklik.example.ru
admin:
  emails: ["admin@example.ru"]
  source_failures: 3
`, box.Addr())
	path := filepath.Join(dir, "otklik.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	os.Mkdir(filepath.Join(dir, "office"), 0o755)
	for i := range 5 {
		code, _, errs := run(t, "--config", path, "ingest")
		if code != 1 || !strings.Contains(errs, "1 source errors") {
			t.Fatalf("run %d: exit %d %s", i, code, errs)
		}
	}
	msgs := box.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d admin emails after 5 failed runs, want 1", len(msgs))
	}
	if text, err := msgs[0].Part("text/plain"); err != nil || !strings.Contains(text, "share") {
		t.Fatalf("the admin email does not name the source: %v\n%s", err, text)
	}
	os.Mkdir(filepath.Join(dir, "share"), 0o755)
	for range 2 {
		if code, _, errs := run(t, "--config", path, "ingest"); code != 0 {
			t.Fatalf("recovered run: exit %d %s", code, errs)
		}
	}
	if got := len(box.Messages()); got != 2 {
		t.Fatalf("%d admin emails after recovery, want 2", got)
	}
}

// TestWatch_MissingDropAlertsOnceAndClears: after expect_drop_by without
// a purchases file the administrator hears once; when it arrives, once
// more; a disk under min_free_mb is reported too.
func TestWatch_MissingDropAlertsOnceAndClears(t *testing.T) {
	ctx := context.Background()
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: office
    dir: drop
    ready:
      min_age: 0s
smtp:
  address: %s
  from: "otklik <noreply@example.ru>"
  tls: none
survey:
  base_url: https://otklik.example.ru
admin:
  emails: ["admin@example.ru"]
  expect_drop_by: "08:00"
  min_free_mb: 1000000000
`, box.Addr())
	os.Mkdir(filepath.Join(dir, "drop"), 0o755)
	a := testApp(t, dir, cfg)
	msk := a.loc
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, msk)
	a.db.Now = func() time.Time { return now }
	subjects := func() []string {
		var out []string
		for _, m := range box.Messages() {
			r, _ := mail.CreateReader(strings.NewReader(string(m.Data)))
			s, _ := r.Header.Subject()
			out = append(out, s)
		}
		return out
	}
	for range 3 {
		if _, err := a.watch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(subjects(), " | ")
	if strings.Count(got, "нет выгрузки purchases") != 1 || strings.Count(got, "мало места на диске") != 1 {
		t.Fatalf("after three checks: %s", got)
	}
	sample.Write(filepath.Join(dir, "drop"), sample.Options{Now: now, Customers: 10, Days: 1, Receipts: 5, Seed: 1})
	files, _ := filepath.Glob(filepath.Join(dir, "drop", "*"))
	for _, f := range files { // dropped before the test's clock, not the machine's
		os.Chtimes(f, now.Add(-time.Minute), now.Add(-time.Minute))
	}
	a.db.Now = func() time.Time { return now.Add(time.Hour) }
	if _, err := a.ingest(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.watch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(subjects(), " | "); !strings.Contains(got, "снова в порядке: нет выгрузки purchases") {
		t.Fatalf("after the drop: %s", got)
	}
}

// TestWatch_EmptyFolderAlertsOnceAndClears: a source that listed files
// every day and lists nothing all day today is reported once, and once
// more when files are back.
func TestWatch_EmptyFolderAlertsOnceAndClears(t *testing.T) {
	ctx := context.Background()
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	a := adminApp(t, box, "  expected_feeds: []\n")
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, a.loc)
	list := func(at time.Time, n int) {
		t.Helper()
		a.db.Now = func() time.Time { return at }
		var files []store.Listed
		for i := range n {
			files = append(files, store.Listed{Name: fmt.Sprintf("purchases_%d.csv", i), Size: 10, MTime: at.Unix()})
		}
		if _, err := a.db.Stability(ctx, "office", files); err != nil {
			t.Fatal(err)
		}
	}
	for d := 10; d >= 1; d-- { // the folder held three files on each of the last ten days
		list(now.AddDate(0, 0, -d), 3)
		list(now.AddDate(0, 0, -d).Add(time.Hour), 0) // and was emptied after loading
	}
	empty := func() int { return countSubjects(t, box, "папка office пуста") }
	list(now.Add(-time.Hour), 0)
	for range 3 {
		a.db.Now = func() time.Time { return now }
		if _, err := a.watch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := empty(); got != 1 {
		t.Fatalf("%d alerts about the empty folder after three checks, want 1", got)
	}
	list(now.Add(time.Minute), 2)
	a.db.Now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, err := a.watch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := empty(); got != 2 {
		t.Fatalf("%d messages about the empty folder after files came back, want 2", got)
	}
}

// testApp writes body as DIR/otklik.yaml and opens the app on it, as a
// command would.
func testApp(t *testing.T, dir, body string) *app {
	t.Helper()
	path := filepath.Join(dir, "otklik.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openAppConfig(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}, c, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	return a
}

// TestWatch_SmallDropAndSMTP: a purchases drop far under the median of
// the weeks before is reported once and clears when a full one arrives;
// an SMTP server that refuses connections holds an alert.
func TestWatch_SmallDropAndSMTP(t *testing.T) {
	ctx := context.Background()
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	a := adminApp(t, box, "  expected_feeds: [purchases]\n  small_drop_share: 0.3\n")
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, a.loc)
	load := func(at time.Time, name string, rows int64) {
		t.Helper()
		a.db.Now = func() time.Time { return at }
		v := store.FileVersion{Source: "office", Name: name, Size: rows, MTime: at.Unix()}
		id, _, _, err := a.db.BeginFile(ctx, v, name, "purchases", "utf-8")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.db.FinishFile(ctx, id, store.FileCounts{Loaded: rows}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for d := 14; d >= 1; d-- {
		load(now.AddDate(0, 0, -d).Add(-3*time.Hour), fmt.Sprintf("purchases_%02d.csv", d), 10000)
	}
	load(now.Add(-3*time.Hour), "purchases_today.csv", 900)
	count := func(subject string) int { return countSubjects(t, box, subject) }
	for range 2 {
		a.db.Now = func() time.Time { return now }
		if _, err := a.watch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := count("выгрузка purchases меньше обычного"); got != 1 {
		t.Fatalf("%d small-drop alerts after two checks, want 1", got)
	}
	load(now.Add(time.Minute), "purchases_today_full.csv", 9500)
	a.db.Now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, err := a.watch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count("снова в порядке: выгрузка purchases меньше обычного"); got != 1 {
		t.Fatalf("%d all-clear messages after the full drop, want 1", got)
	}

	box.Close() // the SMTP server goes away
	if _, err := a.watch(ctx); err != nil {
		t.Fatal(err)
	}
	active, err := a.db.ActiveConditions(ctx)
	if err != nil || !slices.Contains(active, "smtp") {
		t.Fatalf("active alerts with the SMTP server down: %v %v", active, err)
	}
}

// adminApp opens an app whose administrator's mail goes to box, with
// more lines for the admin section.
func adminApp(t *testing.T, box *inbox.Inbox, admin string) *app {
	t.Helper()
	return testApp(t, t.TempDir(), fmt.Sprintf(`database: otklik.db
sources:
  - name: office
    dir: drop
smtp:
  address: %s
  from: "otklik <noreply@example.ru>"
  tls: none
survey:
  base_url: https://otklik.example.ru
admin:
  emails: ["admin@example.ru"]
  expect_drop_by: "08:00"
`, box.Addr())+admin)
}

// countSubjects counts the messages in box whose subject contains s.
func countSubjects(t *testing.T, box *inbox.Inbox, s string) int {
	t.Helper()
	n := 0
	for _, m := range box.Messages() {
		r, err := mail.CreateReader(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Fatal(err)
		}
		if subject, _ := r.Header.Subject(); strings.Contains(subject, s) {
			n++
		}
	}
	return n
}

// TestSummary_RejectsAndDroppedValues: the morning summary gives the
// rejected rows by column with an example, and the values left out of
// loaded rows by count only: their example would be an email.
func TestSummary_RejectsAndDroppedValues(t *testing.T) {
	ctx := context.Background()
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	a := adminApp(t, box, "")
	noon := time.Date(2026, 11, 2, 12, 0, 0, 0, a.loc)
	a.db.Now = func() time.Time { return noon }
	path := filepath.Join(t.TempDir(), "customers.csv")
	os.WriteFile(path, []byte("Код;Email;СогласиеНаРассылку\r\nC1;ivan,petrov@mail.ru;Да\r\nC2;a@bk.ru;Возможно\r\n"), 0o644)
	os.Chtimes(path, noon.Add(-time.Hour), noon.Add(-time.Hour)) // complete by the clock
	if res, err := a.ingest(ctx, etl.FeedCustomers, []string{path}); err != nil || res.Loaded != 1 || res.Rejected != 1 || res.Dropped != 1 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	a.db.Now = func() time.Time { return noon.Add(24 * time.Hour) }
	if _, err := a.summary(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := box.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want the summary", len(msgs))
	}
	text, err := msgs[0].Part("text/plain")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"отклонено 1", "без которых строки загружены (неверный email, телефон, дата рождения): 1",
		`customers.csv, СогласиеНаРассылку: 1, например: "Возможно"`, "customers.csv, Email: не загружено значений: 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "petrov") {
		t.Errorf("the summary shows a customer's email:\n%s", text)
	}
}
