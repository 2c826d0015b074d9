package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/reports"
	"github.com/otklik/otklik/store"
	"github.com/otklik/otklik/survey"
	"github.com/robfig/cron/v3"
)

// cmdRun is the daemon: the survey web server, the monitoring server and
// the schedules, until the context ends (SIGTERM or SIGINT). SIGHUP
// reloads the email templates, the survey's questions and the dictionary.
func cmdRun(ctx context.Context, e *env, args []string) error {
	if _, err := flags("run", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	store.ReservePageCache() // it loads files
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	t, err := mailer.LoadTemplates(a.cfg.Templates)
	if err != nil {
		return &ConfigError{File: a.cfg.path, Key: "templates", Msg: err.Error()}
	}
	h, err := a.surveyHandler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.Survey.Listen)
	if err != nil {
		return fmt.Errorf("survey server: %w", err)
	}
	var adminLn net.Listener
	if a.cfg.Admin.Listen != "off" {
		if adminLn, err = net.Listen("tcp", a.cfg.Admin.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("monitoring server: %w", err)
		}
	}
	return a.serve(ctx, ln, adminLn, h, t)
}

// serve runs the servers and the scheduled jobs until ctx ends.
func (a *app) serve(ctx context.Context, ln, adminLn net.Listener, h *survey.Handler, t *mailer.Templates) error {
	a.metrics = newMetrics(ctx, a.db)
	var tmpl atomic.Pointer[mailer.Templates]
	tmpl.Store(t)
	newServer := func(handler http.Handler) *http.Server {
		return &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
	}
	srv := newServer(h)
	srvErr := make(chan error, 2)
	go func() { srvErr <- srv.Serve(ln) }()
	a.log.Info("survey server listening", "addr", ln.Addr().String())
	var adminSrv *http.Server
	if adminLn != nil {
		adminSrv = newServer(a.adminHandler(a.metrics))
		go func() { srvErr <- adminSrv.Serve(adminLn) }()
		a.log.Info("monitoring server listening", "addr", adminLn.Addr().String())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			a.reload(h, &tmpl)
		}
	}()

	jobs := a.jobs(&tmpl)
	c := cron.New(cron.WithLocation(a.loc), cron.WithParser(cron.NewParser(
		cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow)))
	for _, j := range jobs {
		for _, spec := range append([]string{j.spec}, j.more...) {
			if _, err := c.AddFunc(spec, func() { j.run(ctx) }); err != nil {
				return fmt.Errorf("schedule %s: %w", j.name, err)
			}
		}
	}
	c.Start()
	var catchingUp sync.WaitGroup
	catchingUp.Go(func() { a.catchUp(ctx, jobs) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-srvErr:
	}
	a.log.Info("stopping: finishing the jobs in hand")
	stopped := c.Stop()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 25*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	if adminSrv != nil {
		adminSrv.Shutdown(shutdown)
	}
	idle := make(chan struct{})
	go func() {
		<-stopped.Done()
		catchingUp.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-shutdown.Done():
		a.log.Warn("jobs still running at shutdown")
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// reload rereads the templates, questions and dictionary; on an error
// the old ones stay and the error is logged with its file and line.
func (a *app) reload(h *survey.Handler, tmpl *atomic.Pointer[mailer.Templates]) {
	t, err := mailer.LoadTemplates(a.cfg.Templates)
	if err != nil {
		a.log.Error("reload templates: kept the old ones", "err", err)
	} else {
		tmpl.Store(t)
	}
	q, err := loadQuestions(a.cfg.Survey.Questions)
	if err != nil {
		a.log.Error("reload questions: kept the old ones", "err", err)
		return
	}
	d, err := survey.LoadDictionary(a.cfg.Survey.Dictionary)
	if err != nil {
		a.log.Error("reload dictionary: kept the old one", "err", err)
		return
	}
	if err := h.Reload(q, d); err != nil {
		a.log.Error("reload survey texts: kept the old ones", "err", err)
		return
	}
	a.log.Info("reloaded templates, questions and dictionary")
}

// scheduled is a job with its own lock: a run that finds the previous one
// still going is skipped, and a panic is recovered and recorded as a
// failed run (robfig/cron's SkipIfStillRunning+Recover chain loses its
// lock on panic; robfig/cron#366).
type scheduled struct {
	name string
	spec string
	more []string // further schedules of the same job, sharing its lock
	fn   func(context.Context) error
	a    *app
	mu   sync.Mutex
}

func (j *scheduled) run(ctx context.Context) {
	log := j.a.log
	if !j.mu.TryLock() {
		log.Warn("previous run still going, skipped", "job", j.name)
		return
	}
	defer j.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("panic: %v", r)
			log.Error("job panicked", "job", j.name, "panic", fmt.Sprint(r))
			j.a.metrics.observe(j.name, time.Since(start), err)
			j.a.db.RecordRun(context.WithoutCancel(ctx), j.name, j.a.db.Now(), err, "")
		}
	}()
	if err := j.fn(ctx); err != nil {
		log.Error("job failed", "job", j.name, "err", err, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	log.Info("job done", "job", j.name, "duration", time.Since(start).Round(time.Millisecond))
}

func (a *app) jobs(tmpl *atomic.Pointer[mailer.Templates]) []*scheduled {
	s := a.cfg.Schedule
	plain := func(name string, f func(context.Context) (string, error)) func(context.Context) error {
		return func(ctx context.Context) error { return a.job(ctx, name, f) }
	}
	return []*scheduled{
		{name: "ingest", spec: s.Ingest, a: a, fn: func(ctx context.Context) error {
			if _, err := a.ingest(ctx, "", nil); err != nil {
				return err
			}
			_, err := a.plan(ctx, false)
			return err
		}},
		// Alerts and thank-yous run through the send job too, on its own
		// schedule but under the same lock: two senders must never run
		// at once.
		{name: "send", spec: s.Send, more: []string{s.Alerts}, a: a, fn: func(ctx context.Context) error {
			if _, err := a.plan(ctx, false); err != nil {
				return err
			}
			_, err := a.send(ctx, tmpl.Load())
			return err
		}},
		{name: "export", spec: s.Export, a: a, fn: func(ctx context.Context) error {
			_, err := a.export(ctx, nil)
			return err
		}},
		{name: "report", spec: s.Report, a: a, fn: func(ctx context.Context) error {
			sender, err := a.smtpSender()
			if err != nil {
				return err
			}
			defer sender.Close()
			month := reports.Month(a.db.Now(), a.loc).AddDate(0, -1, 0)
			_, err = a.report(ctx, month, "", sender, tmpl.Load())
			return err
		}},
		{name: "backup", spec: s.Backup, a: a, fn: plain("backup", a.backup)},
		{name: "retention", spec: s.Retention, a: a, fn: plain("retention", a.retention)},
		{name: "summary", spec: s.Summary, a: a, fn: plain("summary", a.summary)},
		{name: "watch", spec: s.Watch, a: a, fn: plain("watch", a.watch)},
	}
}

// catchUp runs, once at start, each job whose last scheduled time passed
// since its last success: cron itself never runs what it missed while
// the server was down.
func (a *app) catchUp(ctx context.Context, jobs []*scheduled) {
	now := a.db.Now()
	for _, j := range jobs {
		last, err := a.db.LastSuccess(ctx, j.name)
		if err != nil {
			a.log.Error("catch-up", "job", j.name, "err", err)
			continue
		}
		if last.IsZero() && (j.name == "report" || j.name == "summary") {
			continue // a new installation has no month or day to report
		}
		sched, err := cron.ParseStandard(j.spec)
		if err != nil {
			continue
		}
		if last.IsZero() || !sched.Next(last.In(a.loc)).After(now) {
			a.log.Info("catching up a missed run", "job", j.name, "last_success", last)
			j.run(ctx)
		}
	}
}
