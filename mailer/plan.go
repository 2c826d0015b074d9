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

// Planner turns loaded purchases into planned invitations.
type Planner struct {
	DB       *store.DB
	Zone     *time.Location // for stores without a time zone
	Window   Window
	MaxAge   time.Duration // purchases older than this are never surveyed
	Cooldown time.Duration // one survey per email within this
	Log      *slog.Logger
}

// PlanResult counts what a plan did.
type PlanResult struct {
	Candidates int // eligible receipts found
	Planned    int // invitations added
	TooLate    int // eligible, but the window would open after MaxAge
}

// Plan plans an invitation for every eligible receipt, one per email.
func (p *Planner) Plan(ctx context.Context) (PlanResult, error) {
	var res PlanResult
	now := p.DB.Now().UTC()
	cooldownSince := now.Add(-p.Cooldown)
	cands, err := p.DB.Candidates(ctx, now.Add(-p.MaxAge), now, cooldownSince)
	if err != nil {
		return res, err
	}
	res.Candidates = len(cands)
	invs := make([]store.NewInvitation, 0, len(cands))
	for _, c := range cands {
		loc := p.Zone
		if c.TimeZone != "" {
			if l, err := time.LoadLocation(c.TimeZone); err == nil {
				loc = l
			}
		}
		due, expires := p.Window.Due(c.At, now, loc)
		if due.Sub(c.At) > p.MaxAge {
			res.TooLate++
			continue
		}
		token, err := NewToken()
		if err != nil {
			return res, err
		}
		invs = append(invs, store.NewInvitation{Candidate: c, Token: token, DueAt: due, Expires: expires})
	}
	n, err := p.DB.AddInvitations(ctx, invs, cooldownSince)
	if err != nil {
		return res, err
	}
	res.Planned = n
	p.log().Info("planned invitations", "candidates", res.Candidates, "planned", res.Planned, "too_late", res.TooLate)
	return res, nil
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
