package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

func cmdStatus(ctx context.Context, e *env, args []string) error {
	var asJSON bool
	if _, err := flags("status", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	}); err != nil {
		return err
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.close()
	s, err := a.db.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "files\t%d ingested, %d failed, %d duplicate, %d loading\n",
		s.Files.Ingested, s.Files.Failed, s.Files.SkippedDuplicate, s.Files.Loading)
	fmt.Fprintf(w, "rows\t%d loaded, %d duplicate, %d rejected; %d values left out of rows that loaded\n",
		s.Rows.Loaded, s.Rows.Duplicate, s.Rows.Rejected, s.Rows.ValuesDropped)
	fmt.Fprintf(w, "data\t%d stores, %d customers, %d purchases (%d lines)\n", s.Stores, s.Customers, s.Purchases, s.PurchaseLines)
	i := s.Invitations
	fmt.Fprintf(w, "invitations\t%d planned, %d sent, %d failed, %d bounced, %d unknown, %d expired\n",
		i.Planned, i.Sent, i.Failed, i.Bounced, i.Unknown, i.Expired)
	m := s.Messages
	fmt.Fprintf(w, "follow-ups\t%d planned, %d sent, %d failed, %d bounced, %d unknown, %d expired (reminders, thank-yous, alerts)\n",
		m.Planned, m.Sent, m.Failed, m.Bounced, m.Unknown, m.Expired)
	fmt.Fprintf(w, "answers\t%d responses, %d promo codes issued, %d suppressed addresses\n", s.Responses, s.PromoCodesIssued, s.Suppressed)
	fmt.Fprintf(w, "roll-ups\t%d days changed since the last refresh (refreshed after each ingest and before each report)\n", s.RollupDaysPending)
	for _, r := range s.LastRuns {
		outcome := "ok"
		if !r.OK {
			outcome = "FAILED"
		}
		fmt.Fprintf(w, "last %s\t%s %s (%s) %s\n", r.Job, r.StartedAt.In(a.loc).Format(time.DateTime), outcome,
			r.FinishedAt.Sub(r.StartedAt).Round(time.Second), r.Detail)
	}
	return w.Flush()
}
