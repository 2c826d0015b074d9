// Package mailer plans survey invitations, renders emails from templates a
// marketer edits, composes MIME messages and delivers them over SMTP,
// recording every outcome in the invitations outbox.
package mailer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/otklik/otklik/store"
)

// Window is a daily sending window in a store's local time, as minutes
// after midnight: [Start, End).
type Window struct {
	Start, End int
}

// ParseWindow reads "10:00-20:00".
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not a window like 10:00-20:00", s)
	}
	start, err1 := parseClock(a)
	end, err2 := parseClock(b)
	if err1 != nil || err2 != nil {
		return Window{}, fmt.Errorf("%q is not a window like 10:00-20:00", s)
	}
	if end <= start {
		return Window{}, fmt.Errorf("window %q ends before it starts", s)
	}
	return Window{Start: start, End: end}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, fmt.Errorf("bad time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

func (w Window) at(day time.Time, minutes int) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, minutes/60, minutes%60, 0, 0, day.Location())
}

// Due returns when an invitation for a purchase should go out and when it
// expires unsent: the first moment inside the window, in loc, that is both
// after the purchase day and not before planned; it expires at the end of
// that day's window, so that after a downtime nobody gets a week-old
// survey.
func (w Window) Due(purchase, planned time.Time, loc *time.Location) (due, expires time.Time) {
	p := purchase.In(loc)
	day := time.Date(p.Year(), p.Month(), p.Day()+1, 0, 0, 0, 0, loc)
	for range 400 {
		start, end := w.at(day, w.Start), w.at(day, w.End)
		t := start
		if planned.After(t) {
			t = planned
		}
		if t.Before(end) {
			return t, end
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	}
	return planned, planned // unreachable for a valid window
}

// Next returns the first moment inside the window, in loc, not before t,
// and the end of that day's window.
func (w Window) Next(t time.Time, loc *time.Location) (time.Time, time.Time) {
	l := t.In(loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	for range 400 {
		start, end := w.at(day, w.Start), w.at(day, w.End)
		if t.Before(start) {
			return start, end
		}
		if t.Before(end) {
			return t, end
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	}
	return t, t
}

// Sampling says how many of a store's eligible receipts to survey. A
// store with a monthly target of answers gets, each day, what it still
// needs divided by the days left in the month and by its response rate
// over the last 30 days (PriorRate until it has RateMinSent invitations
// there), drawn at random among the eligible. This keeps a store from
// being flooded early in the month and starved late (the Hoff case).
// Stores without a target: everyone eligible is invited.
type Sampling struct {
	Targets       map[string]int // store code -> answers wanted a month
	DefaultTarget int            // for stores not in Targets; 0: no target
	PriorRate     float64        // 0 means 0.15
	RateMinSent   int            // 0 means 30
	Rand          *mrand.Rand    // nil: a random source
}

func (s Sampling) target(store string) int {
	if t, ok := s.Targets[store]; ok {
		return t
	}
	return s.DefaultTarget
}

// Planner turns loaded purchases into planned invitations, and unanswered
// invitations into reminders.
type Planner struct {
	DB       *store.DB
	Zone     *time.Location // for stores without a time zone; months are counted here
	Window   Window
	MaxAge   time.Duration // purchases older than this are never surveyed
	Cooldown time.Duration // one survey per email within this
	Sampling Sampling
	// ReminderAfter, if set, queues one reminder this long after an
	// invitation that got no answer.
	ReminderAfter time.Duration
	Log           *slog.Logger
}

// PlanResult counts what a plan did, or would do.
type PlanResult struct {
	Candidates int // eligible receipts found
	Planned    int // invitations added (or that would be, in a dry run)
	TooLate    int // eligible, but the window would open after MaxAge
	NotSampled int // eligible, left out by a store's target
	Reminders  int // reminders queued
	// Reasons counts, in a dry run, why receipts of the last days were
	// not invited: anonymous, return, unknown_customer, no_email,
	// no_consent, suppressed, cooldown, too_old, already_invited.
	Reasons map[string]int
	// Invitations are, in a dry run, the invitations that would be made.
	Invitations []store.NewInvitation
}

func (p *Planner) zone(name string) *time.Location {
	if name != "" {
		if l, err := time.LoadLocation(name); err == nil {
			return l
		}
	}
	return p.Zone
}

// Plan plans an invitation for every eligible receipt, one per email and
// as many per store as its sampling allows, and queues reminders. With
// dryRun nothing is written and the result says who would be invited
// and why the others would not.
func (p *Planner) Plan(ctx context.Context, dryRun bool) (PlanResult, error) {
	var res PlanResult
	now := p.DB.Now().UTC()
	cooldownSince := now.Add(-p.Cooldown)
	cands, err := p.DB.Candidates(ctx, now.Add(-p.MaxAge), now, cooldownSince)
	if err != nil {
		return res, err
	}
	res.Candidates = len(cands)
	cands, err = p.sample(ctx, now, cands, &res)
	if err != nil {
		return res, err
	}
	invs := make([]store.NewInvitation, 0, len(cands))
	seen := map[string]bool{}
	for _, c := range cands {
		due, expires := p.Window.Due(c.At, now, p.zone(c.TimeZone))
		if due.Sub(c.At) > p.MaxAge {
			res.TooLate++
			continue
		}
		if seen[c.Email] { // one survey per person
			continue
		}
		seen[c.Email] = true
		token, err := NewToken()
		if err != nil {
			return res, err
		}
		invs = append(invs, store.NewInvitation{Candidate: c, Token: token, DueAt: due, Expires: expires})
	}
	if dryRun {
		res.Planned, res.Invitations = len(invs), invs
		res.Reasons, err = p.DB.Reasons(ctx, now.Add(-p.MaxAge-7*24*time.Hour), now, now.Add(-p.MaxAge), cooldownSince)
		return res, err
	}
	if res.Planned, err = p.DB.AddInvitations(ctx, invs, cooldownSince); err != nil {
		return res, err
	}
	if p.ReminderAfter > 0 {
		if res.Reminders, err = p.reminders(ctx, now); err != nil {
			return res, err
		}
	}
	p.log().Info("planned", "candidates", res.Candidates, "invitations", res.Planned, "too_late", res.TooLate,
		"not_sampled", res.NotSampled, "reminders", res.Reminders)
	return res, nil
}

// sample keeps, for each store with a target, today's share of its
// eligible receipts, drawn at random.
func (p *Planner) sample(ctx context.Context, now time.Time, cands []store.Candidate, res *PlanResult) ([]store.Candidate, error) {
	s := p.Sampling
	if len(s.Targets) == 0 && s.DefaultTarget == 0 {
		return cands, nil
	}
	prior, minSent := s.PriorRate, s.RateMinSent
	if prior <= 0 {
		prior = 0.15
	}
	if minSent <= 0 {
		minSent = 30
	}
	local := now.In(p.Zone)
	monthStart := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, p.Zone)
	dayStart := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, p.Zone)
	daysLeft := monthStart.AddDate(0, 1, 0).Sub(dayStart).Hours() / 24
	stats, err := p.DB.StoreSurveyStats(ctx, monthStart, dayStart, now.Add(-30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	byStore := map[string][]store.Candidate{}
	var out []store.Candidate
	for _, c := range cands {
		if s.target(c.StoreCode) > 0 {
			byStore[c.StoreCode] = append(byStore[c.StoreCode], c)
		} else {
			out = append(out, c)
		}
	}
	rng := s.Rand
	if rng == nil {
		rng = mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	}
	for code, cs := range byStore {
		st := stats[code]
		rate := prior
		if st.Sent30 >= minSent && st.Answered30 > 0 {
			rate = float64(st.Answered30) / float64(st.Sent30)
		}
		need := float64(s.target(code) - st.AnsweredMonth)
		n := 0
		if need > 0 {
			n = int(math.Ceil(need/math.Max(daysLeft, 1)/rate)) - st.PlannedToday
		}
		n = max(0, min(n, len(cs)))
		rng.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
		out = append(out, cs[:n]...)
		res.NotSampled += len(cs) - n
	}
	return out, nil
}

// reminders queues one reminder for invitations unanswered after
// ReminderAfter, due at the next sending window in the store's zone.
func (p *Planner) reminders(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-p.ReminderAfter)
	un, err := p.DB.Unanswered(ctx, cutoff.Add(-p.MaxAge), cutoff)
	if err != nil {
		return 0, err
	}
	msgs := make([]store.NewMessage, 0, len(un))
	for _, u := range un {
		due, expires := p.Window.Next(now, p.zone(u.TimeZone))
		msgs = append(msgs, store.NewMessage{Kind: store.KindReminder, InvitationID: u.InvitationID, Email: u.Email,
			DueAt: due, Expires: expires})
	}
	return p.DB.AddMessages(ctx, msgs)
}

func (p *Planner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log.With("component", "plan")
}

// NewToken returns an unguessable URL-safe token (192 random bits).
func NewToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
