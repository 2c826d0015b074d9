package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/survey"
)

func cmdPreview(ctx context.Context, e *env, args []string) error {
	var out, dir string
	fs, err := flags("preview", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "write here instead of standard output")
		fs.StringVar(&dir, "templates", "", "template folder (default: the config's templates, else built-in)")
	})
	if err != nil {
		return err
	}
	kinds := append(append([]string{}, mailer.Kinds...), "page")
	if fs.NArg() != 1 {
		return &usageError{msg: "usage: otklik preview KIND [--out FILE]; KIND is one of " + strings.Join(kinds, ", ")}
	}
	kind := fs.Arg(0)
	if dir == "" {
		if cfg, err := LoadConfig(e.configPath); err == nil {
			dir = cfg.Templates
			if kind == "page" {
				dir = cfg.Survey.Pages
			}
		}
	}
	var body []byte
	switch kind {
	case "page":
		if body, err = survey.Preview(dir); err != nil {
			return err
		}
	default:
		t, err := mailer.LoadTemplates(dir)
		if err != nil {
			return err
		}
		r, err := t.Render(kind, mailer.SampleData(kind))
		if err != nil {
			return &usageError{msg: fmt.Sprintf("%v; KIND is one of %s", err, strings.Join(kinds, ", "))}
		}
		// A whole message, so that a mail client opens it as it will look.
		body, _, err = mailer.Compose(mailer.Message{
			From:    &mail.Address{Name: "Магазин", Address: "noreply@example.ru"},
			To:      []*mail.Address{{Name: "Анна Сергеевна", Address: "anna@example.ru"}},
			Subject: r.Subject, Text: r.Text, HTML: r.HTML, Date: time.Now(),
		})
		if err != nil {
			return err
		}
	}
	var w io.Writer = e.stdout
	if out != "" {
		if err := os.WriteFile(out, body, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "written:", out)
		return nil
	}
	_, err = w.Write(body)
	return err
}
