package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
)

// reportData is the benchmark's month in the sqlite3 shell's SQL: 1,000
// stores, 9,000,000 purchase lines of October 2026 (3 lines a receipt, 40
// product categories, 2% returns) and 100,000 answers to as many sent
// invitations, with every day of the month marked for the roll-ups as the
// loads and answers would have marked it.
const reportData = `
PRAGMA cache_size = -200000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO stores (code, name, city, timezone, region, updated_at)
SELECT printf('%04d', i), 'Магазин ' || i, 'Город ' || (i % 80), 'Europe/Moscow', 'Регион ' || (i % 12), 0 FROM n;
INSERT INTO files (id, source, name, size, mtime, sha256, feed, status, started_at)
VALUES (1, 'office', 'purchases.csv', 0, 0, 'x', 'purchases', 'ingested', 0);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 8999999)
INSERT INTO purchase_lines (store_code, receipt, line, at, customer_code, product_code, product, category,
                            qty_milli, price_kop, sum_kop, seller, file_id)
SELECT printf('%04d', (i / 3) % 1000), 'R' || (i / 3), i % 3 + 1, :from + (i / 3) * 3 * 2678400 / 9000000,
       CASE WHEN i % 5 = 0 THEN '' ELSE 'C' || (i % 100000) END, 'P' || (i % 5000), 'Товар ' || (i % 5000),
       'Категория ' || ((i * 7) % 40), CASE WHEN i % 50 = 0 THEN -1000 ELSE 1000 END, 10000 + (i % 997) * 100,
       CASE WHEN i % 50 = 0 THEN -(10000 + (i % 997) * 100) ELSE 10000 + (i % 997) * 100 END, '', 1
FROM n;
-- The ranges of line ids with their times, as a load's batches record them.
INSERT INTO purchase_ranges (first_id, last_id, first_at, last_at)
SELECT min(id), max(id), min(at), max(at) FROM purchase_lines GROUP BY id / 2048;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
INSERT INTO invitations (id, token, email, customer_code, store_code, receipt, purchased_at, status,
                         planned_at, due_at, expires_at, attempts, sent_at)
SELECT i + 1, printf('tok%029d', i), 'c' || i || '@example.ru', 'C' || i, printf('%04d', i % 1000), 'R' || (i * 90),
       :from + i * 26, 'sent', :from + i * 26, :from + i * 26 + 3600, :from + i * 26 + 90000, 1, :from + i * 26 + 3600
FROM n;
INSERT INTO responses (id, invitation_id, store_code, rating, nps, comment, created_at)
SELECT id, id, store_code, 1 + id % 5, id % 11,
       CASE WHEN id % 5 < 2 THEN 'Долго ждали консультанта, чек ' || id ELSE '' END, sent_at + 7200
FROM invitations;
INSERT INTO response_categories (response_id, category, tone)
SELECT id, CASE id % 5 WHEN 0 THEN 'service' WHEN 1 THEN 'assortment' WHEN 2 THEN 'prices' WHEN 3 THEN 'comfort' ELSE 'other' END,
       CASE WHEN rating <= 3 THEN 'negative' ELSE 'positive' END
FROM responses;
INSERT INTO response_categories (response_id, category, tone)
SELECT id, 'service', CASE WHEN rating <= 3 THEN 'negative' ELSE 'positive' END FROM responses WHERE id % 2 = 0 AND id % 5 <> 0;
WITH RECURSIVE d(day) AS (SELECT :from / 86400 UNION ALL SELECT day + 1 FROM d WHERE day < :to / 86400)
INSERT INTO rollup_dirty (kind, day, mark) SELECT kind, day, 1 FROM d, (SELECT 'sales' AS kind UNION ALL SELECT 'feedback');
UPDATE rollup_state SET zone = 'Europe/Moscow';
COMMIT;
`

// reportHistory adds the 11 months before October to the monthly
// roll-ups the report reads, as October's sums scaled a little each month
// back. (The daily roll-ups of those months are never read by a report
// and are not made up.)
const reportHistory = `
BEGIN;
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 11)
INSERT INTO sales_monthly (month, store_code, category, revenue_kop, returns_kop, receipts, lines)
SELECT strftime('%Y-%m', '2026-10-01', '-' || n || ' months'), store_code, category,
       revenue_kop * (100 - n) / 100, returns_kop, receipts * (100 - n) / 100, lines * (100 - n) / 100
FROM sales_monthly, k WHERE month = '2026-10';
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 11)
INSERT INTO feedback_monthly (month, store_code, category, tone, answers)
SELECT strftime('%Y-%m', '2026-10-01', '-' || n || ' months'), store_code, category, tone, answers * (100 - n) / 100
FROM feedback_monthly, k WHERE month = '2026-10';
COMMIT;
`

// reportQueries are what the shell runs on the raw rows for the same
// month: sales by product category, answers by feedback category, the
// chain's and each store's survey figures.
const reportQueries = `
SELECT category, sum(CASE WHEN qty_milli > 0 THEN sum_kop END), -sum(CASE WHEN qty_milli < 0 THEN sum_kop END),
       count(DISTINCT store_code || char(31) || receipt), count(*)
FROM purchase_lines WHERE at >= :from AND at < :to GROUP BY category;
SELECT c.category, c.tone, count(*) FROM response_categories c JOIN responses r ON r.id = c.response_id
WHERE r.created_at >= :from AND r.created_at < :to GROUP BY c.category, c.tone;
SELECT count(*), sum(status = 'bounced') FROM invitations WHERE sent_at >= :from AND sent_at < :to;
SELECT store_code, count(*), sum(status = 'bounced') FROM invitations WHERE sent_at >= :from AND sent_at < :to GROUP BY store_code;
SELECT store_code, count(*), sum(rating), sum(rating * rating), count(nps), sum(nps >= 9), sum(nps <= 6)
FROM responses WHERE created_at >= :from AND created_at < :to GROUP BY store_code;
`

// TestReportBenchmark builds October's workbook (`otklik report`, the
// built binary) from 12 months of roll-ups, with a month of 9,000,000
// purchase lines and 100,000 answers in the database, and times the
// sqlite3 shell running the equivalent GROUP BY queries on the raw rows in
// the same run: otklik must be no slower, with a peak RSS under 300 MiB.
// It also times the roll-up of a whole month at once and of one day, as a
// nightly ingest does it.
func TestReportBenchmark(t *testing.T) {
	benchOnly(t)
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Skip("no sqlite3 shell to compare with (make test-deps installs it)")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := dropConfig(t, dir, "reports:\n  directors: false\n")
	os.MkdirAll(filepath.Join(dir, "drop"), 0o755)
	path := filepath.Join(dir, "otklik.db")
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	moscow, _ := time.LoadLocation("Europe/Moscow")
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, moscow).Unix()
	to := time.Date(2026, 11, 1, 0, 0, 0, 0, moscow).Unix()
	params := fmt.Sprintf(".parameter set :from %d\n.parameter set :to %d\n", from, to)
	shell := func(sql string, args ...string) time.Duration {
		t.Helper()
		cmd := exec.Command("sqlite3", append(args, path)...)
		cmd.Stdin = strings.NewReader(params + sql)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "Error") {
			t.Fatalf("sqlite3: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	gen := shell(reportData)
	t.Logf("generated the month in %v", gen.Round(time.Second))
	otklik := func(args ...string) (time.Duration, int64) {
		t.Helper()
		cmd := binCmd(bin, cfg, args...)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otklik %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	}
	report := []string{"report", "--month", "2026-10", "--no-email", "--out", filepath.Join(dir, "otklik-2026-10.xlsx")}
	wholeMonth, wholeRSS := otklik(report...)
	shell(reportHistory)
	// One night: the loads of a day mark it, and the ingest rolls it up.
	shell(fmt.Sprintf("INSERT INTO rollup_dirty (kind, day, mark) VALUES ('sales', %d, 2);", (from+15*86400)/86400))
	night, nightRSS := otklik("ingest")
	var reportTime, shellTime time.Duration
	var rss int64
	for range 3 { // best of three, side by side
		d, r := otklik(report...)
		if reportTime == 0 || d < reportTime {
			reportTime = d
		}
		rss = max(rss, r)
		if s := shell(reportQueries, "-readonly"); shellTime == 0 || s < shellTime {
			shellTime = s
		}
	}
	checkWorkbook(t, report[len(report)-1], 30)
	mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	fmt.Printf("\n| October 2026: 9,000,000 purchase lines, 100,000 answers, 1,000 stores | time | peak RSS |\n|---|---|---|\n")
	fmt.Printf("| sqlite3 shell: the report's GROUP BY queries on the raw rows | %v | |\n", shellTime.Round(time.Millisecond))
	fmt.Printf("| otklik report from 12 months of roll-ups | %v (%.2f of the shell) | %s |\n",
		reportTime.Round(time.Millisecond), reportTime.Seconds()/shellTime.Seconds(), mib(rss))
	fmt.Printf("| otklik report rolling up the whole month first (31 days at once) | %v | %s |\n", wholeMonth.Round(time.Millisecond), mib(wholeRSS))
	fmt.Printf("| otklik ingest rolling up one day (about 290,000 lines) | %v | %s |\n", night.Round(time.Millisecond), mib(nightRSS))
	if reportTime > shellTime {
		t.Errorf("the report took %v, slower than the shell's queries (%v)", reportTime, shellTime)
	}
	if rss > 300<<20 {
		t.Errorf("the report's peak RSS %s is over 300 MiB", mib(rss))
	}
}
