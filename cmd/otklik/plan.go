package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/store"
)

func cmdPlan(ctx context.Context, e *env, args []string) error {
	var dryRun bool
	if _, err := flags("plan", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "print who would be invited and when, and why the others would not; change nothing")
	}); err != nil {
		return err
	}
	a, err := openApp(ctx, e, !dryRun)
	if err != nil {
		return err
	}
	defer a.close()
	res, err := a.plan(ctx, dryRun)
	if err != nil {
		return err
	}
	if dryRun {
		return a.printDryRun(e, res)
	}
	fmt.Fprintln(e.stdout, planLine(res))
	return nil
}

func (a *app) plan(ctx context.Context, dryRun bool) (mailer.PlanResult, error) {
	if dryRun {
		return a.planner().Plan(ctx, true)
	}
	var res mailer.PlanResult
	err := a.job(ctx, "plan", func(ctx context.Context) (string, error) {
		var err error
		res, err = a.planner().Plan(ctx, false)
		return planLine(res), err
	})
	return res, err
}

func planLine(r mailer.PlanResult) string {
	return fmt.Sprintf("invitations: %d planned from %d eligible receipts (%d not sampled, %d too late); %d reminders",
		r.Planned, r.Candidates, r.NotSampled, r.TooLate, r.Reminders)
}

// reasonLabels explains each reason a receipt is not surveyed.
var reasonLabels = map[string]string{
	"eligible":         "eligible",
	"anonymous":        "no loyalty card",
	"return":           "a return",
	"unknown_customer": "customer card not loaded",
	"no_email":         "no valid email",
	"no_consent":       "no consent",
	"already_invited":  "already invited",
	"too_old":          "older than max_age_days",
	"suppressed":       "unsubscribed or bounced",
	"cooldown":         "surveyed within cooldown_days",
}

// printDryRun shows who would be invited and when, with masked
// addresses, and why the other receipts of the last days would not be.
func (a *app) printDryRun(e *env, res mailer.PlanResult) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "would invite %d (of %d eligible; %d not sampled, %d too late):\n", res.Planned, res.Candidates, res.NotSampled, res.TooLate)
	fmt.Fprintln(w, "  to\tstore\treceipt\tdue (store time)\texpires")
	invs := res.Invitations
	sort.Slice(invs, func(i, j int) bool { return invs[i].DueAt.Before(invs[j].DueAt) })
	for _, in := range invs {
		loc := a.loc
		if l := store.Zone(in.TimeZone); l != nil {
			loc = l
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", mailer.Mask(in.Email), in.StoreCode, in.Receipt,
			in.DueAt.In(loc).Format("2006-01-02 15:04 MST"), in.Expires.In(loc).Format("15:04"))
	}
	fmt.Fprintln(w, "\nreceipts of the last days, by reason:")
	keys := make([]string, 0, len(res.Reasons))
	for k := range res.Reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return res.Reasons[keys[i]] > res.Reasons[keys[j]] })
	for _, k := range keys {
		label := reasonLabels[k]
		if label == "" {
			label = k
		}
		fmt.Fprintf(w, "  %s\t%d\n", label, res.Reasons[k])
	}
	return w.Flush()
}
