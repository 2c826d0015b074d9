package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/otklik/otklik/mailer"
)

func cmdSend(ctx context.Context, e *env, args []string) error {
	if _, err := flags("send", args, func(*flag.FlagSet) {}); err != nil {
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
	a.interactive()
	res, err := a.send(ctx, t)
	a.progress.done()
	fmt.Fprintln(e.stdout, sendLine(res))
	return err
}

func (a *app) send(ctx context.Context, t *mailer.Templates) (mailer.SendResult, error) {
	var res mailer.SendResult
	err := a.job(ctx, "send", func(ctx context.Context) (string, error) {
		d, err := a.dispatcher(t)
		if err != nil {
			return "", err
		}
		res, err = d.Send(ctx)
		return sendLine(res), err
	})
	return res, err
}

func sendLine(r mailer.SendResult) string {
	return fmt.Sprintf("mail: %d sent, %d to retry, %d bounced, %d failed, %d unknown, %d expired",
		r.Sent, r.Retry, r.Bounced, r.Failed, r.Unknown, r.Expired)
}
