package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/reports"
)

func cmdReport(ctx context.Context, e *env, args []string) error {
	var month, out string
	var noEmail bool
	if _, err := flags("report", args, func(fs *flag.FlagSet) {
		fs.StringVar(&month, "month", "", "the month, YYYY-MM (default: the month just ended)")
		fs.StringVar(&out, "out", "", "the workbook to write (default: in reports.dir)")
		fs.BoolVar(&noEmail, "no-email", false, "write the workbook only")
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
	path, err := a.report(ctx, m, out, sender, t)
	if path != "" {
		fmt.Fprintln(e.stdout, "report:", path)
	}
	return err
}

// report writes the workbook of month and, with a sender, emails it to
// the managers.
func (a *app) report(ctx context.Context, month time.Time, out string, sender mailer.Sender, t *mailer.Templates) (string, error) {
	if out == "" {
		out = filepath.Join(a.cfg.Reports.Dir, "otklik-"+month.Format("2006-01")+".xlsx")
	}
	err := a.job(ctx, "report", func(ctx context.Context) (string, error) {
		if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
			return "", err
		}
		sum, err := reports.Build(ctx, a.db, month, out, a.cfg.Spool)
		if err != nil {
			return "", err
		}
		detail := fmt.Sprintf("%s: %d sent, %d answers", month.Format("2006-01"), sum.Stats.Sent, sum.Stats.Responses)
		if sender == nil {
			return detail, nil
		}
		if len(a.cfg.Reports.Managers) == 0 {
			a.log.Warn("report not emailed: reports.managers is empty")
			return detail + "; not emailed (no managers)", nil
		}
		if err := a.emailReport(ctx, sum, out, sender, t); err != nil {
			return detail, err
		}
		return fmt.Sprintf("%s; emailed to %d managers", detail, len(a.cfg.Reports.Managers)), nil
	})
	return out, err
}

func (a *app) emailReport(ctx context.Context, sum reports.Summary, path string, sender mailer.Sender, t *mailer.Templates) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	r, err := t.Render(mailer.KindReport, mailer.ReportData{
		Month: reports.MonthName(sum.Month), Sent: sum.Stats.Sent, Responses: sum.Stats.Responses,
		ResponseRate: reports.FormatPercent(sum.ResponseRate), CSI: reports.FormatNumber(sum.CSI, 2),
		NPS: reports.FormatNPS(sum.NPS), Negative: sum.Stats.Negative, FileName: name,
	})
	if err != nil {
		return err
	}
	from, err := mailer.ParseAddress(a.cfg.SMTP.From)
	if err != nil {
		return err
	}
	var to []*mail.Address
	var rcpts []string
	for _, m := range a.cfg.Reports.Managers {
		addr, err := mailer.ParseAddress(m)
		if err != nil {
			return err
		}
		to = append(to, addr)
		rcpts = append(rcpts, addr.Address)
	}
	msg, _, err := mailer.Compose(mailer.Message{
		From: from, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Date: a.db.Now(),
		Attachments: []mailer.Attachment{{
			Name: name, Data: data,
			ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		}},
	})
	if err != nil {
		return err
	}
	if err := sender.Send(ctx, mailer.Envelope{From: from.Address, To: rcpts}, msg); err != nil {
		return fmt.Errorf("email report: %w", err)
	}
	a.log.Info("report emailed", "file", name, "recipients", len(rcpts))
	return nil
}
