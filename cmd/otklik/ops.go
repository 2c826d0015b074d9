package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/otklik/otklik/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the daemon's Prometheus metrics: job outcomes and
// durations as they happen, and the database's counts.
type metrics struct {
	reg      *prometheus.Registry
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	status   *statusCollector
}

// newMetrics makes the metrics of a daemon that runs until ctx ends.
func newMetrics(ctx context.Context, db *store.DB) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otklik_job_runs_total", Help: "Runs of each job by outcome (ok, failed).",
		}, []string{"job", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "otklik_job_duration_seconds", Help: "How long each job ran.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"job"}),
	}
	m.status = newStatusCollector(ctx, func(ctx context.Context) (statusSnapshot, error) {
		s, err := db.Status(ctx)
		if err != nil {
			return statusSnapshot{}, err
		}
		snap := statusSnapshot{Status: s, lastSuccess: map[string]time.Time{}}
		for _, r := range s.LastRuns {
			last, err := db.LastSuccess(ctx, r.Job)
			if err != nil {
				return statusSnapshot{}, err
			}
			snap.lastSuccess[r.Job] = last
		}
		return snap, nil
	})
	m.reg.MustRegister(m.runs, m.duration, m.status,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(job string, d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	m.runs.WithLabelValues(job, outcome).Inc()
	m.duration.WithLabelValues(job).Observe(d.Seconds())
	m.status.invalidate()
}

// statusCollector reports the database's counts. Counting a chain's
// purchase lines takes seconds (a second for 10,000,000 in the page
// cache, many more from disk), too long to do at every scrape: a scrape
// reports the counts last read, read again in the background once a job
// has finished since or they are older than maxAge, and waits for that
// read at most wait.
type statusCollector struct {
	life         context.Context // a read in progress ends with it
	read         func(context.Context) (statusSnapshot, error)
	maxAge, wait time.Duration

	mu      sync.Mutex
	status  statusSnapshot
	err     error
	readAt  time.Time     // zero until the first read ends
	stale   bool          // a job has finished since readAt
	reading chan struct{} // closed when the read in progress ends; nil if none
}

// statusSnapshot is what one read gives: the counts, and when each job
// last succeeded.
type statusSnapshot struct {
	store.Status
	lastSuccess map[string]time.Time
}

func newStatusCollector(life context.Context, read func(context.Context) (statusSnapshot, error)) *statusCollector {
	return &statusCollector{life: life, read: read, maxAge: 5 * time.Minute, wait: 2 * time.Second}
}

// invalidate has the next scrape read the counts again.
func (c *statusCollector) invalidate() {
	c.mu.Lock()
	c.stale = true
	c.mu.Unlock()
}

// current returns the counts, starting a read if they are stale and
// waiting for it at most c.wait; ok is false until a read has ended.
func (c *statusCollector) current() (s statusSnapshot, ok bool, err error) {
	c.mu.Lock()
	if c.reading == nil && (c.stale || c.readAt.IsZero() || time.Since(c.readAt) > c.maxAge) {
		c.stale = false
		c.reading = make(chan struct{})
		go c.readStatus(c.reading)
	}
	reading := c.reading
	c.mu.Unlock()
	if reading != nil {
		t := time.NewTimer(c.wait)
		select {
		case <-reading:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, !c.readAt.IsZero(), c.err
}

func (c *statusCollector) readStatus(done chan struct{}) {
	// A stopping daemon closes the database, which waits for the read.
	ctx, cancel := context.WithTimeout(c.life, 10*time.Minute)
	defer cancel()
	s, err := c.read(ctx)
	c.mu.Lock()
	if err == nil {
		c.status = s
	}
	c.err, c.readAt, c.reading = err, time.Now(), nil
	c.mu.Unlock()
	close(done)
}

var (
	descFiles   = prometheus.NewDesc("otklik_files", "Files in the ledger by status.", []string{"status"}, nil)
	descRows    = prometheus.NewDesc("otklik_rows", "Rows of loaded files by outcome.", []string{"outcome"}, nil)
	descDropped = prometheus.NewDesc("otklik_values_dropped", "Values left out of rows that loaded (an email that is not an address, a phone that is not a number).", nil, nil)
	descMail    = prometheus.NewDesc("otklik_mail", "Mail in the outbox by kind and status; planned is the queue depth.", []string{"kind", "status"}, nil)
	descCount   = prometheus.NewDesc("otklik_records", "Records in the database.", []string{"table"}, nil)
	descLastRun = prometheus.NewDesc("otklik_job_last_success_timestamp_seconds", "When each job last succeeded.", []string{"job"}, nil)
)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFiles, descRows, descDropped, descMail, descCount, descLastRun} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok, err := c.current()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descCount, err)
		return
	}
	if !ok {
		return // the first read is still running
	}
	g := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	g(descFiles, s.Files.Ingested, "ingested")
	g(descFiles, s.Files.Failed, "failed")
	g(descFiles, s.Files.SkippedDuplicate, "skipped_duplicate")
	g(descRows, s.Rows.Loaded, "loaded")
	g(descRows, s.Rows.Duplicate, "duplicate")
	g(descRows, s.Rows.Rejected, "rejected")
	g(descDropped, s.Rows.ValuesDropped)
	for kind, st := range map[string]struct{ Planned, Sent, Failed, Bounced, Unknown, Expired int64 }{
		"invitation": {s.Invitations.Planned, s.Invitations.Sent, s.Invitations.Failed, s.Invitations.Bounced, s.Invitations.Unknown, s.Invitations.Expired},
		"follow-up":  {s.Messages.Planned, s.Messages.Sent, s.Messages.Failed, s.Messages.Bounced, s.Messages.Unknown, s.Messages.Expired},
	} {
		g(descMail, st.Planned, kind, "planned")
		g(descMail, st.Sent, kind, "sent")
		g(descMail, st.Failed, kind, "failed")
		g(descMail, st.Bounced, kind, "bounced")
		g(descMail, st.Unknown, kind, "unknown")
		g(descMail, st.Expired, kind, "expired")
	}
	g(descCount, s.Stores, "stores")
	g(descCount, s.Customers, "customers")
	g(descCount, s.PurchaseLines, "purchase_lines")
	g(descCount, s.Responses, "responses")
	g(descCount, s.Suppressed, "suppressions")
	for job, last := range s.lastSuccess {
		if !last.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastRun, prometheus.GaugeValue, float64(last.Unix()), job)
		}
	}
}

// adminHandler serves /metrics and /healthz for monitoring.
func (a *app) adminHandler(m *metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", a.healthz)
	return mux
}

// healthz answers 200 while the database answers, with the age of the
// last good ingest and send; 503 otherwise.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	out := map[string]any{"database": "ok"}
	code := http.StatusOK
	if err := a.db.Ping(ctx); err != nil {
		out["database"], code = err.Error(), http.StatusServiceUnavailable
	}
	for _, job := range []string{"ingest", "send"} {
		if last, err := a.db.LastSuccess(ctx, job); err == nil && !last.IsZero() {
			out["last_"+job+"_age_seconds"] = int64(a.db.Now().Sub(last).Seconds())
		} else {
			out["last_"+job+"_age_seconds"] = nil
		}
	}
	if active, err := a.db.ActiveConditions(ctx); err == nil {
		out["alerts"] = active
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(out)
}

// condition tells the administrator once when a condition starts to hold
// and once when it ends.
func (a *app) condition(ctx context.Context, key string, active bool, subject, detail string) {
	started, ended, err := a.db.Condition(ctx, key, active, detail)
	if err != nil {
		a.log.Error("record condition", "key", key, "err", err)
		return
	}
	switch {
	case started:
		a.log.Warn("alert", "key", key, "detail", detail)
		a.notifyAdmin(ctx, subject, detail+"\n")
	case ended:
		a.log.Info("alert cleared", "key", key)
		a.notifyAdmin(ctx, "снова в порядке: "+subject, "Всё снова в порядке: "+subject+".\n")
	}
}

// usual returns the median of the days before the last one that have a
// value (seen), if there are at least seven: what a day normally holds.
func usual(values []int64, seen []bool) (int64, bool) {
	var past []int64
	for i, v := range values[:len(values)-1] {
		if seen[i] {
			past = append(past, v)
		}
	}
	if len(past) < 7 {
		return 0, false
	}
	slices.Sort(past)
	return past[len(past)/2], true
}

// watch checks what should be true on a healthy server: the day's drop of
// each expected feed arrived by expect_drop_by and was not far smaller
// than usual, the SMTP server answers, the disks have room.
func (a *app) watch(ctx context.Context) (string, error) {
	now := a.db.Now().In(a.loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, a.loc)
	by, _ := time.ParseInLocation("15:04", a.cfg.Admin.ExpectDropBy, a.loc)
	deadline := day.Add(time.Duration(by.Hour())*time.Hour + time.Duration(by.Minute())*time.Minute)
	var notes []string
	if !now.Before(deadline) {
		for _, feed := range a.cfg.Admin.ExpectedFeeds {
			rows, seen, err := a.db.FeedRows(ctx, feed, day.AddDate(0, 0, -28), 29)
			if err != nil {
				return "", err
			}
			today := rows[28]
			a.condition(ctx, "missing:"+feed, !seen[28], "нет выгрузки "+feed+" за сегодня",
				fmt.Sprintf("К %s не загружено ни одного файла %s за сегодня. Проверьте выгрузку 1С и источники (otklik check).",
					a.cfg.Admin.ExpectDropBy, feed))
			if median, ok := usual(rows, seen); ok && a.cfg.Admin.SmallDropShare > 0 && seen[28] {
				small := float64(today) < a.cfg.Admin.SmallDropShare*float64(median)
				a.condition(ctx, "small:"+feed, small, "выгрузка "+feed+" меньше обычного",
					fmt.Sprintf("Сегодня в файлах %s %d строк, а обычно (медиана за 4 недели) %d. Возможно, выгрузка 1С неполная.",
						feed, today, median))
			}
			notes = append(notes, fmt.Sprintf("%s: %d rows today", feed, today))
		}
		for _, src := range a.cfg.Sources {
			most, seen, err := a.db.ListingEntries(ctx, src.Name, day.AddDate(0, 0, -28), 29)
			if err != nil {
				return "", err
			}
			if !seen[28] {
				continue // not listed today: a failing source is reported as such
			}
			if median, ok := usual(most, seen); ok {
				a.condition(ctx, "empty:"+src.Name, most[28] == 0 && median > 0, "папка "+src.Name+" пуста",
					fmt.Sprintf("Источник %s сегодня пуст, а обычно файлов в нём: %d. Проверьте, что 1С выгружает файлы в эту папку.",
						src.Name, median))
			}
		}
	}
	sender, err := a.smtpSender()
	if err == nil {
		_, err = sender.Check(ctx)
	}
	detail := ""
	if err != nil {
		detail = err.Error()
	}
	a.condition(ctx, "smtp", err != nil, "почтовый сервер не принимает письма",
		fmt.Sprintf("Почтовый сервер %s не принимает соединение: %s\nПриглашения и оповещения ждут в очереди.", a.cfg.SMTP.Address, detail))
	var low []string
	disks := []string{a.cfg.Database, a.cfg.Spool}
	// SQLite sorts in its temporary folder when roll-ups of many days
	// are summed again: watched too when it is on a disk of its own.
	if tmp := sqliteTempDir(a.env.getenv); tmp != "" && !sameDisk(tmp, a.cfg.Database) {
		disks = append(disks, tmp)
	}
	for _, p := range disks {
		free, err := freeBytes(p)
		if err != nil {
			continue
		}
		if free < uint64(a.cfg.Admin.MinFreeMB)<<20 {
			low = append(low, fmt.Sprintf("на диске с %s свободно %d МБ", p, free>>20))
		}
		notes = append(notes, fmt.Sprintf("%s: %d MB free", p, free>>20))
	}
	a.condition(ctx, "disk", len(low) > 0, "мало места на диске",
		fmt.Sprintf("Мало места: %s (порог %d МБ).", strings.Join(low, "; "), a.cfg.Admin.MinFreeMB))
	return strings.Join(notes, "; "), nil
}

// freeBytes is the space left for an unprivileged user on path's disk
// (or, for a file not yet made, its folder's).
func freeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	for p := path; p != "" && p != "/"; p = parentDir(p) {
		if err := syscall.Statfs(p, &st); err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		}
	}
	if err := syscall.Statfs("/", &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// sqliteTempDir is the folder SQLite puts its temporary files in, found
// as SQLite finds it: the first writable folder of $SQLITE_TMPDIR,
// $TMPDIR, /var/tmp, /usr/tmp and /tmp.
func sqliteTempDir(getenv func(string) string) string {
	for _, d := range []string{getenv("SQLITE_TMPDIR"), getenv("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"} {
		if fi, err := os.Stat(d); d != "" && err == nil && fi.IsDir() && syscall.Access(d, 0o3) == nil {
			return d
		}
	}
	return ""
}

// sameDisk says whether paths a and b (or, for files not yet made, their
// folders) are on one file system; false when either cannot be read.
func sameDisk(a, b string) bool {
	dev := func(path string) (uint64, bool) {
		for p := path; ; p = parentDir(p) {
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err == nil {
				return st.Dev, true
			}
			if p == "/" {
				return 0, false
			}
		}
	}
	da, okA := dev(a)
	db, okB := dev(b)
	return okA && okB && da == db
}

func parentDir(p string) string {
	i := strings.LastIndexByte(strings.TrimRight(p, "/"), '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// summary emails the administrator what happened yesterday.
func (a *app) summary(ctx context.Context) (string, error) {
	now := a.db.Now().In(a.loc)
	day := time.Date(now.Year(), now.Month(), now.Day()-1, 0, 0, 0, 0, a.loc)
	s, err := a.db.Summarize(ctx, store.Period{From: day, To: day.AddDate(0, 0, 1)})
	if err != nil {
		return "", err
	}
	active, err := a.db.ActiveConditions(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Сводка otklik за %s\n\n", day.Format("02.01.2006"))
	fmt.Fprintf(&b, "Файлы: загружено %d, с ошибкой %d, повторных %d\n", s.FilesIngested, s.FilesFailed, s.FilesDuplicate)
	fmt.Fprintf(&b, "Строки: загружено %d, повторов %d, отклонено %d\n", s.RowsLoaded, s.RowsDuplicate, s.RowsRejected)
	if s.ValuesDropped > 0 {
		fmt.Fprintf(&b, "Значения, без которых строки загружены (неверный email, телефон, дата рождения): %d\n", s.ValuesDropped)
	}
	for _, r := range s.RejectReasons {
		field := r.Field
		if field == "" {
			field = "строка не читается"
		}
		if r.Kept {
			// The example would be the value itself: an email, a phone.
			fmt.Fprintf(&b, "  %s, %s: не загружено значений: %d, строки загружены без них (см. файл отказов)\n", r.File, field, r.Count)
			continue
		}
		fmt.Fprintf(&b, "  %s, %s: %d, например: %s\n", r.File, field, r.Count, r.Example)
	}
	fmt.Fprintf(&b, "\nПриглашения: отправлено %d, отказов адресов %d, не отправлено %d, неизвестно %d, просрочено %d\n",
		s.Sent, s.Bounced, s.Failed, s.Unknown, s.Expired)
	fmt.Fprintf(&b, "Ответы: %d; напоминаний %d, благодарностей %d, оповещений директорам %d; отписок %d\n",
		s.Answers, s.Reminders, s.Thanks, s.Alerts, s.Unsubscribed)
	if len(active) > 0 {
		fmt.Fprintf(&b, "\nНе в порядке сейчас: %s\n", strings.Join(active, ", "))
	}
	a.notifyAdmin(ctx, "сводка за "+day.Format("02.01.2006"), b.String())
	return fmt.Sprintf("%d files, %d answers", s.FilesIngested, s.Answers), nil
}

// retention anonymizes personal data older than configured.
func (a *app) retention(ctx context.Context) (string, error) {
	now := a.db.Now()
	r := a.cfg.Retention
	cards, answers, err := a.db.Retain(ctx, now.AddDate(0, -r.CustomersMonths, 0), now.AddDate(0, -r.AnswersMonths, 0))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d cards and %d answers anonymized", cards, answers), nil
}

// backup copies the database into backup.dir, keeping the newest copies.
func (a *app) backup(ctx context.Context) (string, error) {
	path, err := a.db.Backup(ctx, a.cfg.Backup.Dir, a.cfg.Backup.Keep)
	if err != nil {
		return "", err
	}
	return path, nil
}
