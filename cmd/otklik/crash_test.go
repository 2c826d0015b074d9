package main

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/store/storetest"
)

// TestIngestCrashLoop runs 20 trials of a nightly drop with a
// 1,000,000-line export: in each, `otklik ingest` is killed with SIGKILL
// at a random moment (in every other trial killed again while it resumes)
// and run again to the end, and the database must then equal the one an
// uninterrupted ingest leaves, every time: the same rows, rejects,
// per-file counts and roll-ups, nothing lost or loaded twice.
func TestIngestCrashLoop(t *testing.T) {
	benchOnly(t)
	customers, lines, trials := 100000, 1000000, 20
	for env, n := range map[string]*int{"OTKLIK_BENCH_CRASH_CUSTOMERS": &customers,
		"OTKLIK_BENCH_CRASH_LINES": &lines, "OTKLIK_BENCH_CRASH_TRIALS": &trials} {
		if s := os.Getenv(env); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				t.Fatalf("%s=%q: want a positive number", env, s)
			}
			*n = v
		}
	}
	bin := buildBinary(t)
	now := time.Now()
	// The drop is written once; each run reads it through hard links.
	drop := filepath.Join(t.TempDir(), "drop")
	o := sample.Options{Now: now, Customers: customers, Days: 30, Receipts: customers / 30, Seed: 7}
	s, err := sample.Write(drop, o)
	if err != nil {
		t.Fatal(err)
	}
	// And one large export, as 1C writes a month of purchases.
	big, err := sample.WriteBig(filepath.Join(drop, "purchases_month.csv"), sample.Big{Lines: lines, Now: now, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drop: %d files, %d customers, %d purchase lines, %d bad rows; and a file of %d purchase lines",
		len(s.Files), s.Customers, s.Lines, s.BadRows, big.Lines)
	setup := func() (dir, cfg string) {
		dir = t.TempDir()
		files, err := os.ReadDir(drop)
		if err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(dir, "drop"), 0o755)
		for _, f := range files {
			if err := os.Link(filepath.Join(drop, f.Name()), filepath.Join(dir, "drop", f.Name())); err != nil {
				t.Fatal(err)
			}
		}
		return dir, dropConfig(t, dir, "")
	}
	ingest := func(cfg string) *exec.Cmd { return binCmd(bin, cfg, "ingest") }

	cleanDir, cleanCfg := setup()
	start := time.Now()
	if out, err := ingest(cleanCfg).CombinedOutput(); err != nil {
		t.Fatalf("clean ingest: %v\n%s", err, out)
	}
	took := time.Since(start)
	t.Logf("clean ingest: %v", took.Round(time.Millisecond))
	want := dump(t, filepath.Join(cleanDir, "otklik.db"))
	for _, table := range []string{"customers", "purchase_lines", "rejects"} {
		if strings.HasPrefix(want[table], "0 ") {
			t.Fatalf("the clean ingest left no %s: %v", table, want)
		}
	}
	os.RemoveAll(cleanDir)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	kills, midFile, equal := 0, 0, 0
	for trial := range trials {
		began := time.Now()
		dir, cfg := setup()
		// A kill at any moment of a clean run's time; in every other
		// trial a second one while the run after it resumes.
		for range 1 + trial%2 {
			cmd := ingest(cfg)
			done := startCmd(t, cmd)
			select {
			case <-time.After(time.Duration(rng.Int64N(int64(took)))):
				cmd.Process.Kill()
				<-done
				kills++
				if cutOff(t, filepath.Join(dir, "otklik.db")) {
					midFile++
				}
			case err := <-done:
				if err != nil {
					t.Fatalf("trial %d: ingest exited: %v", trial, err)
				}
			}
		}
		if out, err := ingest(cfg).CombinedOutput(); err != nil {
			t.Fatalf("trial %d: the ingest after the kill: %v\n%s", trial, err, out)
		}
		got := dump(t, filepath.Join(dir, "otklik.db"))
		same := true
		for table, w := range want {
			if got[table] != w {
				same = false
				t.Errorf("trial %d: %s: %s after the kill, %s after a clean run", trial, table, got[table], w)
			}
		}
		if same {
			equal++
		}
		os.RemoveAll(dir)
		t.Logf("trial %d: %v", trial, time.Since(began).Round(time.Millisecond))
	}
	fmt.Printf("\n| ingest crash loop | purchase lines | trials (kill, run again) | kills | kills that cut a file after a committed batch | databases equal to a clean run |\n|---|---|---|---|---|---|\n")
	fmt.Printf("| otklik ingest, SIGKILL at random moments | %s | %d | %d | %d | %d of %d |\n",
		want["purchase_lines"][:strings.Index(want["purchase_lines"], " ")], trials, kills, midFile, equal, trials)
}

// cutOff reports whether a kill left a file loading after its first
// committed batch, the case a resume has to get exactly right.
func cutOff(t *testing.T, path string) bool {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM files WHERE status = 'loading' AND checkpoint > 0`).Scan(&n); err != nil {
		return false // killed before the schema was there
	}
	return n > 0
}

// dump summarizes what an ingest leaves in each table: its row count and
// a hash of its rows in key order, without ids and times that differ
// between runs.
func dump(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queries := map[string]string{
		"files": `SELECT name, status, rows_loaded, rows_duplicate, rows_rejected FROM files ORDER BY name`,
		"rejects": `SELECT f.name, r.line, r.field, r.reason FROM rejects r JOIN files f ON f.id = r.file_id
			ORDER BY f.name, r.line, r.field`,
		"stores":    `SELECT code, name, city, timezone, region, director_email FROM stores ORDER BY code`,
		"customers": `SELECT code, name, email, phone, birth_date, consent, store_code FROM customers ORDER BY code`,
		"purchase_lines": `SELECT p.store_code, p.receipt, p.line, p.at, p.customer_code, p.product_code, p.product,
			p.category, p.qty_milli, p.price_kop, p.sum_kop, p.seller, f.name
			FROM purchase_lines p JOIN files f ON f.id = p.file_id ORDER BY 1, 2, 3`,
		"purchase_blocks": `SELECT hex(b.hash), f.name FROM purchase_blocks b JOIN files f ON f.id = b.file_id ORDER BY 1`,
		"promo_codes":     `SELECT code FROM promo_codes ORDER BY code`,
		"sales_daily":     `SELECT * FROM sales_daily ORDER BY 1, 2, 3`,
		"sales_monthly":   `SELECT * FROM sales_monthly ORDER BY 1, 2, 3`,
	}
	// The ranges of line ids follow the batches, which differ between
	// runs: each run's must hold for its own lines.
	storetest.CheckRanges(t, db)
	return storetest.Dump(t, db, queries)
}
