// Command otklik pulls 1C's nightly exports, surveys customers the day
// after a purchase, collects their answers and reports the trends.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	_ "time/tzdata" // store time zones must resolve on a minimal server
)

// version is stamped by the Makefile from git.
var version = "dev"

// usageError is bad usage of the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// env is what a command runs with; tests build their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	configPath     string
}

type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands = map[string]command{
	"run":     {"the daemon: schedules and the survey web server, until SIGTERM", cmdRun},
	"ingest":  {"pull and load every source once (or just the given local files)", cmdIngest},
	"plan":    {"create survey invitations from loaded purchases", cmdPlan},
	"send":    {"send due invitations", cmdSend},
	"report":  {"write the monthly workbook and email it to the managers", cmdReport},
	"check":   {"validate the config; try the database, every source and SMTP", cmdCheck},
	"status":  {"counts and the last runs", cmdStatus},
	"demo":    {"the whole nightly cycle on bundled sample data, no setup needed", cmdDemo},
	"preview": {"render an email or page template with sample data", cmdPreview},
	"forget":  {"erase a customer's personal data on request", cmdForget},
	"export":  {"write answers, promo codes and unsubscribes back for 1C", cmdExport},
	"version": {"print the version", cmdVersion},
}

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Main runs the command line and returns the exit status: 0 success, 1 a
// step failed, 2 bad usage or configuration.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("otklik", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.configPath, "config", "", "configuration file")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "otklik: %v\n", err)
		usage(stderr)
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		if rest[0] == "help" {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "otklik: unknown command %q\n", rest[0])
		usage(stderr)
		return 2
	}
	if e.configPath == "" {
		e.configPath = getenv("OTKLIK_CONFIG")
	}
	if e.configPath == "" {
		e.configPath = "otklik.yaml"
	}
	err := cmd.run(ctx, e, rest[1:])
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "otklik %s: %v\n", rest[0], err)
	var ue *usageError
	var ce *ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return 2
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: otklik [--config FILE] COMMAND [ARGS]")
	fmt.Fprintln(w, "FILE defaults to $OTKLIK_CONFIG, then ./otklik.yaml")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
}

// flags parses a command's flags, which may come before or after its
// arguments (otklik preview invitation --out x.eml); fs.Args() then holds
// the arguments. A parse error is a usage error.
func flags(name string, args []string, define func(*flag.FlagSet)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var b strings.Builder
	fs.SetOutput(&b)
	define(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &usageError{msg: strings.TrimSpace(err.Error() + "\n" + b.String())}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Parse(append([]string{"--"}, positional...))
	return fs, nil
}

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fmt.Fprintln(e.stdout, "otklik", version)
	return nil
}
