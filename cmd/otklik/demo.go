package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/mailer/inbox"
	"github.com/otklik/otklik/reports"
	"github.com/otklik/otklik/store"
)

const demoConfig = `# Written by "otklik demo". Paths are relative to this file.
timezone: Europe/Moscow
database: otklik.db
spool: spool
sources:
  - name: office
    type: local
    dir: drop
    outbound_dir: to-1c
    ready:
      min_age: 0s
smtp:
  address: %s
  from: "Хофф <noreply@hoff.example.ru>"
  hello: demo.localhost
  tls: none
survey:
  base_url: %s
  listen: 127.0.0.1:0
  max_age_days: 3
  cooldown_days: 30
  window: "10:00-20:00"
  reminder_days: 2
  # The demo's customers all answer from 127.0.0.1.
  per_ip_rate: 10000
  alerts:
    groups: ["Отдел обучения <training@hoff.example.ru>"]
reports:
  dir: reports
  managers:
    - "Управляющие <managers@hoff.example.ru>"
`

// demo answers: rating, NPS, good and bad categories, comment.
var demoAnswers = []struct {
	rating, nps int
	good, bad   []string
	comment     string
}{
	{5, 10, []string{"service", "assortment"}, nil, "Продавец помог выбрать диван, всё объяснил. Спасибо!"},
	{5, 9, []string{"service"}, nil, "Быстро оформили доставку."},
	{4, 8, []string{"assortment"}, []string{"prices"}, "Выбор хороший, но цены кусаются."},
	{2, 3, nil, []string{"service"}, "Долго ждали консультанта, никто не подошёл."},
	{1, 0, nil, []string{"assortment", "other"}, "Не хватает изделий в наличии, обещали привезти и не привезли."},
	{3, 6, []string{"comfort"}, []string{"prices"}, "Магазин удобный, но дорого."},
	{5, 10, []string{"comfort", "service"}, nil, ""},
	{4, 7, []string{"service"}, nil, "<script>alert('xss')</script> всё хорошо"},
}

var bouncing = regexp.MustCompile(`[0-2]3@`)

var surveyLink = regexp.MustCompile(`https?://[^\s"<>]+/s/[A-Za-z0-9_-]+\?r=[1-5]`)

// cmdDemo runs the whole nightly cycle on a generated sample drop with an
// in-process mail server, and says where to look at the results.
// demoStart is the instant the demo's story starts at: now, except in
// tests that start it at every hour of a day.
var demoStart = time.Now

func cmdDemo(ctx context.Context, e *env, args []string) error {
	var dir string
	if _, err := flags("demo", args, func(fs *flag.FlagSet) {
		fs.StringVar(&dir, "dir", "otklik-demo", "folder for the drop, database, emails and workbook")
	}); err != nil {
		return err
	}
	started := time.Now()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// A demo starts afresh; only what a demo writes is removed.
	for _, p := range []string{"drop", "spool", "mail", "reports", "otklik.db", "otklik.db-wal", "otklik.db-shm", "otklik.yaml"} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return err
		}
	}
	say := func(format string, args ...any) { fmt.Fprintf(e.stdout, format+"\n", args...) }

	now := demoStart()
	drop, err := sample.Write(filepath.Join(dir, "drop"), sample.Options{Now: now, Seed: 2026})
	if err != nil {
		return err
	}
	say("1. 1C drop written: %d files (Windows-1251), %d customers, %d receipts, %d lines; on purpose %d bad rows and %d mistyped emails",
		len(drop.Files), drop.Customers, drop.Receipts, drop.Lines, drop.BadRows, drop.Mistyped)

	box, err := inbox.Start(filepath.Join(dir, "mail"))
	if err != nil {
		return err
	}
	defer box.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	cfgPath := filepath.Join(dir, "otklik.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, demoConfig, box.Addr(), base), 0o644); err != nil {
		return err
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	// The steps' own logs go to a file, so that the terminal shows the story.
	logFile, err := os.Create(filepath.Join(dir, "otklik.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	store.ReservePageCache() // it loads files
	a, err := openAppConfig(ctx, &env{stdout: e.stdout, stderr: logFile, getenv: e.getenv}, cfg, true)
	if err != nil {
		return err
	}
	defer a.close()
	// A few addresses do not exist: the server refuses them and they are
	// suppressed, as a real relay's 550 would do.
	box.Reject = func(rcpt string) error {
		if bouncing.MatchString(rcpt) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
		}
		return nil
	}

	res, err := a.ingest(ctx, "", nil)
	if err != nil {
		return err
	}
	say("2. ingest: %s", ingestLine(res))
	// The same export delivered again under another name changes nothing,
	// and an export overlapping the last two days adds nothing either.
	if err := redeliver(filepath.Join(dir, "drop"), drop.Files); err != nil {
		return err
	}
	if res, err = a.ingest(ctx, "", nil); err != nil {
		return err
	}
	say("   re-delivered and overlapping exports: %s", ingestLine(res))

	// The story goes on from now, or from the instant a test starts it
	// at (the files were taken on the real clock, their times real).
	offset := now.Sub(started)
	a.db.Now = func() time.Time { return time.Now().Add(offset) }
	pres, err := a.plan(ctx, false)
	if err != nil {
		return err
	}
	say("3. plan: %s", planLine(pres))

	t, err := mailer.LoadTemplates("")
	if err != nil {
		return err
	}
	sent, err := a.demoSendDue(ctx, t)
	if err != nil {
		return err
	}
	say("4. send: %d invitations sent inside each store's 10:00-20:00 window (clock simulated), %d refused by the server and suppressed, %d failed; saved as .eml in %s",
		sent.Sent, sent.Bounced, sent.Failed, filepath.Join(dir, "mail"))

	h, err := a.surveyHandler()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	answered, unsubscribed, err := demoAnswer(ctx, box.Messages())
	if err != nil {
		return err
	}
	say("5. survey: %d customers answered through the survey page at %s, %d unsubscribed in one click", answered, base, unsubscribed)
	answerDay := a.db.Now()
	thanks, err := a.send(ctx, t)
	if err != nil {
		return err
	}
	// Two days later, those who did not answer get one reminder.
	later := a.db.Now().Add(2*24*time.Hour + time.Hour)
	a.db.Now = func() time.Time { return later }
	pres, err = a.plan(ctx, false)
	if err != nil {
		return err
	}
	reminded, err := a.demoSendDue(ctx, t)
	if err != nil {
		return err
	}
	say("   %d thank-you emails with a promo code and alerts about negative answers to directors; two days later %d reminders planned, %d sent",
		thanks.Sent, pres.Reminders, reminded.Sent)
	if _, err := a.export(ctx, []time.Time{answerDay}); err != nil {
		return err
	}
	say("   answers, promo codes and unsubscribes written back for 1C in %s", filepath.Join(dir, "drop", "to-1c"))

	sender, err := a.smtpSender()
	if err != nil {
		return err
	}
	defer sender.Close()

	month := reports.Month(a.db.Now(), a.loc)
	path, err := a.report(ctx, month, "", sender, t)
	if err != nil {
		return err
	}
	say("6. report for %s: %s (emailed to the managers; each director got the workbook of their stores)", reports.MonthName(month), path)

	st, err := a.db.Status(ctx)
	if err != nil {
		return err
	}
	say("\nDone in %s.", time.Since(started).Round(100*time.Millisecond))
	say("  workbook:  %s", path)
	say("  emails:    %s (%d messages)", filepath.Join(dir, "mail"), len(box.Messages()))
	say("  database:  %s (%d customers, %d purchases, %d answers)", cfg.Database, st.Customers, st.Purchases, st.Responses)
	say("  log:       %s", logFile.Name())
	say("  try:       otklik --config %s status", cfgPath)
	return nil
}

// demoAnswer plays customers: for some of the invitations it follows the
// rating link from the email (a GET, which records nothing) and submits
// the form by POST, as a browser would.
func demoAnswer(ctx context.Context, msgs []inbox.Message) (answered, unsubscribed int, err error) {
	rng := rand.New(rand.NewPCG(7, 11))
	client := &http.Client{Timeout: 10 * time.Second}
	for i, m := range msgs {
		if i%3 != 0 && i%20 != 1 { // about a third answer, one in twenty unsubscribe
			continue
		}
		link, err := firstSurveyLink(m)
		if err != nil {
			return answered, unsubscribed, err
		}
		if link == "" {
			continue
		}
		if i%20 == 1 {
			// What a mailbox provider sends for RFC 8058 one-click.
			u := strings.Replace(link[:strings.Index(link, "?")], "/s/", "/u/", 1)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("List-Unsubscribe=One-Click"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := demoDo(client, req); err != nil {
				return answered, unsubscribed, fmt.Errorf("unsubscribe: %w", err)
			}
			unsubscribed++
			continue
		}
		ans := demoAnswers[rng.IntN(len(demoAnswers))]
		u, err := url.Parse(link)
		if err != nil {
			return answered, unsubscribed, err
		}
		u.RawQuery = fmt.Sprintf("r=%d", ans.rating)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err := demoDo(client, req); err != nil {
			return answered, unsubscribed, fmt.Errorf("open survey: %w", err)
		}
		form := url.Values{"rating": {fmt.Sprint(ans.rating)}, "nps": {fmt.Sprint(ans.nps)}, "comment": {ans.comment}}
		form["good"], form["bad"] = ans.good, ans.bad
		u.RawQuery = ""
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := demoDo(client, req); err != nil {
			return answered, unsubscribed, fmt.Errorf("answer survey: %w", err)
		}
		answered++
	}
	return answered, unsubscribed, nil
}

func demoDo(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", req.Method, req.URL.Path[:3], resp.Status)
	}
	return nil
}

// firstSurveyLink finds the first rating link in a message's text part.
func firstSurveyLink(m inbox.Message) (string, error) {
	text, err := m.Part("text/plain")
	if err != nil {
		return "", err
	}
	return surveyLink.FindString(text), nil
}

// redeliver drops a copy of the last purchases export under another name,
// and one export that repeats the last two days.
func redeliver(dir string, files []string) error {
	last, err := os.ReadFile(filepath.Join(dir, files[len(files)-1]))
	if err != nil {
		return err
	}
	prev, err := os.ReadFile(filepath.Join(dir, files[len(files)-2]))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "purchases_resent.csv"), last, 0o644); err != nil {
		return err
	}
	_, body, _ := strings.Cut(string(last), "\r\n") // without its header
	return os.WriteFile(filepath.Join(dir, "purchases_2days.csv"), append(prev, body...), 0o644)
}

// demoSendDue simulates the clock moving on: it sends what is due now,
// then steps to each later time a piece of mail falls due (the window
// opens at different instants in each time zone), sends what is due then,
// and leaves the clock two hours after the last.
func (a *app) demoSendDue(ctx context.Context, t *mailer.Templates) (mailer.SendResult, error) {
	var sent mailer.SendResult
	dues, err := a.db.DueTimes(ctx)
	if err != nil {
		return sent, err
	}
	// What is due already goes out at the current time, the rest at the
	// times it falls due.
	now := a.db.Now()
	times := []time.Time{now}
	for _, due := range dues {
		if due.After(now) {
			times = append(times, due)
		}
	}
	for _, at := range times {
		a.db.Now = func() time.Time { return at }
		r, err := a.send(ctx, t)
		if err != nil {
			return sent, err
		}
		sent.Sent += r.Sent
		sent.Bounced += r.Bounced
		sent.Failed += r.Failed + r.Unknown
	}
	if len(dues) > 0 {
		last := dues[len(dues)-1].Add(2 * time.Hour)
		if last.After(a.db.Now()) {
			a.db.Now = func() time.Time { return last }
		}
	}
	return sent, nil
}
