package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/reports"
	"github.com/robfig/cron/v3"
)

// cmdRun is the daemon: the survey web server and the schedules, until
// the context ends (SIGTERM or SIGINT).
func cmdRun(ctx context.Context, e *env, args []string) error {
	if _, err := flags("run", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
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
		return &ConfigError{File: a.cfg.path, Key: "survey.pages", Msg: err.Error()}
	}
	ln, err := net.Listen("tcp", a.cfg.Survey.Listen)
	if err != nil {
		return fmt.Errorf("survey server: %w", err)
	}
	return a.serve(ctx, ln, h, t)
}

// serve runs the survey server on ln and the scheduled jobs until ctx ends.
func (a *app) serve(ctx context.Context, ln net.Listener, h http.Handler, t *mailer.Templates) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	a.log.Info("survey server listening", "addr", ln.Addr().String())

	jobs := a.jobs(t)
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

// scheduled is a job with its own lock: a run that finds the previous one
// still going is skipped, and a panic is recovered and recorded as a
// failed run (robfig/cron's SkipIfStillRunning+Recover chain loses its
// lock on panic; robfig/cron#366).
type scheduled struct {
	name string
	spec string
	more []string // further schedules of the same job, sharing its lock
	fn   func(context.Context) error
	log  *slog.Logger
	mu   sync.Mutex
}

func (j *scheduled) run(ctx context.Context) {
	if !j.mu.TryLock() {
		j.log.Warn("previous run still going, skipped", "job", j.name)
		return
	}
	defer j.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			j.log.Error("job panicked", "job", j.name, "panic", fmt.Sprint(r))
		}
	}()
	start := time.Now()
	if err := j.fn(ctx); err != nil {
		j.log.Error("job failed", "job", j.name, "err", err, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	j.log.Info("job done", "job", j.name, "duration", time.Since(start).Round(time.Millisecond))
}

func (a *app) jobs(t *mailer.Templates) []*scheduled {
	s := a.cfg.Schedule
	return []*scheduled{
		{name: "ingest", spec: s.Ingest, log: a.log, fn: func(ctx context.Context) error {
			if _, err := a.ingest(ctx, "", nil); err != nil {
				return err
			}
			_, err := a.plan(ctx, false)
			return err
		}},
		// Alerts and thank-yous run through the send job too, on its own
		// schedule but under the same lock: two senders must never run
		// at once.
		{name: "send", spec: s.Send, more: []string{s.Alerts}, log: a.log, fn: func(ctx context.Context) error {
			if _, err := a.plan(ctx, false); err != nil {
				return err
			}
			_, err := a.send(ctx, t)
			return err
		}},
		{name: "export", spec: s.Export, log: a.log, fn: func(ctx context.Context) error {
			_, err := a.export(ctx, nil)
			return err
		}},
		{name: "report", spec: s.Report, log: a.log, fn: func(ctx context.Context) error {
			sender, err := a.smtpSender()
			if err != nil {
				return err
			}
			defer sender.Close()
			month := reports.Month(a.db.Now(), a.loc).AddDate(0, -1, 0)
			_, err = a.report(ctx, month, "", sender, t)
			return err
		}},
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
		if last.IsZero() && j.name == "report" {
			continue // a new installation has no month to catch up
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
