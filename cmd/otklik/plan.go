package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/otklik/otklik/mailer"
)

func cmdPlan(ctx context.Context, e *env, args []string) error {
	if _, err := flags("plan", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	res, err := a.plan(ctx)
	fmt.Fprintln(e.stdout, planLine(res))
	return err
}

func (a *app) plan(ctx context.Context) (mailer.PlanResult, error) {
	var res mailer.PlanResult
	err := a.job(ctx, "plan", func(ctx context.Context) (string, error) {
		var err error
		res, err = a.planner().Plan(ctx)
		return planLine(res), err
	})
	return res, err
}

func planLine(r mailer.PlanResult) string {
	return fmt.Sprintf("invitations: %d planned from %d eligible receipts (%d too late to survey)",
		r.Planned, r.Candidates, r.TooLate)
}
