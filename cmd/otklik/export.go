package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/otklik/otklik/etl"
)

// cmdExport writes the answers, promo codes and unsubscribes of a day
// (by default every day since the last export, up to yesterday) for 1C.
func cmdExport(ctx context.Context, e *env, args []string) error {
	var day string
	if _, err := flags("export", args, func(fs *flag.FlagSet) {
		fs.StringVar(&day, "day", "", "the day to export, YYYY-MM-DD (default: every day since the last export, up to yesterday)")
	}); err != nil {
		return err
	}
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	var days []time.Time
	if day != "" {
		d, err := time.ParseInLocation("2006-01-02", day, a.loc)
		if err != nil {
			return &usageError{msg: fmt.Sprintf("--day %q is not a date like 2026-11-22", day)}
		}
		days = []time.Time{d}
	}
	n, err := a.export(ctx, days)
	fmt.Fprintf(e.stdout, "exported %d days\n", n)
	return err
}

// export writes each day's files into SPOOL/outbound/DAY/ and uploads them
// to the outbound folder of every source that has one. Without days it
// catches up from the last exported day to yesterday (a month at most).
func (a *app) export(ctx context.Context, days []time.Time) (int, error) {
	done := 0
	err := a.job(ctx, "export", func(ctx context.Context) (string, error) {
		if days == nil {
			var err error
			if days, err = a.daysToExport(ctx); err != nil {
				return "", err
			}
		}
		specs, err := a.specs()
		if err != nil {
			return "", err
		}
		defer func() {
			for _, s := range specs {
				s.Source.Close()
			}
		}()
		x := &etl.Exporter{DB: a.db, Zone: a.loc}
		var errs []error
		for _, d := range days {
			files, err := x.Files(ctx, d)
			if err != nil {
				return "", err
			}
			dir := filepath.Join(a.cfg.Spool, "outbound", d.Format("2006-01-02"))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return "", err
			}
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o640); err != nil {
					return "", err
				}
			}
			dayErr := a.upload(ctx, specs, files)
			if dayErr != nil {
				errs = append(errs, dayErr)
				continue // the next run tries this day again
			}
			if err := a.db.MarkExported(ctx, d.Format("2006-01-02")); err != nil {
				return "", err
			}
			done++
		}
		return fmt.Sprintf("%d days exported", done), errors.Join(errs...)
	})
	return done, err
}

func (a *app) upload(ctx context.Context, specs []etl.SourceSpec, files []etl.OutFile) error {
	var errs []error
	for i, s := range specs {
		dir := a.cfg.Sources[i].OutboundDir
		if dir == "" {
			continue
		}
		u, ok := s.Source.(etl.Uploader)
		if !ok {
			continue
		}
		for _, f := range files {
			if err := u.Put(ctx, dir, f.Name, bytes.NewReader(f.Data)); err != nil {
				errs = append(errs, fmt.Errorf("source %s: %w", s.Name, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// daysToExport lists the days after the last exported one up to
// yesterday, at most 31; on a first run, yesterday.
func (a *app) daysToExport(ctx context.Context) ([]time.Time, error) {
	last, err := a.db.LastExport(ctx)
	if err != nil {
		return nil, err
	}
	now := a.db.Now().In(a.loc)
	yesterday := time.Date(now.Year(), now.Month(), now.Day()-1, 0, 0, 0, 0, a.loc)
	from := yesterday
	if last != "" {
		if d, err := time.ParseInLocation("2006-01-02", last, a.loc); err == nil {
			from = d.AddDate(0, 0, 1)
		}
	}
	if yesterday.Sub(from) > 31*24*time.Hour {
		from = yesterday.AddDate(0, 0, -30)
	}
	var days []time.Time
	for d := from; !d.After(yesterday); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return days, nil
}
