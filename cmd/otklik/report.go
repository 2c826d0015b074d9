package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/reports"
	"github.com/otklik/otklik/store"
)

func cmdReport(ctx context.Context, e *env, args []string) error {
	var month, out string
	var noEmail bool
	if _, err := flags("report", args, func(fs *flag.FlagSet) {
		fs.StringVar(&month, "month", "", "the month, YYYY-MM (default: the month just ended)")
		fs.StringVar(&out, "out", "", "the workbook to write (default: in reports.dir)")
		fs.BoolVar(&noEmail, "no-email", false, "write the workbooks only")
	}); err != nil {
		return err
	}
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	m := reports.Month(a.db.Now(), a.loc).AddDate(0, -1, 0)
	if month != "" {
		if m, err = reports.ParseMonth(month, a.loc); err != nil {
			return &usageError{msg: "--month: " + err.Error()}
		}
	}
	var sender mailer.Sender
	var t *mailer.Templates
	if !noEmail {
		if t, err = mailer.LoadTemplates(a.cfg.Templates); err != nil {
			return &ConfigError{File: a.cfg.path, Key: "templates", Msg: err.Error()}
		}
		s, err := a.smtpSender()
		if err != nil {
			return err
		}
		defer s.Close()
		sender = s
	}
	a.interactive()
	path, err := a.report(ctx, m, out, sender, t)
	a.progress.done()
	if path != "" {
		fmt.Fprintln(e.stdout, "report:", path)
	}
	return err
}

// report writes the month's workbook for the whole chain and, with
// reports.directors, one for each director's stores; with a sender it
// emails the chain's to the managers and each director theirs.
func (a *app) report(ctx context.Context, month time.Time, out string, sender mailer.Sender, t *mailer.Templates) (string, error) {
	if out == "" {
		out = filepath.Join(a.cfg.Reports.Dir, "otklik-"+month.Format("2006-01")+".xlsx")
	}
	err := a.job(ctx, "report", func(ctx context.Context) (string, error) {
		if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
			return "", err
		}
		opts := reports.Options{Month: month, Zone: a.loc, MinAnswers: a.cfg.Reports.MinAnswers, TmpDir: a.cfg.Spool}
		a.progress.show(true, "report: the chain's workbook")
		sum, err := reports.Build(ctx, a.db, opts, out)
		if err != nil {
			return "", err
		}
		detail := fmt.Sprintf("%s: %d sent, %d answers", month.Format("2006-01"), sum.Stats.Sent, sum.Stats.Responses)
		var errs []error
		emailed := 0
		if sender != nil {
			if len(a.cfg.Reports.Managers) == 0 {
				a.log.Warn("report not emailed: reports.managers is empty")
			} else if err := a.emailReport(ctx, sum, out, a.cfg.Reports.Managers, sender, t); err != nil {
				errs = append(errs, err)
			} else {
				emailed += len(a.cfg.Reports.Managers)
			}
		}
		if *a.cfg.Reports.Directors {
			directors, err := a.db.Directors(ctx)
			if err != nil {
				return detail, err
			}
			emails := make([]string, 0, len(directors))
			for d := range directors {
				emails = append(emails, d)
			}
			sort.Strings(emails)
			for i, d := range emails {
				o := opts
				o.Scope, o.ScopeName = store.Scope(directors[d]), "магазины "+strings.Join(directors[d], ", ")
				local, _, _ := strings.Cut(d, "@")
				path := strings.TrimSuffix(out, ".xlsx") + "-" + fileSafe(local) + ".xlsx"
				a.progress.show(true, "report: director %d of %d", i+1, len(emails))
				dsum, err := reports.Build(ctx, a.db, o, path)
				if err != nil {
					return detail, err
				}
				if sender == nil {
					continue
				}
				if err := a.emailReport(ctx, dsum, path, []string{d}, sender, t); err != nil {
					errs = append(errs, fmt.Errorf("director %s: %w", mailer.Mask(d), err))
					continue
				}
				emailed++
			}
			detail += fmt.Sprintf("; %d director versions", len(emails))
		}
		return fmt.Sprintf("%s; emailed to %d addresses", detail, emailed), errors.Join(errs...)
	})
	return out, err
}

// fileSafe keeps letters, digits, '-' and '.' of a name for a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

func (a *app) emailReport(ctx context.Context, sum reports.Summary, path string, to []string, sender mailer.Sender, t *mailer.Templates) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	r, err := t.Render(mailer.KindReport, mailer.ReportData{
		Month: reports.MonthName(sum.Month), Scope: sum.Scope, Sent: sum.Fig.Sent, Responses: sum.Fig.Answers,
		ResponseRate: reports.FormatPercent(sum.Fig.ResponseRate), CSI: reports.FormatNumber(sum.Fig.CSI, 2),
		NPS: reports.FormatNPS(sum.Fig.NPS), Negative: sum.Fig.Negative, FileName: name, Highlights: sum.Movements,
	})
	if err != nil {
		return err
	}
	from, err := mailer.ParseAddress(a.cfg.SMTP.From)
	if err != nil {
		return err
	}
	var addrs []*mail.Address
	var rcpts []string
	for _, m := range to {
		addr, err := mailer.ParseAddress(m)
		if err != nil {
			return err
		}
		addrs = append(addrs, addr)
		rcpts = append(rcpts, addr.Address)
	}
	msg, _, err := mailer.Compose(mailer.Message{
		From: from, To: addrs, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Date: a.db.Now(),
		Attachments: []mailer.Attachment{{
			Name: name, Data: data,
			ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		}},
	})
	if err != nil {
		return err
	}
	if err := sender.Send(ctx, mailer.Envelope{From: from.Address, To: rcpts}, msg, nil); err != nil {
		return fmt.Errorf("email report: %w", err)
	}
	a.log.Info("report emailed", "file", name, "recipients", len(rcpts))
	return nil
}
