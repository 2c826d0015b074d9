package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"gopkg.in/yaml.v3"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/store"
	"github.com/otklik/otklik/survey"
)

// app is a configuration with the parts built from it.
type app struct {
	cfg      *Config
	env      *env
	log      *slog.Logger
	loc      *time.Location
	db       *store.DB
	lock     *os.File
	metrics  *metrics  // the daemon's; nil for one-off commands
	progress *progress // a progress line on a terminal; nil otherwise
}

// interactive shows a progress line instead of info log lines when the
// command runs on a terminal; warnings and errors are still logged.
func (a *app) interactive() {
	if a.progress = newProgress(a.env.stderr); a.progress != nil {
		a.log = newLogger(a.env, LogConfig{Level: "warn", Format: a.cfg.Log.Format})
	}
}

// openApp loads the config and opens the database. With exclusive set it
// also takes the instance lock, so that two processes never run jobs on
// one database at once.
func openApp(ctx context.Context, e *env, exclusive bool) (*app, error) {
	cfg, err := LoadConfig(e.configPath)
	if err != nil {
		return nil, err
	}
	return openAppConfig(ctx, e, cfg, exclusive)
}

func openAppConfig(ctx context.Context, e *env, cfg *Config, exclusive bool) (*app, error) {
	a := &app{cfg: cfg, env: e, loc: cfg.Location(), log: newLogger(e, cfg.Log)}
	if err := os.MkdirAll(filepath.Dir(cfg.Database), 0o750); err != nil {
		return nil, fmt.Errorf("database folder: %w", err)
	}
	if exclusive {
		lock, err := lockInstance(cfg.Database + ".lock")
		if err != nil {
			return nil, err
		}
		a.lock = lock
	}
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		a.close()
		return nil, err
	}
	a.db = db
	return a, nil
}

func (a *app) close() {
	if a.db != nil {
		a.db.Close()
	}
	if a.lock != nil {
		a.lock.Close() // releases the flock
	}
}

// lockInstance takes an exclusive lock on path; the file holds the PID of
// the holder so that the refusal can name it.
func lockInstance(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := strings.TrimSpace(string(b[:n]))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another otklik (pid %s) is using this database; lock %s", holder, path)
		}
		return nil, fmt.Errorf("instance lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func newLogger(e *env, c LogConfig) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// specs builds the sources of the configuration, reading their secrets.
func (a *app) specs() ([]etl.SourceSpec, error) {
	var out []etl.SourceSpec
	for i, s := range a.cfg.Sources {
		src, err := a.source(i, s)
		if err != nil {
			return nil, err
		}
		after := map[string]etl.After{"keep": etl.Keep, "move": etl.Move, "delete": etl.Delete}[s.After]
		out = append(out, etl.SourceSpec{
			Name: s.Name, Source: src, Patterns: s.Patterns, Encoding: s.Encoding, Encodings: s.Encodings, Columns: s.Columns,
			After: after, ProcessedDir: s.ProcessedDir,
			Ready: etl.Readiness{
				MinAge: time.Duration(s.Ready.MinAge), StableFor: time.Duration(s.Ready.StableFor),
				MarkerSuffixes: s.Ready.MarkerSuffixes, DropMarker: s.Ready.DropMarker,
			},
		})
	}
	return out, nil
}

func (a *app) source(i int, s SourceConfig) (etl.Source, error) {
	key := fmt.Sprintf("sources[%d]", i)
	cfgErr := func(err error) error {
		return &ConfigError{File: a.cfg.path, Line: a.cfg.lines[key], Key: key, Msg: err.Error()}
	}
	password, err := secret(key+".password", s.PasswordEnv, s.PasswordFile)
	if err != nil {
		return nil, cfgErr(err)
	}
	switch s.Type {
	case "local":
		return &etl.Local{Dir: s.Dir}, nil
	case "ftp", "ftps":
		cfg := etl.FTPConfig{
			Address: s.Address, User: s.User, Password: password, Dir: s.Dir,
			DisableEPSV: s.DisableEPSV, DisableMLSD: s.DisableMLSD, NameEncoding: s.NameEncoding,
			Timeout: time.Duration(s.Timeout),
		}
		if s.User == "anonymous" && password == "" {
			cfg.Password = "otklik@"
		}
		if s.ServerTimezone != "" {
			cfg.Location, _ = time.LoadLocation(s.ServerTimezone)
		}
		if s.Type == "ftps" {
			cfg.TLS = map[string]string{"explicit": etl.FTPExplicit, "implicit": etl.FTPImplicit}[s.TLS]
			cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			if s.CAFile != "" {
				pem, err := os.ReadFile(s.CAFile)
				if err != nil {
					return nil, cfgErr(fmt.Errorf("ca_file: %w", err))
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, cfgErr(fmt.Errorf("ca_file %s holds no PEM certificate", s.CAFile))
				}
				cfg.TLSConfig.RootCAs = pool
			}
		}
		return etl.NewFTP(cfg), nil
	case "sftp":
		pass, err := secret(key+".key_passphrase", s.KeyPassphraseEnv, "")
		if err != nil {
			return nil, cfgErr(err)
		}
		return etl.NewSFTP(etl.SFTPConfig{
			Address: s.Address, User: s.User, Password: password, KeyFile: s.KeyFile, KeyPassphrase: pass,
			KnownHosts: s.KnownHosts, Dir: s.Dir, Timeout: time.Duration(s.Timeout),
		}), nil
	}
	return nil, cfgErr(fmt.Errorf("type %q is not supported", s.Type))
}

func (a *app) ingester() *etl.Ingester {
	in := &etl.Ingester{DB: a.db, Spool: a.cfg.Spool, Zone: a.loc, Log: a.log, Now: a.db.Now, KeepDays: a.cfg.SpoolKeepDays,
		MaxFileBytes: int64(a.cfg.MaxFileMB) << 20}
	if p := a.progress; p != nil {
		in.Progress = func(source string, done, total int, rows int64) {
			p.show(done == total, "ingest %s %s %d/%d files, %d rows", source, bar(done, total), done, total, rows)
		}
	}
	return in
}

func (a *app) planner() *mailer.Planner {
	w, _ := mailer.ParseWindow(a.cfg.Survey.Window) // validated with the config
	s := a.cfg.Survey
	return &mailer.Planner{
		DB: a.db, Zone: a.loc, Window: w, Log: a.log,
		MaxAge:        time.Duration(s.MaxAgeDays) * 24 * time.Hour,
		Cooldown:      time.Duration(s.CooldownDays) * 24 * time.Hour,
		ReminderAfter: time.Duration(s.ReminderDays) * 24 * time.Hour,
		Sampling: mailer.Sampling{Targets: s.Sampling.Targets, DefaultTarget: s.Sampling.DefaultTarget,
			PriorRate: s.Sampling.PriorResponseRate},
	}
}

// smtpSender builds the SMTP sender, reading its password.
func (a *app) smtpSender() (*mailer.SMTPSender, error) {
	c := a.cfg.SMTP
	pw, err := secret("smtp.password", c.PasswordEnv, c.PasswordFile)
	if err != nil {
		return nil, &ConfigError{File: a.cfg.path, Msg: err.Error()}
	}
	hello := c.Hello
	if hello == "" {
		hello, _ = os.Hostname()
	}
	return mailer.NewSMTPSender(mailer.SMTPConfig{
		Address: c.Address, TLS: c.TLS, Hello: hello, User: c.User, Password: pw,
		Timeout: time.Duration(c.Timeout),
	}), nil
}

// dispatcher builds the outbox sender: max_conns SMTP connections,
// rate limits and DKIM from the config.
func (a *app) dispatcher(t *mailer.Templates) (*mailer.Dispatcher, error) {
	c := a.cfg.SMTP
	from, err := mailer.ParseAddress(c.From)
	if err != nil {
		return nil, &ConfigError{File: a.cfg.path, Key: "smtp.from", Msg: err.Error()}
	}
	if _, err := a.smtpSender(); err != nil { // the password must be readable
		return nil, err
	}
	d := &mailer.Dispatcher{
		DB: a.db, Templates: t, From: from, BaseURL: a.cfg.Survey.BaseURL, Zone: a.loc, Log: a.log,
		NewSender: func() mailer.Sender {
			s, _ := a.smtpSender()
			return s
		},
		Conns: c.MaxConns, PerSecond: c.RatePerSec, PerHour: c.MaxPerHour, UnsubscribeMailto: c.UnsubscribeMailto,
	}
	if p := a.progress; p != nil {
		d.Progress = func(sent, failed int) { p.show(false, "send: %d sent, %d not sent", sent, failed) }
	}
	if c.DKIM.KeyFile != "" {
		key, err := mailer.LoadDKIMKey(c.DKIM.KeyFile)
		if err != nil {
			return nil, &ConfigError{File: a.cfg.path, Key: "smtp.dkim.key_file", Msg: err.Error()}
		}
		d.DKIM = &mailer.DKIM{Domain: c.DKIM.Domain, Selector: c.DKIM.Selector, Key: key}
	}
	return d, nil
}

// job runs one step and records its outcome for status.
func (a *app) job(ctx context.Context, name string, fn func(context.Context) (string, error)) error {
	defer memory.enter(name)()
	started := a.db.Now()
	clock := time.Now()
	detail, err := fn(ctx)
	a.metrics.observe(name, time.Since(clock), err)
	if rerr := a.db.RecordRun(context.WithoutCancel(ctx), name, started, err, detail); rerr != nil {
		a.log.Error("record run", "job", name, "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// surveyHandler builds the survey site from the config.
func (a *app) surveyHandler() (*survey.Handler, error) {
	s := a.cfg.Survey
	o := survey.Options{Pages: s.Pages, Zone: a.loc, Log: a.log, AlertAt: s.Alerts.Threshold,
		PerIPRate: s.PerIPRate, RealIPHeader: s.RealIPHeader}
	for _, g := range s.Alerts.Groups {
		if addr, err := mailer.ParseAddress(g); err == nil {
			o.AlertGroups = append(o.AlertGroups, addr.Address)
		}
	}
	if *s.ThankYou {
		o.ThanksWithin = 3 * 24 * time.Hour
	}
	q, err := loadQuestions(s.Questions)
	if err != nil {
		return nil, &ConfigError{File: a.cfg.path, Key: "survey.questions", Msg: err.Error()}
	}
	o.Questions = &q
	if o.Dictionary, err = survey.LoadDictionary(s.Dictionary); err != nil {
		return nil, &ConfigError{File: a.cfg.path, Key: "survey.dictionary", Msg: err.Error()}
	}
	h, err := survey.New(a.db, o)
	if err != nil {
		return nil, &ConfigError{File: a.cfg.path, Key: "survey.pages", Msg: err.Error()}
	}
	return h, nil
}

// loadQuestions reads the survey's questions from a YAML file, strictly;
// keys left out keep their built-in texts.
func loadQuestions(path string) (survey.Questions, error) {
	q := survey.DefaultQuestions()
	if path == "" {
		return q, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return q, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&q); err != nil && !errors.Is(err, io.EOF) {
		return q, fmt.Errorf("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := q.Check(); err != nil {
		return q, fmt.Errorf("%s: %v", path, err)
	}
	return q, nil
}
