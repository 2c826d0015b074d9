package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/survey"
)

// cmdCheck validates the configuration (exit 2 if it is wrong), then tries
// every dependency and prints a table; any failure makes it exit 1.
func cmdCheck(ctx context.Context, e *env, args []string) error {
	if _, err := flags("check", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	cfg, err := LoadConfig(e.configPath)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	failed := 0
	row := func(what string, err error, ok string) {
		if err != nil {
			failed++
			fmt.Fprintf(w, "%s\tFAIL\t%v\n", what, err)
			return
		}
		fmt.Fprintf(w, "%s\tOK\t%s\n", what, ok)
	}
	row("config", nil, cfg.path)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	a, err := openAppConfig(ctx, e, cfg, false)
	if err != nil {
		row("database", err, "")
	} else {
		defer a.close()
		row("database", a.db.Ping(ctx), cfg.Database)
		specs, err := a.specs()
		if err != nil {
			row("sources", err, "")
		}
		for _, s := range specs {
			entries, err := s.Source.List(ctx)
			s.Source.Close()
			if err != nil {
				row("source "+s.Name, err, "")
				continue
			}
			patterns := s.Patterns
			if patterns == nil {
				patterns = etl.DefaultPatterns
			}
			var names []string
			for _, en := range entries {
				if etl.MatchFeed(en.Name, patterns) != "" {
					names = append(names, en.Name)
				}
			}
			row("source "+s.Name, nil, fmt.Sprintf("%d files match a feed%s", len(names), preview(names)))
		}
		sender, err := a.smtpSender()
		var offered []string
		if err == nil {
			offered, err = sender.Check(ctx)
		}
		row("smtp "+cfg.SMTP.Address, err, "connected, hello"+map[bool]string{true: ", authenticated", false: ""}[cfg.SMTP.User != ""]+
			offers(offered))
	}
	_, err = mailer.LoadTemplates(cfg.Templates)
	row("email templates", err, orBuiltIn(cfg.Templates))
	_, err = survey.LoadPages(cfg.Survey.Pages)
	row("survey pages", err, orBuiltIn(cfg.Survey.Pages))
	if err := w.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return errors.New(fmt.Sprint(failed, " checks failed"))
	}
	return nil
}

func orBuiltIn(dir string) string {
	if dir == "" {
		return "built-in"
	}
	return dir
}

func preview(names []string) string {
	if len(names) == 0 {
		return ""
	}
	if len(names) > 5 {
		return ": " + strings.Join(names[:5], ", ") + ", ..."
	}
	return ": " + strings.Join(names, ", ")
}

// offers says which of the extensions that speed sending up the server
// offers: without PIPELINING each message takes four round trips.
func offers(offered []string) string {
	if !slices.Contains(offered, "PIPELINING") {
		return "; no PIPELINING: four round trips a message"
	}
	return "; offers " + strings.Join(offered, ", ")
}
