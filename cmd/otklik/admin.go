package main

import (
	"context"
	"fmt"
	"html"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/store"
)

// notifyAdmin emails the administrator; a failure to do so is logged, as
// the trouble it reports is logged already.
func (a *app) notifyAdmin(ctx context.Context, subject, text string) {
	if len(a.cfg.Admin.Emails) == 0 {
		a.log.Warn("admin alert not emailed: admin.emails is empty", "subject", subject)
		return
	}
	if err := a.emailAdmin(ctx, subject, text); err != nil {
		a.log.Error("email admin alert", "subject", subject, "err", err)
	}
}

func (a *app) emailAdmin(ctx context.Context, subject, text string) error {
	from, err := mailer.ParseAddress(a.cfg.SMTP.From)
	if err != nil {
		return err
	}
	var to []*mail.Address
	var rcpts []string
	for _, e := range a.cfg.Admin.Emails {
		addr, err := mailer.ParseAddress(e)
		if err != nil {
			return err
		}
		to = append(to, addr)
		rcpts = append(rcpts, addr.Address)
	}
	msg, _, err := mailer.Compose(mailer.Message{
		From: from, To: to, Subject: "otklik: " + subject, Text: text, Date: a.db.Now(),
		HTML: "<pre style=\"font-family:monospace\">" + html.EscapeString(text) + "</pre>",
	})
	if err != nil {
		return err
	}
	sender, err := a.smtpSender()
	if err != nil {
		return err
	}
	defer sender.Close()
	return sender.Send(ctx, mailer.Envelope{From: from.Address, To: rcpts}, msg, nil)
}

// sourceHealth records each source's run and tells the administrator
// once when a source has failed admin.source_failures runs in a row, and
// once when it works again.
func (a *app) sourceHealth(ctx context.Context, outcomes map[string]error) {
	for _, s := range a.cfg.Sources {
		runErr, ran := outcomes[s.Name]
		if !ran {
			continue
		}
		h, err := a.db.SourceRun(ctx, s.Name, runErr, a.cfg.Admin.SourceFailures)
		if err != nil {
			a.log.Error("record source health", "source", s.Name, "err", err)
			continue
		}
		switch {
		case h.Down:
			a.notifyAdmin(ctx, fmt.Sprintf("источник %s недоступен", s.Name), sourceDownText(s, h))
		case h.Recovered:
			a.notifyAdmin(ctx, fmt.Sprintf("источник %s снова работает", s.Name),
				fmt.Sprintf("Источник %s (%s %s) снова доступен; файлы загружаются.\n", s.Name, s.Type, where(s)))
		}
	}
}

func sourceDownText(s SourceConfig, h store.SourceHealth) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Источник %s (%s %s) не отвечает %d запусков подряд.\n\n", s.Name, s.Type, where(s), h.Failures)
	fmt.Fprintf(&b, "Последняя ошибка:\n%s\n\n", h.LastErr)
	b.WriteString("Новые выгрузки 1С не загружаются, пока источник недоступен; остальные источники работают.\n")
	b.WriteString("Проверьте: otklik check\n")
	return b.String()
}

func where(s SourceConfig) string {
	if s.Type == "local" {
		return s.Dir
	}
	return s.Address + "/" + strings.TrimPrefix(s.Dir, "/")
}
