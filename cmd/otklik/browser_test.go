package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/mailer/inbox"
)

const chromium = "/usr/bin/chromium"

// TestBrowser_AnswerFromEmail: a customer opens the rating link from the
// email the test SMTP server captured, in a real headless Chromium at
// phone width, fills the survey and submits it; the answer is stored and
// its alert reaches the director with the comment escaped. A screenshot
// of the form at 375 px is kept in testdata/artifacts.
func TestBrowser_AnswerFromEmail(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("%s is missing: make test installs it", chromium)
		}
		t.Skip("chromium is not installed (make test installs it as root)")
	}
	ctx := context.Background()
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := t.TempDir()
	now := time.Now()
	if _, err := sample.Write(filepath.Join(dir, "drop"), sample.Options{Now: now, Customers: 40, Days: 1, Receipts: 30, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: office
    dir: drop
    ready:
      min_age: 0s
smtp:
  address: %s
  from: "Хофф <noreply@hoff.example.ru>"
  tls: none
survey:
  base_url: %s
  alerts:
    groups: ["quality@hoff.example.ru"]
`, box.Addr(), base)
	cfgPath := filepath.Join(dir, "otklik.yaml")
	os.WriteFile(cfgPath, []byte(cfgText), 0o644)
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openAppConfig(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if _, err := a.ingest(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.plan(ctx, false); err != nil {
		t.Fatal(err)
	}
	tm, err := mailer.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	// The morning after: send at the first due time.
	dues, _ := a.db.DueTimes(ctx)
	if len(dues) == 0 {
		t.Fatal("nothing planned")
	}
	due := dues[len(dues)-1]
	a.db.Now = func() time.Time { return due }
	if res, err := a.send(ctx, tm); err != nil || res.Sent == 0 {
		t.Fatalf("send: %+v %v", res, err)
	}
	h, err := a.surveyHandler()
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()

	msg := box.Messages()[0]
	link, err := firstSurveyLink(msg)
	if err != nil || link == "" {
		t.Fatalf("no survey link in the email: %v", err)
	}
	link = regexp.MustCompile(`r=\d`).ReplaceAllString(link, "r=2")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(375, 812))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	comment := `<img src=x onerror=alert(1)> Долго ждали консультанта`
	var shot []byte
	var checked bool
	var thanks string
	err = chromedp.Run(bctx,
		chromedp.EmulateViewport(375, 812),
		chromedp.Navigate(link),
		chromedp.WaitVisible(`form`, chromedp.ByQuery),
		chromedp.JavascriptAttribute(`input[name=rating][value="2"]`, "checked", &checked, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100),
		chromedp.Click(`input[name=nps][value="3"]`, chromedp.ByQuery),
		chromedp.Click(`input[name=bad][value="service"]`, chromedp.ByQuery),
		chromedp.SendKeys(`#comment`, comment, chromedp.ByQuery),
		chromedp.Submit(`form`, chromedp.ByQuery),
		// The answer page has a heading and no form.
		chromedp.WaitNotPresent(`form`, chromedp.ByQuery),
		chromedp.WaitVisible(`h1`, chromedp.ByQuery),
		chromedp.Text(`h1`, &thanks, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !checked {
		t.Error("the rating from the link is not preselected")
	}
	if !strings.Contains(thanks, "Спасибо") {
		t.Fatalf("after submitting: %q", thanks)
	}
	artifacts := filepath.Join("..", "..", "testdata", "artifacts")
	os.MkdirAll(artifacts, 0o755)
	if err := os.WriteFile(filepath.Join(artifacts, "survey-375.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	st, err := a.db.Status(ctx)
	if err != nil || st.Responses != 1 {
		t.Fatalf("responses = %d, %v", st.Responses, err)
	}
	before := len(box.Messages())
	if _, err := a.send(ctx, tm); err != nil {
		t.Fatal(err)
	}
	var alert *inbox.Message
	for _, m := range box.Messages()[before:] {
		if m.To[0] == "quality@hoff.example.ru" {
			alert = &m
		}
	}
	if alert == nil {
		t.Fatal("no alert reached the configured group")
	}
	html, err := alert.Part("text/html")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<img") || !strings.Contains(html, "&lt;img") {
		t.Fatal("the comment is not escaped in the alert")
	}
}
