package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otklik/otklik/mailer"
)

// schedApp opens an app in the Vladivostok zone (UTC+10) whose clock is
// the returned pointer's value.
func schedApp(t *testing.T) (*app, *time.Time) {
	t.Helper()
	a := testApp(t, t.TempDir(), strings.Replace(validConfig, "Europe/Moscow", "Asia/Vladivostok", 1))
	now := new(time.Time)
	a.db.Now = func() time.Time { return *now }
	return a, now
}

// TestCatchUp: at start, a job runs if a scheduled time passed since its
// last success, judged in the configured zone; a report or summary never
// made before is not caught up.
func TestCatchUp(t *testing.T) {
	ctx := context.Background()
	a, now := schedApp(t)
	vl := a.loc
	if vl.String() != "Asia/Vladivostok" {
		t.Fatalf("zone %s", vl)
	}
	*now = time.Date(2026, 11, 23, 5, 0, 0, 0, vl) // 2026-11-22 19:00 UTC
	lastOK := map[string]time.Time{
		// Its 04:30 of today passed since yesterday's run.
		"missed": time.Date(2026, 11, 22, 4, 31, 0, 0, vl),
		// Ran at 04:31 today: the next is tomorrow.
		"done": time.Date(2026, 11, 23, 4, 31, 0, 0, vl),
		// Ran at 20:00 yesterday, local time: 04:30 local has passed
		// since, though 04:30 UTC has not.
		"zoned": time.Date(2026, 11, 22, 20, 0, 0, 0, vl),
	}
	for job, at := range lastOK {
		if err := a.db.RecordRun(ctx, job, at, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	// A failed run does not count as done.
	if err := a.db.RecordRun(ctx, "missed", time.Date(2026, 11, 23, 4, 30, 0, 0, vl), io.ErrUnexpectedEOF, ""); err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	job := func(name string) *scheduled {
		return &scheduled{name: name, spec: "30 4 * * *", a: a, fn: func(context.Context) error {
			ran[name]++
			return nil
		}}
	}
	a.catchUp(ctx, []*scheduled{job("missed"), job("done"), job("zoned"), job("never"), job("report"), job("summary")})
	want := map[string]int{"missed": 1, "zoned": 1, "never": 1}
	for _, name := range []string{"missed", "done", "zoned", "never", "report", "summary"} {
		if ran[name] != want[name] {
			t.Errorf("%s ran %d times at start, want %d", name, ran[name], want[name])
		}
	}
}

// TestScheduled_NoOverlapAndPanics: a run that finds the previous one
// going is skipped; a panic is recovered, recorded as a failed run and
// does not keep the job locked.
func TestScheduled_NoOverlapAndPanics(t *testing.T) {
	ctx := context.Background()
	a, now := schedApp(t)
	*now = time.Date(2026, 11, 23, 5, 0, 0, 0, a.loc)
	var calls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	j := &scheduled{name: "ingest", spec: "*/15 * * * *", a: a, fn: func(context.Context) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	}}
	done := make(chan struct{})
	go func() { j.run(ctx); close(done) }()
	<-started
	j.run(ctx) // overlaps the first: skipped
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d runs while the first was going, want 1", n)
	}
	close(release)
	<-done
	j.run(ctx)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d runs after the first ended, want 2", n)
	}

	boom := &scheduled{name: "watch", spec: "*/15 * * * *", a: a, fn: func(context.Context) error {
		if calls.Add(1) == 3 {
			panic("disk on fire")
		}
		return a.db.RecordRun(ctx, "watch", a.db.Now(), nil, "")
	}}
	boom.run(ctx)
	runs, err := a.db.LastRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var failed bool
	for _, r := range runs {
		if r.Job == "watch" && !r.OK && r.Detail == "panic: disk on fire" {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("the panic is not recorded as a failed run: %+v", runs)
	}
	boom.run(ctx) // not locked by the panic
	if last, err := a.db.LastSuccess(ctx, "watch"); err != nil || last.IsZero() {
		t.Fatalf("the run after a panic did not happen: %v %v", last, err)
	}
}

// TestReload: SIGHUP's reload takes edited templates; a broken one is
// refused and the ones in use stay.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	tdir := filepath.Join(dir, "mail")
	os.Mkdir(tdir, 0o755)
	subject := filepath.Join(tdir, "invitation.subject.txt")
	os.WriteFile(subject, []byte("Старая тема {{.StoreName}}"), 0o644)
	a := testApp(t, dir, validConfig+"templates: mail\n")
	h, err := a.surveyHandler()
	if err != nil {
		t.Fatal(err)
	}
	first, err := mailer.LoadTemplates(a.cfg.Templates)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl atomic.Pointer[mailer.Templates]
	tmpl.Store(first)
	subjectNow := func() string {
		r, err := tmpl.Load().Render("invitation", mailer.SampleData("invitation"))
		if err != nil {
			t.Fatal(err)
		}
		return r.Subject
	}
	os.WriteFile(subject, []byte("Новая тема {{.StoreName}}"), 0o644)
	a.reload(h, &tmpl)
	if s := subjectNow(); !strings.HasPrefix(s, "Новая тема") {
		t.Fatalf("after reload: %q", s)
	}
	os.WriteFile(subject, []byte("Сломанная {{.StoreName"), 0o644)
	a.reload(h, &tmpl)
	if s := subjectNow(); !strings.HasPrefix(s, "Новая тема") {
		t.Fatalf("a broken template replaced the working one: %q", s)
	}
}
