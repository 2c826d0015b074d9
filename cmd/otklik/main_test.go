package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/mailer/inbox"
)

// run calls Main in-process and returns its exit status and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// checkWorkbook opens a workbook with openpyxl, an independent reader.
func checkWorkbook(t *testing.T, path string, minAnswers int) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import openpyxl").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-openpyxl is missing (make test installs it as root): %v", err)
		}
		t.Skip("python3-openpyxl is not installed; make test installs it as root")
	}
	out, err := exec.Command(py, "../../testdata/check_workbook.py", path, fmt.Sprint(minAnswers)).CombinedOutput()
	if err != nil {
		t.Fatalf("openpyxl: %v\n%s", err, out)
	}
}

func TestMain_Demo(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "demo", "--dir", dir)
	if code != 0 {
		t.Fatalf("demo exited %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"workbook:", "emails:", "re-delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	s := demoStatus(t, dir)
	if s.Purchases >= s.Lines {
		t.Errorf("purchases %d should count receipts, fewer than lines %d", s.Purchases, s.Lines)
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "reports", "otklik-????-??.xlsx"))
	directors, _ := filepath.Glob(filepath.Join(dir, "reports", "otklik-????-??-*.xlsx"))
	if len(reports) != 1 || len(directors) != 6 {
		t.Fatalf("workbooks: %v and directors' %v", reports, directors)
	}
	checkWorkbook(t, reports[0], int(s.Responses))
	checkWorkbook(t, directors[0], 0)
	mails, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml"))
	// Every message the server accepted, the report to managers and one
	// to each director; the bounced ones never reached it.
	if got, want := int64(len(mails)), s.Invitations["sent"]+s.Messages["sent"]+1+int64(len(directors)); got != want {
		t.Errorf("%d .eml files, want %d: %d invitations, %d reminders, thank-yous and alerts, %d reports",
			got, want, s.Invitations["sent"], s.Messages["sent"], 1+len(directors))
	}
}

func TestMain_CheckTypoExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otklik.yaml")
	body := strings.Replace(validConfig, "  tls: none\n", "  tls: none\n  max_con: 4\n", 1)
	os.WriteFile(path, []byte(body), 0o644)
	code, _, errs := run(t, "--config", path, "check")
	if code != 2 {
		t.Fatalf("check exited %d, want 2: %s", code, errs)
	}
	if want := path + ":10: smtp.max_con: unknown key"; !strings.Contains(errs, want) {
		t.Fatalf("stderr %q does not contain %q", errs, want)
	}
}

func TestMain_Usage(t *testing.T) {
	if code, _, _ := run(t); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code, _, _ := run(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code, out, _ := run(t, "version"); code != 0 || !strings.HasPrefix(out, "otklik ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := run(t, "--config", "/nonexistent/otklik.yaml", "status"); code != 2 || !strings.Contains(errs, "/nonexistent/otklik.yaml") {
		t.Errorf("missing config: %d %q", code, errs)
	}
	for _, kind := range []string{"invitation", "report", "page"} {
		if code, out, errs := run(t, "--config", "/nonexistent", "preview", kind); code != 0 || len(out) < 100 {
			t.Errorf("preview %s: %d %s", kind, code, errs)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMain_Run starts the daemon in-process: it catches up the ingest it
// never ran, serves /healthz, refuses a second instance and stops on
// cancel.
func TestMain_Run(t *testing.T) {
	dir := t.TempDir()
	if _, err := sample.Write(filepath.Join(dir, "drop"), sample.Options{Customers: 50, Days: 2, Receipts: 10, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: office
    dir: drop
    ready:
      min_age: 0s
smtp:
  address: %s
  from: "Магазин <noreply@example.ru>"
  tls: none
survey:
  base_url: http://%s
  listen: %s
reports:
  dir: reports
admin:
  listen: %s
`, freePort(t), listen, listen, admin)
	path := filepath.Join(dir, "otklik.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errb bytes.Buffer
	go func() {
		done <- Main(ctx, []string{"--config", path, "run"}, &bytes.Buffer{}, &errb, func(string) string { return "" })
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the daemon did not catch up the ingest\n%s", errb.String())
		}
		code, out, _ := run(t, "--config", path, "status", "--json")
		if code == 0 && strings.Contains(out, `"job": "ingest"`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + listen + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	body := func(url string) string {
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", url, resp, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if m := body("http://" + admin + "/metrics"); !strings.Contains(m, `otklik_job_runs_total{job="ingest",outcome="ok"} 1`) ||
		!strings.Contains(m, `otklik_records{table="stores"} 8`) || !strings.Contains(m, "\notklik_values_dropped ") {
		t.Fatalf("metrics lack the ingest run, the stores or the values dropped:\n%s", m)
	}
	if h := body("http://" + admin + "/healthz"); !strings.Contains(h, `"last_ingest_age_seconds":`) {
		t.Fatalf("healthz = %s", h)
	}
	code, _, errs := run(t, "--config", path, "ingest")
	if code != 1 || !strings.Contains(errs, "another otklik (pid") {
		t.Fatalf("second instance: exit %d %q", code, errs)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run exited %d\n%s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30s of the signal")
	}
}

// TestDependencies keeps the stages apart: they meet only in the store.
func TestDependencies(t *testing.T) {
	mod := "github.com/otklik/otklik/"
	rules := map[string][]string{
		"store":   {"etl", "mailer", "survey", "reports", "cmd"},
		"etl":     {"mailer", "survey", "reports", "cmd"},
		"mailer":  {"etl", "survey", "reports", "cmd"},
		"survey":  {"etl", "mailer", "reports", "cmd"},
		"reports": {"etl", "mailer", "survey", "cmd"},
	}
	for pkg, forbidden := range rules {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == mod+f || strings.HasPrefix(dep, mod+f+"/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}

// TestMain_CheckListsWhatSourcesWouldTake: check connects to every
// source and lists the files it would take, reports a source it cannot
// reach without stopping at it, and exits 1.
func TestMain_CheckListsWhatSourcesWouldTake(t *testing.T) {
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "office"), 0o755)
	for _, name := range []string{"purchases_2026-11-01.csv", "customers.csv", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, "office", name), []byte("x"), 0o644)
	}
	path := filepath.Join(dir, "otklik.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: gone
    dir: gone
  - name: office
    dir: office
smtp:
  address: %s
  from: "Магазин <noreply@example.ru>"
  tls: none
survey:
  base_url: https://otklik.example.ru
`, box.Addr())), 0o644)
	code, out, errs := run(t, "--config", path, "check")
	if code != 1 {
		t.Fatalf("check exited %d, want 1 (one source is missing): %s %s", code, out, errs)
	}
	flat := strings.Join(strings.Fields(out), " ") // column widths vary
	for _, want := range []string{
		"source office OK 2 files match a feed: customers.csv, purchases_2026-11-01.csv",
		"source gone FAIL local: list",
		"smtp " + box.Addr() + " OK connected, hello; offers PIPELINING, 8BITMIME",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "notes.txt") {
		t.Errorf("check lists a file no feed takes:\n%s", out)
	}
}

// demoCounts is what the demo's checks read from status --json.
type demoCounts struct {
	Files       map[string]int64 `json:"files"`
	Rows        map[string]int64 `json:"rows"`
	Invitations map[string]int64 `json:"invitations"`
	Messages    map[string]int64 `json:"messages"`
	PromoCodes  int64            `json:"promo_codes_issued"`
	Stores      int64            `json:"stores"`
	Customers   int64            `json:"customers"`
	Purchases   int64            `json:"purchases"`
	Lines       int64            `json:"purchase_lines"`
	Responses   int64            `json:"responses"`
	Suppressed  int64            `json:"suppressed"`
}

// demoStatus reads status --json in a demo's directory and checks that
// every step of the story left something behind.
func demoStatus(t *testing.T, dir string) demoCounts {
	t.Helper()
	code, out, errs := run(t, "--config", filepath.Join(dir, "otklik.yaml"), "status", "--json")
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errs)
	}
	var s demoCounts
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for name, v := range map[string]int64{
		"files.ingested": s.Files["ingested"], "files.skipped_duplicate": s.Files["skipped_duplicate"],
		"rows.loaded": s.Rows["loaded"], "rows.duplicate": s.Rows["duplicate"], "rows.rejected": s.Rows["rejected"],
		"rows.values_dropped": s.Rows["values_dropped"],
		"stores":              s.Stores, "customers": s.Customers, "purchases": s.Purchases, "purchase_lines": s.Lines,
		"invitations.sent": s.Invitations["sent"], "invitations.bounced": s.Invitations["bounced"],
		"responses": s.Responses, "suppressed": s.Suppressed,
		"messages.sent": s.Messages["sent"], "promo_codes_issued": s.PromoCodes,
	} {
		if v == 0 {
			t.Errorf("status %s is 0 after the demo", name)
		}
	}
	return s
}

// The demo tells the whole story whatever the hour it starts at: the
// invitations due already go out at once, the rest when they fall due.
func TestMain_DemoAtAnyHour(t *testing.T) {
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	defer func(f func() time.Time) { demoStart = f }(demoStart)
	for _, hm := range [][2]int{{0, 30}, {7, 0}, {10, 0}, {11, 45}, {16, 20}, {19, 59}, {23, 10}} {
		t.Run(fmt.Sprintf("%02d:%02d", hm[0], hm[1]), func(t *testing.T) {
			start := time.Date(2026, 11, 17, hm[0], hm[1], 0, 0, moscow)
			demoStart = func() time.Time { return start }
			dir := t.TempDir()
			if code, out, errs := run(t, "demo", "--dir", dir); code != 0 {
				t.Fatalf("demo exited %d\n%s\n%s", code, out, errs)
			}
			demoStatus(t, dir)
		})
	}
}
