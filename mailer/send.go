package mailer

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/otklik/otklik/store"
	"golang.org/x/time/rate"
)

// DKIM signs outgoing mail.
type DKIM struct {
	Domain, Selector string
	Key              crypto.Signer // RSA or Ed25519
}

// signedHeaders are the header fields DKIM covers: the one-click
// unsubscribe counts at Gmail only if both List-Unsubscribe fields are
// signed (RFC 8058).
var signedHeaders = []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type",
	"List-Unsubscribe", "List-Unsubscribe-Post"}

// Sign returns msg with a DKIM-Signature header, relaxed/relaxed.
func (k *DKIM) Sign(msg []byte) ([]byte, error) {
	var b bytes.Buffer
	err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: k.Domain, Selector: k.Selector, Signer: k.Key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: signedHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	return b.Bytes(), nil
}

// Dispatcher sends due mail from the outbox: invitations, reminders and
// thank-yous. Mail is leased in batches; each piece is marked sending in
// a commit right before its SMTP transaction and settled right after it,
// so a crash at any moment leaves at most the mail really in flight as
// "sending", which the next run reports as "unknown" instead of sending
// it twice, and the rest of the batch is sent by the next run.
type Dispatcher struct {
	DB        *store.DB
	Templates *Templates
	From      *mail.Address
	BaseURL   string         // survey site, as links in emails point to it
	Zone      *time.Location // for stores without a time zone
	Log       *slog.Logger

	// NewSender opens a sender (one SMTP connection); Conns of them send
	// in parallel. 0 Conns means 1.
	NewSender func() Sender
	Conns     int
	// PerSecond limits the sending rate (0: no limit); PerHour caps how
	// many messages leave in any hour (0: no cap).
	PerSecond float64
	PerHour   int
	// UnsubscribeMailto, if set, is offered besides the one-click link.
	UnsubscribeMailto string
	DKIM              *DKIM
	Batch             int // pieces claimed at a time; 0 means 100
	// Progress, if set, is told after each piece how many were sent and
	// how many failed so far in this run.
	Progress func(sent, failed int)
}

// SendResult counts what a send run did.
type SendResult struct {
	Sent, Retry, Bounced, Failed, Unknown, Expired int
	Recovered                                      int // in flight in a run that died
}

func (r *SendResult) add(o SendResult) {
	r.Sent += o.Sent
	r.Retry += o.Retry
	r.Bounced += o.Bounced
	r.Failed += o.Failed
	r.Unknown += o.Unknown
}

// Send sends every due piece of mail until none is left or ctx is done.
// On cancellation the mail in hand is finished and the rest of the
// claimed batch is put back.
func (d *Dispatcher) Send(ctx context.Context) (SendResult, error) {
	var res SendResult
	log := d.log()
	n, err := d.DB.BeginSending(ctx)
	if err != nil {
		return res, err
	}
	res.Recovered = int(n)
	if n > 0 {
		log.Warn("mail in flight when the last run stopped is marked unknown", "count", n)
	}
	exp, err := d.DB.ExpireInvitations(ctx)
	if err != nil {
		return res, err
	}
	res.Expired = int(exp)

	conns := max(d.Conns, 1)
	batch := d.Batch
	if batch <= 0 {
		batch = 100
	}
	var limits []*rate.Limiter
	if d.PerSecond > 0 {
		limits = append(limits, rate.NewLimiter(rate.Limit(d.PerSecond), max(1, int(d.PerSecond))))
	}
	if d.PerHour > 0 {
		limits = append(limits, rate.NewLimiter(rate.Limit(float64(d.PerHour)/3600), d.PerHour))
	}

	rec := newRecorder(d.DB)
	var sentN, failedN atomic.Int64 // for Progress
	work := make(chan store.Outgoing)
	results := make([]SendResult, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			// Each connection renders its next message while the current
			// one is on the wire.
			ready := make(chan composed, 1)
			go func() {
				defer close(ready)
				for o := range work {
					c := composed{o: o}
					if ctx.Err() == nil && !rec.failed() {
						c = d.compose(ctx, o)
					}
					ready <- c
				}
			}()
			s := d.NewSender()
			defer s.Close()
			// ahead is the piece taken from ready while the one before it
			// was sent, so that its envelope could go with that one's
			// final dot (see SendThen).
			var ahead *composed
			next := func() (Envelope, bool) {
				if ahead != nil {
					return Envelope{}, false // one at a time
				}
				select {
				case n, ok := <-ready:
					if !ok {
						return Envelope{}, false
					}
					ahead = &n
				default:
					return Envelope{}, false
				}
				if ahead.err != nil || ahead.msg == nil || ctx.Err() != nil || rec.failed() || !allowNow(limits) {
					return Envelope{}, false
				}
				ahead.started = rec.start(ahead.o)
				return d.envelope(ahead.o), true
			}
			for {
				var c composed
				if ahead != nil {
					c, ahead = *ahead, nil
				} else if n, ok := <-ready; ok {
					c = n
				} else {
					break
				}
				if rec.failed() {
					c.recycle()
					continue // a store failure: let the others drain
				}
				before := results[w]
				d.sendOne(ctx, s, rec, limits, c, next, &results[w])
				c.recycle()
				if d.Progress != nil {
					after := results[w]
					d.Progress(int(sentN.Add(int64(after.Sent-before.Sent))),
						int(failedN.Add(int64(after.Failed+after.Bounced+after.Unknown-before.Failed-before.Bounced-before.Unknown))))
				}
			}
		})
	}
	var claimErr error
	for ctx.Err() == nil && !rec.failed() {
		due, err := d.DB.ClaimDue(ctx, batch)
		if err != nil {
			claimErr = err
			break
		}
		if len(due) == 0 {
			break
		}
		for _, o := range due {
			work <- o
		}
	}
	close(work)
	wg.Wait()
	recErr := rec.close()
	for i := range results {
		res.add(results[i])
	}
	log.Info("send finished", "sent", res.Sent, "retry", res.Retry, "bounced", res.Bounced,
		"failed", res.Failed, "unknown", res.Unknown, "expired", res.Expired)
	if err := errors.Join(claimErr, recErr); err != nil {
		return res, err // the next run recovers what this one left
	}
	if err := d.DB.EndSending(context.WithoutCancel(ctx)); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// recorder writes the outbox steps of all connections with group commit:
// whatever steps are waiting go into one transaction. A start waits for
// its commit (the mail must be "sending" on disk before it is handed
// over); an outcome does not: if the process dies before it is
// committed, the mail is "sending", then "unknown", and never sent twice.
// So outcomes wait for the next start, or at most outcomeDelay, and ride
// in its commit: a commit costs more than the updates in it.
type recorder struct {
	db   *store.DB
	reqs chan recStep
	done chan struct{}
	mu   sync.Mutex
	err  error
}

type recStep struct {
	step  store.Step
	reply chan bool // for starts
}

func newRecorder(db *store.DB) *recorder {
	r := &recorder{db: db, reqs: make(chan recStep, 256), done: make(chan struct{})}
	go r.loop()
	return r
}

// outcomeDelay is how long outcomes wait for a start to commit with.
const outcomeDelay = 100 * time.Millisecond

func (r *recorder) loop() {
	defer close(r.done)
	timer := time.NewTimer(outcomeDelay)
	for first := range r.reqs {
		batch := []recStep{first}
		starts := first.reply != nil
		timer.Reset(outcomeDelay)
	collect:
		for len(batch) < 512 {
			var s recStep
			var ok bool
			if starts {
				select {
				case s, ok = <-r.reqs:
				default:
					break collect
				}
			} else {
				select {
				case s, ok = <-r.reqs:
				case <-timer.C:
					break collect
				}
			}
			if !ok {
				break collect
			}
			batch = append(batch, s)
			starts = starts || s.reply != nil
		}
		steps := make([]store.Step, len(batch))
		for i, b := range batch {
			steps[i] = b.step
		}
		var ok []bool
		var err error
		if !r.failed() {
			// Record outcomes even when the run is being stopped.
			ok, err = r.db.Apply(context.Background(), steps)
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
			}
		}
		for i, b := range batch {
			if b.reply != nil {
				b.reply <- err == nil && ok != nil && ok[i]
			}
		}
	}
}

func (r *recorder) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err != nil
}

// start records that o is about to be sent. The returned func waits for
// the commit and reports whether o may be sent; it may be called again.
func (r *recorder) start(o store.Outgoing) (mayStart func() bool) {
	reply := make(chan bool, 1)
	r.reqs <- recStep{step: store.Step{O: o, Status: store.InvSending}, reply: reply}
	return sync.OnceValue(func() bool { return <-reply })
}

func (r *recorder) record(s store.Step) { r.reqs <- recStep{step: s} }

// close commits what is queued and returns the first store error.
func (r *recorder) close() error {
	close(r.reqs)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// composed is a piece of mail rendered for sending. Mail taken after the
// run was stopped is not rendered: sendOne releases it when it sees ctx
// done.
type composed struct {
	o   store.Outgoing
	msg []byte
	id  string        // Message-ID
	err error         // rendering failed
	buf *bytes.Buffer // holds msg, back to messageBuffers once sent
	// started, if not nil, is its start, recorded when its envelope
	// went out ahead; the rate limits let it go then.
	started func() bool
}

// allowNow takes a token from each limit if every one has one now.
func allowNow(limits []*rate.Limiter) bool {
	now := time.Now()
	taken := make([]*rate.Reservation, 0, len(limits))
	for _, l := range limits {
		r := l.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			return false
		}
		taken = append(taken, r)
	}
	return true
}

// A pipeliner sends a message's envelope with the one before's final dot.
type pipeliner interface {
	SendThen(ctx context.Context, env Envelope, msg []byte, confirm func() bool, next func() (Envelope, bool)) error
}

func (d *Dispatcher) envelope(o store.Outgoing) Envelope {
	return Envelope{From: d.From.Address, To: []string{o.Email}}
}

// recycle gives the message's buffer back once it is sent or dropped.
func (c *composed) recycle() {
	if c.buf != nil {
		messageBuffers.Put(c.buf)
		c.buf, c.msg = nil, nil
	}
}

// sendOne sends and records one piece of mail. A store failure is kept
// by the recorder; a send failure is recorded on the mail.
func (d *Dispatcher) sendOne(ctx context.Context, s Sender, rec *recorder, limits []*rate.Limiter, c composed, next func() (Envelope, bool), res *SendResult) {
	o, msg, msgID, err := c.o, c.msg, c.id, c.err
	// The logger is made only for a message that has something to log.
	log := func() *slog.Logger { return d.log().With("kind", o.Kind, "id", o.ID, "to", Mask(o.Email)) }
	release := func() {
		if err := d.DB.Release(context.WithoutCancel(ctx), o); err != nil {
			log().Warn("release claim", "err", err)
		}
	}
	if c.started == nil { // else the limits let it go already
		for _, l := range limits {
			if err := l.Wait(ctx); err != nil {
				release()
				return
			}
		}
	}
	if ctx.Err() != nil {
		if c.started == nil {
			release()
		} else if c.started() {
			// Its envelope went out, not its data: closing the connection
			// leaves the server nothing to deliver.
			rec.record(store.Step{O: o, Status: store.InvPlanned, RetryAt: d.DB.Now(), Reason: "not sent: the run stopped"})
		}
		return
	}
	// The start is committed while the envelope goes out, and the data
	// only after it: from there on a crash leaves the mail "sending",
	// then "unknown". A crash before leaves it claimed, and the server
	// has no message to deliver.
	started := c.started
	if started == nil {
		started = rec.start(o)
	}
	if err != nil {
		if started() {
			res.Failed++
			log().Error("render mail", "err", err)
			rec.record(store.Step{O: o, Status: store.InvFailed, Reason: err.Error()})
		}
		return
	}
	if p, ok := s.(pipeliner); ok {
		err = p.SendThen(ctx, d.envelope(o), msg, started, next)
	} else {
		err = s.Send(ctx, d.envelope(o), msg, started)
	}
	if !started() {
		return // expired or erased meanwhile, or the store failed
	}
	if err == nil {
		res.Sent++
		rec.record(store.Step{O: o, Status: store.InvSent, MessageID: msgID})
		return
	}
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Outcome: Temporary, Stage: "send", Err: err}
	}
	reason := se.Error()
	step := store.Step{O: o, Reason: reason}
	switch se.Outcome {
	case Temporary:
		retry := d.DB.Now().Add(backoff(o.Attempts))
		if !retry.Before(o.ExpiresAt) {
			res.Failed++
			log().Warn("temporary failure, no time left before expiry", "err", reason)
			step.Status = store.InvFailed
		} else {
			res.Retry++
			log().Warn("temporary failure, will retry", "err", reason, "retry_at", retry.UTC().Format(time.RFC3339))
			step.Status, step.RetryAt = store.InvPlanned, retry
		}
	case Bounced:
		res.Bounced++
		log().Warn("address refused, suppressed", "err", reason)
		step.Status = store.InvBounced
	case Uncertain:
		res.Unknown++
		log().Warn("outcome unknown, not resending", "err", reason)
		step.Status = store.InvUnknown
	default:
		res.Failed++
		log().Error("message refused", "err", reason)
		step.Status = store.InvFailed
	}
	rec.record(step)
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

// compose renders a piece of mail from its templates and builds the
// signed MIME message, in a pooled buffer that recycle gives back.
func (d *Dispatcher) compose(ctx context.Context, o store.Outgoing) composed {
	loc := d.Zone
	if l := store.Zone(o.TimeZone); l != nil {
		loc = l
	}
	base := strings.TrimRight(d.BaseURL, "/")
	storeName := o.StoreName
	if storeName == "" {
		storeName = o.StoreCode
	}
	unsubscribe := base + "/u/" + o.Token
	var kind string
	var data any
	switch o.Kind {
	case store.KindInvitation, store.KindReminder:
		kind = KindInvitation
		if o.Kind == store.KindReminder {
			kind = KindReminder
		}
		data = InvitationData{
			Name:           Salutation(o.CustomerName),
			StoreName:      storeName,
			PurchaseDate:   o.PurchasedAt.In(loc).Format("02.01.2006"),
			Ratings:        ratingLinks(base, o.Token),
			SurveyURL:      base + "/s/" + o.Token,
			UnsubscribeURL: unsubscribe,
		}
	case store.KindThanks:
		kind = KindThanks
		data = ThanksData{Name: Salutation(o.CustomerName), StoreName: storeName, PromoCode: o.PromoCode,
			UnsubscribeURL: unsubscribe}
	case store.KindAlert:
		a, err := d.DB.AnswerOf(ctx, o.InvitationID)
		if err != nil {
			return composed{o: o, err: err}
		}
		kind, data, unsubscribe = KindAlert, alertData(a, storeName, loc), ""
	default:
		return composed{o: o, err: fmt.Errorf("no template for %s mail", o.Kind)}
	}
	r, err := d.Templates.Render(kind, data)
	if err != nil {
		return composed{o: o, err: err}
	}
	buf := messageBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	id, err := composeTo(buf, Message{
		From: d.From, To: []*mail.Address{{Address: o.Email}}, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		Unsubscribe: unsubscribe, UnsubscribeMailto: d.UnsubscribeMailto, Date: d.DB.Now(),
	})
	if err != nil {
		messageBuffers.Put(buf)
		return composed{o: o, err: err}
	}
	c := composed{o: o, msg: buf.Bytes(), id: id, buf: buf}
	if d.DKIM != nil {
		if c.msg, err = d.DKIM.Sign(c.msg); err != nil {
			c.recycle()
			return composed{o: o, err: err}
		}
	}
	return c
}

// messageBuffers hold composed messages until they are sent.
var messageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

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

// categoryLabels are the feedback categories as managers read them.
var categoryLabels = map[string]string{
	"service": "Обслуживание", "assortment": "Ассортимент", "prices": "Цены", "comfort": "Комфорт", "other": "Другое",
}

func alertData(a store.Answer, storeName string, loc *time.Location) AlertData {
	var good, bad []string
	for _, f := range a.Feedback {
		label := categoryLabels[f.Category]
		if label == "" {
			label = f.Category
		}
		if f.Tone == "negative" {
			bad = append(bad, label)
		} else {
			good = append(good, label)
		}
	}
	d := AlertData{
		StoreName: storeName, StoreCode: a.StoreCode, Receipt: a.Receipt,
		PurchaseDate: a.PurchasedAt.In(loc).Format("02.01.2006 15:04"), AnsweredAt: a.AnsweredAt.In(loc).Format("02.01.2006 15:04"),
		Rating: a.Rating, Good: strings.Join(good, ", "), Bad: strings.Join(bad, ", "), Comment: a.Comment,
		CustomerName: a.CustomerName, CustomerCode: a.CustomerCode, CustomerEmail: a.CustomerEmail, CustomerPhone: a.CustomerPhone,
	}
	if a.NPS != nil {
		d.NPS = fmt.Sprint(*a.NPS)
	}
	if a.SumKop != 0 {
		d.Sum = FormatRubles(a.SumKop)
	}
	return d
}

// FormatRubles writes kopecks as "45 990,00 ₽" (a non-breaking space
// between thousands).
func FormatRubles(kop int64) string {
	neg := kop < 0
	if neg {
		kop = -kop
	}
	s := fmt.Sprint(kop / 100)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u00a0')
		}
		b.WriteRune(c)
	}
	out := fmt.Sprintf("%s,%02d\u00a0₽", b.String(), kop%100)
	if neg {
		out = "-" + out
	}
	return out
}
