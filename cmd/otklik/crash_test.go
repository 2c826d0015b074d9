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

// TestIngestCrashLoop kills `otklik ingest` with SIGKILL at 20 random
// moments of a nightly drop with a 1,000,000-line export, restarting it
// each time, and checks that the database ends exactly as after one
// uninterrupted ingest: the same rows, rejects, per-file counts and
// roll-ups, nothing lost or loaded twice.
func TestIngestCrashLoop(t *testing.T) {
	benchOnly(t)
	customers, lines := 100000, 1000000
	if s := os.Getenv("OTKLIK_BENCH_CRASH_CUSTOMERS"); s != "" {
		customers, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("OTKLIK_BENCH_CRASH_LINES"); s != "" {
		lines, _ = strconv.Atoi(s)
	}
	bin := buildBinary(t)
	now := time.Now()
	setup := func() (dir, cfg string) {
		dir = t.TempDir()
		o := sample.Options{Now: now, Customers: customers, Days: 30, Receipts: customers / 30, Seed: 7}
		s, err := sample.Write(filepath.Join(dir, "drop"), o)
		if err != nil {
			t.Fatal(err)
		}
		// And one large export, as 1C writes a month of purchases.
		big, err := sample.WriteBig(filepath.Join(dir, "drop", "purchases_month.csv"), sample.Big{Lines: lines, Now: now, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("drop: %d files, %d customers, %d purchase lines, %d bad rows; and a file of %d purchase lines",
			len(s.Files), s.Customers, s.Lines, s.BadRows, big.Lines)
		return dir, dropConfig(t, dir, "")
	}
	ingest := func(cfg string) *exec.Cmd { return binCmd(bin, cfg, "ingest") }

	cleanDir, cleanCfg := setup()
	start := time.Now()
	if out, err := ingest(cleanCfg).CombinedOutput(); err != nil {
		t.Fatalf("clean ingest: %v\n%s", err, out)
	}
	took := time.Since(start)

	dir, cfg := setup()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	kills, midFile, finished := 0, 0, false
	for kills < 20 && !finished {
		cmd := ingest(cfg)
		done := startCmd(t, cmd)
		// Kill within the first eighth of a clean run's time: the restarts
		// make progress only by resuming where the last one was cut off.
		wait := time.Duration(rng.Int64N(int64(took)/8 + 1))
		select {
		case <-time.After(wait):
			cmd.Process.Kill()
			<-done
			kills++
			if cutOff(t, filepath.Join(dir, "otklik.db")) {
				midFile++
			}
		case err := <-done:
			if err != nil {
				t.Fatalf("ingest exited: %v", err)
			}
			finished = true
		}
	}
	if out, err := ingest(cfg).CombinedOutput(); err != nil {
		t.Fatalf("final ingest: %v\n%s", err, out)
	}

	want := dump(t, filepath.Join(cleanDir, "otklik.db"))
	for _, table := range []string{"customers", "purchase_lines", "rejects"} {
		if strings.HasPrefix(want[table], "0 ") {
			t.Fatalf("the clean ingest left no %s: %v", table, want)
		}
	}
	got := dump(t, filepath.Join(dir, "otklik.db"))
	fmt.Printf("\n| ingest crash loop | purchase lines | kills | kills that cut a file after a committed batch | tables equal to a clean run |\n|---|---|---|---|---|\n")
	equal := 0
	for table, w := range want {
		if got[table] == w {
			equal++
		} else {
			t.Errorf("%s: %s after the crash loop, %s after a clean run", table, got[table], w)
		}
	}
	fmt.Printf("| otklik ingest, SIGKILL at random moments | %s | %d | %d | %d of %d |\n", want["purchase_lines"][:strings.Index(want["purchase_lines"], " ")], kills, midFile, equal, len(want))
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
