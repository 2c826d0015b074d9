package mailer

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/store"
)

// Dispatcher sends due invitations from the outbox. Each invitation is
// claimed (planned -> sending) in its own commit before the SMTP
// transaction and settled right after it, so a crash at any moment leaves
// at most the messages in flight as "sending", which the next run reports
// as "unknown" instead of sending them twice.
type Dispatcher struct {
	DB        *store.DB
	Sender    Sender
	Templates *Templates
	From      *mail.Address
	BaseURL   string         // survey site, as links in emails point to it
	Zone      *time.Location // for stores without a time zone
	Log       *slog.Logger
	Batch     int // invitations claimed at a time; 0 means 50
}

// SendResult counts what a send run did.
type SendResult struct {
	Sent, Retry, Bounced, Failed, Unknown, Expired int
	Recovered                                      int // in flight in a run that died
}

// Send sends every due invitation until none is left or ctx is done.
func (d *Dispatcher) Send(ctx context.Context) (SendResult, error) {
	var res SendResult
	log := d.log()
	n, err := d.DB.RecoverInFlight(ctx)
	if err != nil {
		return res, err
	}
	res.Recovered = int(n)
	if n > 0 {
		log.Warn("invitations in flight when the last run stopped are marked unknown", "count", n)
	}
	exp, err := d.DB.ExpireInvitations(ctx)
	if err != nil {
		return res, err
	}
	res.Expired = int(exp)
	batch := d.Batch
	if batch <= 0 {
		batch = 50
	}
	for ctx.Err() == nil {
		due, err := d.DB.ClaimDue(ctx, batch)
		if err != nil {
			return res, err
		}
		if len(due) == 0 {
			break
		}
		for i, o := range due {
			if ctx.Err() != nil {
				// Put back what was claimed but not tried.
				for _, rest := range due[i:] {
					if err := d.DB.MarkFailed(context.WithoutCancel(ctx), rest.ID, store.InvPlanned, time.Time{}, "stopped before sending"); err != nil {
						return res, err
					}
				}
				break
			}
			if err := d.sendOne(ctx, o, &res); err != nil {
				return res, err
			}
		}
	}
	log.Info("send finished", "sent", res.Sent, "retry", res.Retry, "bounced", res.Bounced,
		"failed", res.Failed, "unknown", res.Unknown, "expired", res.Expired)
	return res, ctx.Err()
}

// sendOne renders, sends and settles one invitation. Only a store error
// is returned; a send failure is recorded on the invitation.
func (d *Dispatcher) sendOne(ctx context.Context, o store.Outgoing, res *SendResult) error {
	log := d.log().With("invitation", o.ID, "to", Mask(o.Email))
	settle := context.WithoutCancel(ctx) // record the outcome even when stopping
	msg, msgID, err := d.invitation(o)
	if err != nil {
		res.Failed++
		log.Error("render invitation", "err", err)
		return d.DB.MarkFailed(settle, o.ID, store.InvFailed, time.Time{}, err.Error())
	}
	err = d.Sender.Send(ctx, Envelope{From: d.From.Address, To: []string{o.Email}}, msg)
	if err == nil {
		res.Sent++
		return d.DB.MarkSent(settle, o.ID, msgID)
	}
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Outcome: Temporary, Stage: "send", Err: err}
	}
	reason := se.Error()
	switch se.Outcome {
	case Temporary:
		retry := d.DB.Now().Add(backoff(o.Attempts))
		if !retry.Before(o.ExpiresAt) {
			res.Failed++
			log.Warn("temporary failure, no time left before expiry", "err", reason)
			return d.DB.MarkFailed(settle, o.ID, store.InvFailed, time.Time{}, reason)
		}
		res.Retry++
		log.Warn("temporary failure, will retry", "err", reason, "retry_at", retry.UTC().Format(time.RFC3339))
		return d.DB.MarkFailed(settle, o.ID, store.InvPlanned, retry, reason)
	case Bounced:
		res.Bounced++
		log.Warn("address refused, suppressed", "err", reason)
		return d.DB.MarkFailed(settle, o.ID, store.InvBounced, time.Time{}, reason)
	case Uncertain:
		res.Unknown++
		log.Warn("outcome unknown, not resending", "err", reason)
		return d.DB.MarkFailed(settle, o.ID, store.InvUnknown, time.Time{}, reason)
	default:
		res.Failed++
		log.Error("message refused", "err", reason)
		return d.DB.MarkFailed(settle, o.ID, store.InvFailed, time.Time{}, reason)
	}
}

// backoff is the wait before retry n (1-based): 5 minutes doubling up to
// two hours, with ±20% jitter so that retries do not arrive in step.
func backoff(attempt int) time.Duration {
	d := 5 * time.Minute
	for i := 1; i < attempt && d < 2*time.Hour; i++ {
		d *= 2
	}
	d = min(d, 2*time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (d *Dispatcher) invitation(o store.Outgoing) ([]byte, string, error) {
	loc := d.Zone
	if o.TimeZone != "" {
		if l, err := time.LoadLocation(o.TimeZone); err == nil {
			loc = l
		}
	}
	base := strings.TrimRight(d.BaseURL, "/")
	storeName := o.StoreName
	if storeName == "" {
		storeName = o.StoreCode
	}
	data := InvitationData{
		Name:           Salutation(o.CustomerName),
		StoreName:      storeName,
		PurchaseDate:   o.PurchasedAt.In(loc).Format("02.01.2006"),
		Ratings:        ratingLinks(base, o.Token),
		SurveyURL:      base + "/s/" + o.Token,
		UnsubscribeURL: base + "/u/" + o.Token,
	}
	r, err := d.Templates.Render(KindInvitation, data)
	if err != nil {
		return nil, "", err
	}
	return Compose(Message{
		From: d.From, To: []*mail.Address{{Address: o.Email}}, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		Unsubscribe: data.UnsubscribeURL, Date: d.DB.Now(),
	})
}

// Salutation turns a 1C full name "Фамилия Имя Отчество" into the polite
// Russian address "Имя Отчество"; a name of another shape is used as is.
func Salutation(fio string) string {
	parts := strings.Fields(fio)
	if len(parts) == 3 {
		return parts[1] + " " + parts[2]
	}
	return strings.Join(parts, " ")
}

func (d *Dispatcher) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log.With("component", "send")
}
