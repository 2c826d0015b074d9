package mailer_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/mailer/inbox"
	"github.com/otklik/otklik/store"
)

// fakeSMTP is a scripted SMTP server: act is asked what to do at each
// step of each session ("greet", "ehlo", "starttls", "rcpt", "data",
// "mid-data" after the first line of the data, "dot") and may answer with a reply line to send instead of the normal
// one, "drop" to close the connection, or "stall" to stop answering (at
// "ehlo" only a reply line). It offers the extensions given to startFake
// but implements none: PIPELINING works because it answers each command
// as it reads it.
type fakeSMTP struct {
	ln       net.Listener
	ext      []string
	mu       sync.Mutex
	act      func(step string, session int) string
	sessions int
	accepted int
	// pipelined counts MAIL commands that came with the commands after,
	// afterDot final dots that came with the next commands.
	pipelined, afterDot int
	rcpts               []string
}

func startFake(t *testing.T, act func(step string, session int) string, ext ...string) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln, act: act, ext: ext}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.sessions++
			n := f.sessions
			f.mu.Unlock()
			go f.serve(c, n)
		}
	}()
	return f
}

func (f *fakeSMTP) serve(c net.Conn, session int) {
	defer c.Close()
	r := bufio.NewReader(c)
	// reply writes a, the scripted reply to a step, or normal if none is.
	reply := func(a, normal string) bool {
		switch a {
		case "":
			fmt.Fprintf(c, "%s\r\n", normal)
		case "drop":
			return false
		case "stall":
			time.Sleep(time.Hour)
			return false
		default:
			fmt.Fprintf(c, "%s\r\n", a)
			return a[0] == '2' || a[0] == '3'
		}
		return true
	}
	say := func(step, normal string) bool { return reply(f.act(step, session), normal) }
	if !say("greet", "220 fake ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch cmd {
		case "EHLO", "HELO":
			if a := f.act("ehlo", session); a != "" {
				fmt.Fprintf(c, "%s\r\n", a)
				continue
			}
			fmt.Fprintf(c, "250-fake\r\n")
			for _, e := range f.ext {
				fmt.Fprintf(c, "250-%s\r\n", e)
			}
			fmt.Fprintf(c, "250 8BITMIME\r\n")
		case "STARTTLS":
			say("starttls", "454 4.7.0 TLS not available")
		case "MAIL":
			if r.Buffered() > 0 {
				f.mu.Lock()
				f.pipelined++
				f.mu.Unlock()
			}
			fmt.Fprintf(c, "250 ok\r\n")
		case "RCPT":
			f.mu.Lock()
			f.rcpts = append(f.rcpts, strings.TrimSpace(line))
			f.mu.Unlock()
			say("rcpt", "250 ok")
		case "DATA":
			if !say("data", "354 go ahead") {
				continue
			}
			for first := true; ; first = false {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if first && f.act("mid-data", session) == "drop" {
					return // with the rest of the data unread
				}
				if l == ".\r\n" {
					break
				}
			}
			if r.Buffered() > 0 {
				f.mu.Lock()
				f.afterDot++
				f.mu.Unlock()
			}
			// Counted before the reply: a client that has read it finds
			// the message counted.
			a := f.act("dot", session)
			if a == "" || a[0] == '2' || a[0] == '3' {
				f.mu.Lock()
				f.accepted++
				f.mu.Unlock()
			}
			reply(a, "250 queued")
		case "RSET", "NOOP":
			fmt.Fprintf(c, "250 ok\r\n")
		case "QUIT":
			fmt.Fprintf(c, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(c, "502 no\r\n")
		}
	}
}

func TestDispatcher_FaultyServer(t *testing.T) {
	for _, tc := range []struct {
		name, step, reply string
		want              func(mailer.SendResult) bool
		wantStatus        string
	}{
		{"421 at greeting", "greet", "421 4.3.2 try later", func(r mailer.SendResult) bool { return r.Retry == 1 }, "planned"},
		{"451 after data", "dot", "451 4.3.0 local error", func(r mailer.SendResult) bool { return r.Retry == 1 }, "planned"},
		{"550 recipient", "rcpt", "550 5.1.1 no such user", func(r mailer.SendResult) bool { return r.Bounced == 1 }, "bounced"},
		{"554 after data", "dot", "554 5.7.1 rejected as spam", func(r mailer.SendResult) bool { return r.Failed == 1 }, "failed"},
		{"drop before data", "data", "drop", func(r mailer.SendResult) bool { return r.Retry == 1 }, "planned"},
		{"drop in the middle of the data", "mid-data", "drop", func(r mailer.SendResult) bool { return r.Unknown == 1 }, "unknown"},
		{"drop after the final dot", "dot", "drop", func(r mailer.SendResult) bool { return r.Unknown == 1 }, "unknown"},
		{"stall after the final dot", "dot", "stall", func(r mailer.SendResult) bool { return r.Unknown == 1 }, "unknown"},
		{"stall at greeting", "greet", "stall", func(r mailer.SendResult) bool { return r.Retry == 1 }, "planned"},
	} {
		for _, mode := range sendModes {
			t.Run(tc.name+", "+mode.name, func(t *testing.T) {
				srv := startFake(t, func(step string, session int) string {
					if step == tc.step && session == 1 {
						return tc.reply
					}
					return ""
				}, mode.ext...)
				f := planned(t, 1)
				s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: srv.ln.Addr().String(), TLS: mailer.TLSNone, Timeout: 300 * time.Millisecond})
				start := time.Now()
				res, err := f.dispatcher(t, s).Send(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if !tc.want(res) {
					t.Fatalf("res = %+v", res)
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("took %v", time.Since(start))
				}
				st, _ := f.db.Status(context.Background())
				got := map[string]int64{"planned": st.Invitations.Planned, "bounced": st.Invitations.Bounced,
					"failed": st.Invitations.Failed, "unknown": st.Invitations.Unknown}[tc.wantStatus]
				if got != 1 {
					t.Fatalf("%s = %d, want 1 (%+v)", tc.wantStatus, got, st.Invitations)
				}
				// Mail whose fate is unknown is never sent again; a retry is.
				f.now = f.now.Add(3 * time.Hour)
				res, err = f.dispatcher(t, s).Send(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				wantRetry := 0
				if tc.wantStatus == "planned" {
					wantRetry = 1
				}
				if res.Sent != wantRetry {
					t.Fatalf("second run sent %d, want %d", res.Sent, wantRetry)
				}
			})
		}
	}
}

// sendModes are the ways a client may send commands: one at a time, or
// pipelined to a server that offers it.
var sendModes = []struct {
	name string
	ext  []string
}{{"one by one", nil}, {"pipelined", []string{"PIPELINING"}}}

// TestSMTPSender_PipelinesOnlyWhenOffered: MAIL, RCPT and DATA go out
// together to a server that offers PIPELINING (RFC 2920), and one by one
// to one that does not.
func TestSMTPSender_PipelinesOnlyWhenOffered(t *testing.T) {
	for _, mode := range sendModes {
		srv := startFake(t, func(string, int) string { return "" }, mode.ext...)
		s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: srv.ln.Addr().String(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
		offered, err := s.Check(context.Background())
		if err != nil || slices.Contains(offered, "PIPELINING") != (mode.ext != nil) || !slices.Contains(offered, "8BITMIME") {
			t.Fatalf("%s: check says the server offers %v (%v)", mode.name, offered, err)
		}
		for i := range 3 {
			env := mailer.Envelope{From: "noreply@example.ru", To: []string{fmt.Sprintf("c%d@example.ru", i)}}
			if err := s.Send(context.Background(), env, []byte("Subject: hi\r\n\r\nhi\r\n"), nil); err != nil {
				t.Fatalf("%s: send %d: %v", mode.name, i, err)
			}
		}
		// An address with a line break goes nowhere, not even ahead.
		env := mailer.Envelope{From: "noreply@example.ru", To: []string{"x@example.ru>\r\nRCPT TO:<y@example.ru"}}
		if err := s.Send(context.Background(), env, []byte("Subject: hi\r\n\r\nhi\r\n"), nil); err == nil {
			t.Fatalf("%s: an address with CRLF was sent", mode.name)
		}
		s.Close()
		srv.mu.Lock()
		accepted, pipelined, sessions := srv.accepted, srv.pipelined, srv.sessions
		for _, r := range srv.rcpts {
			if strings.Contains(r, "example.ru>") && !strings.HasPrefix(r, "RCPT TO:<c") {
				t.Errorf("%s: the server got %q", mode.name, r)
			}
		}
		srv.mu.Unlock()
		want := 0
		if mode.ext != nil {
			want = 3
		}
		if accepted != 3 || pipelined != want || sessions != 2 { // the check's and the sending one
			t.Errorf("%s: %d accepted, %d pipelined, %d sessions; want 3, %d, 2", mode.name, accepted, pipelined, sessions, want)
		}
	}
}

// TestSMTPSender_PipelinesNextEnvelope: the next message's envelope goes
// with the final dot where the server offers PIPELINING; a failed dot, or
// a message other than the one announced, starts a new session and loses
// nothing.
func TestSMTPSender_PipelinesNextEnvelope(t *testing.T) {
	msg := []byte("Subject: hi\r\n\r\nhi\r\n")
	env := func(i int) mailer.Envelope {
		return mailer.Envelope{From: "noreply@example.ru", To: []string{fmt.Sprintf("c%d@example.ru", i)}}
	}
	then := func(i int) func() (mailer.Envelope, bool) {
		return func() (mailer.Envelope, bool) { return env(i), true }
	}
	ctx := context.Background()
	for _, mode := range sendModes {
		srv := startFake(t, func(string, int) string { return "" }, mode.ext...)
		s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: srv.ln.Addr().String(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
		for i := range 3 {
			if err := s.SendThen(ctx, env(i), msg, nil, then(i+1)); err != nil {
				t.Fatalf("%s: send %d: %v", mode.name, i, err)
			}
		}
		// Announced c3, sends c9: the session cannot go on.
		if err := s.Send(ctx, env(9), msg, nil); err != nil {
			t.Fatalf("%s: send another: %v", mode.name, err)
		}
		s.Close()
		srv.mu.Lock()
		accepted, afterDot, sessions := srv.accepted, srv.afterDot, srv.sessions
		srv.mu.Unlock()
		want, wantSessions := 0, 1
		if mode.ext != nil {
			want, wantSessions = 3, 2
		}
		if accepted != 4 || afterDot != want || sessions != wantSessions {
			t.Errorf("%s: %d accepted, %d dots with the next envelope, %d sessions; want 4, %d, %d",
				mode.name, accepted, afterDot, sessions, want, wantSessions)
		}
	}

	// The first final dot is refused: the next message, whose envelope
	// went with it, goes in a new session.
	srv := startFake(t, func(step string, session int) string {
		if step == "dot" && session == 1 {
			return "554 5.6.0 no"
		}
		return ""
	}, "PIPELINING")
	s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: srv.ln.Addr().String(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer s.Close()
	var se *mailer.SendError
	if err := s.SendThen(ctx, env(0), msg, nil, then(1)); !errors.As(err, &se) || se.Outcome != mailer.Refused {
		t.Fatalf("refused dot: err = %v", err)
	}
	if err := s.SendThen(ctx, env(1), msg, nil, nil); err != nil {
		t.Fatalf("the message after a refused one: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.accepted != 1 || srv.sessions != 2 || srv.afterDot != 1 {
		t.Errorf("%d accepted, %d sessions, %d dots with the next envelope; want 1, 2, 1", srv.accepted, srv.sessions, srv.afterDot)
	}
}

// TestSMTPSender_StartTLSFailures: a server that does not offer STARTTLS,
// refuses it, or slips a reply in before the handshake gets no mail.
func TestSMTPSender_StartTLSFailures(t *testing.T) {
	for _, tc := range []struct {
		name, step, reply string
		ext               []string
		want              string
	}{
		{"not offered", "", "", nil, "does not offer STARTTLS"},
		{"no EHLO", "ehlo", "502 5.5.1 no", []string{"STARTTLS"}, "does not offer STARTTLS: EHLO: SMTP error 502"},
		{"refused", "", "", []string{"STARTTLS"}, "454"},
		{"injected", "starttls", "220 go ahead\r\n250 injected", []string{"STARTTLS"}, "more than its reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, func(step string, _ int) string {
				if step == tc.step {
					return tc.reply
				}
				return ""
			}, tc.ext...)
			s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: srv.ln.Addr().String(), TLS: mailer.TLSStartTLS, Timeout: 5 * time.Second})
			err := s.Send(context.Background(), mailer.Envelope{From: "noreply@example.ru", To: []string{"c@example.ru"}},
				[]byte("Subject: hi\r\n\r\nhi\r\n"), nil)
			var se *mailer.SendError
			if !errors.As(err, &se) || se.Stage != "starttls" || se.Outcome != mailer.Temporary || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a temporary starttls failure saying %q", err, tc.want)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.accepted != 0 {
				t.Fatal("a message went out in clear")
			}
		})
	}
}

func TestDispatcher_PoolSendsEachOnce(t *testing.T) {
	box := startInbox(t, inbox.Options{})
	f := planned(t, 26)
	d := f.dispatcher(t, nil)
	d.NewSender = func() mailer.Sender {
		return mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	}
	d.Conns, d.Batch = 4, 5
	res, err := d.Send(context.Background())
	if err != nil || res.Sent != 26 {
		t.Fatalf("res = %+v %v", res, err)
	}
	seen := map[string]int{}
	for _, m := range box.Messages() {
		seen[m.To[0]]++
	}
	if len(seen) != 26 {
		t.Fatalf("%d recipients, want 26", len(seen))
	}
	for to, n := range seen {
		if n != 1 {
			t.Fatalf("%s got %d messages", to, n)
		}
	}
}

func TestDispatcher_HourlyCapPutsBackTheRest(t *testing.T) {
	box := startInbox(t, inbox.Options{})
	f := planned(t, 5)
	d := f.dispatcher(t, mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second}))
	d.PerHour = 3
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, _ := d.Send(ctx)
	if res.Sent != 3 || len(box.Messages()) != 3 {
		t.Fatalf("sent %d (inbox %d), want the cap of 3", res.Sent, len(box.Messages()))
	}
	st, _ := f.db.Status(context.Background())
	if st.Invitations.Planned != 2 || st.Invitations.Sending != 0 {
		t.Fatalf("invitations = %+v, want the 2 over the cap back in planned", st.Invitations)
	}
}

func TestDKIM_SignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	k := &mailer.DKIM{Domain: "example.ru", Selector: "otklik", Key: priv}
	msg, _, err := mailer.Compose(mailer.Message{From: mustAddr(t, "Магазин <noreply@example.ru>"), To: []*mailAddr{{Address: "a@example.ru"}},
		Subject: "Оцените покупку", Text: "текст", HTML: "<p>текст</p>", Unsubscribe: "https://x/u/t"})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	vs, err := dkim.VerifyWithOptions(strings.NewReader(string(signed)), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "otklik._domainkey.example.ru" {
				return nil, fmt.Errorf("unexpected lookup %s", domain)
			}
			return []string{record}, nil
		},
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verify: %v %+v", err, vs)
	}
	for _, h := range []string{"list-unsubscribe", "list-unsubscribe-post", "subject", "from"} {
		if !containsFold(vs[0].HeaderKeys, h) {
			t.Errorf("%s is not signed: %v", h, vs[0].HeaderKeys)
		}
	}
}

func containsFold(xs []string, s string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func TestPlanner_SamplingTarget(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t) // 2 November: 29 days left in the month
	var cs []store.Customer
	var ls []store.PurchaseLine
	for i := range 100 {
		code := fmt.Sprint("c", i)
		cs = append(cs, store.Customer{Code: code, Email: code + "@example.ru", Consent: true})
		ls = append(ls, store.PurchaseLine{StoreCode: "MSK", Receipt: code, At: f.now.Add(-20 * time.Hour), CustomerCode: code})
	}
	cs = append(cs, store.Customer{Code: "v0", Email: "v0@example.ru", Consent: true})
	ls = append(ls, store.PurchaseLine{StoreCode: "VVO", Receipt: "v", At: f.now.Add(-20 * time.Hour), CustomerCode: "v0"})
	f.load(t, cs, ls)
	p := f.planner()
	p.Sampling = mailer.Sampling{Targets: map[string]int{"MSK": 87}, PriorRate: 0.15, Rand: mrand.New(mrand.NewPCG(1, 2))}
	// Moscow: 87 answers / 29 days / 0.15 = 20 invitations today.
	res, err := p.Plan(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	msk := 0
	for _, in := range res.Invitations {
		if in.StoreCode == "MSK" {
			msk++
		}
	}
	if msk != 20 || res.NotSampled != 80 {
		t.Fatalf("Moscow invitations = %d, not sampled %d; want 20 and 80", msk, res.NotSampled)
	}
	// Vladivostok has no target: its receipt is invited too.
	if res, err = p.Plan(ctx, false); err != nil || res.Planned != 21 {
		t.Fatalf("plan: %+v %v", res, err)
	}
	// The same day again: today's share is planned already.
	if res, err = p.Plan(ctx, false); err != nil || res.Planned != 0 {
		t.Fatalf("second plan the same day: %+v %v", res, err)
	}
}

func TestPlanner_DryRunReasons(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	y := f.now.Add(-20 * time.Hour)
	f.load(t, []store.Customer{
		{Code: "ok", Email: "ok@example.ru", Consent: true},
		{Code: "no", Email: "no@example.ru"},
		{Code: "old", Email: "old@example.ru", Consent: true},
	}, []store.PurchaseLine{
		{StoreCode: "MSK", Receipt: "1", At: y, CustomerCode: "ok"},
		{StoreCode: "MSK", Receipt: "2", At: y, CustomerCode: "no"},
		{StoreCode: "MSK", Receipt: "3", At: y},
		{StoreCode: "MSK", Receipt: "4", At: y, CustomerCode: "ok", QtyMilli: -1000, SumKop: -100},
		{StoreCode: "MSK", Receipt: "5", At: f.now.AddDate(0, 0, -5), CustomerCode: "old"},
		{StoreCode: "MSK", Receipt: "6", At: y, CustomerCode: "ghost"},
	})
	res, err := f.planner().Plan(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"eligible": 1, "no_consent": 1, "anonymous": 1, "return": 1, "too_old": 1, "unknown_customer": 1}
	if fmt.Sprint(res.Reasons) != fmt.Sprint(want) || res.Planned != 1 {
		t.Fatalf("reasons = %v, planned %d; want %v and 1", res.Reasons, res.Planned, want)
	}
	if st, _ := f.db.Status(ctx); st.Invitations.Planned != 0 {
		t.Fatal("a dry run planned invitations")
	}
}

func TestReminderAndThanks(t *testing.T) {
	ctx := context.Background()
	box := startInbox(t, inbox.Options{})
	f := planned(t, 2) // a and b, 10:00 Moscow on 2 November
	p := f.planner()
	p.ReminderAfter = 3 * 24 * time.Hour
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer sender.Close()
	if res, err := f.dispatcher(t, sender).Send(ctx); err != nil || res.Sent != 2 {
		t.Fatalf("invitations: %+v %v", res, err)
	}
	// a answers: a thank-you with a promo code from 1C's file.
	b, _ := f.db.BeginBatch(ctx, 0)
	b.AddPromoCode(ctx, "HOFF-0001")
	b.Commit()
	tokens := tokensOf(t, box.Messages())
	if _, err := f.db.AddResponse(ctx, tokens["a@example.ru"], store.Response{Rating: 5, ThanksWithin: 72 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.dispatcher(t, sender).Send(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("thanks: %+v %v", res, err)
	}
	last := box.Messages()[2]
	if text, err := last.Part("text/plain"); err != nil || last.To[0] != "a@example.ru" || !strings.Contains(text, "HOFF-0001") {
		t.Fatalf("thank-you to %v without the code", last.To)
	}
	// Three days after the invitations, b (who did not answer) gets one
	// reminder; a does not, and nobody gets a second one.
	f.now = time.Date(2026, 11, 5, 6, 0, 0, 0, time.UTC)
	if res, err := p.Plan(ctx, false); err != nil || res.Reminders != 0 {
		t.Fatalf("before three days: %+v %v", res, err)
	}
	f.now = time.Date(2026, 11, 5, 7, 30, 0, 0, time.UTC)
	for range 2 {
		if _, err := p.Plan(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := f.dispatcher(t, sender).Send(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("reminder: %+v %v", res, err)
	}
	if to := box.Messages()[3].To[0]; to != "b@example.ru" {
		t.Fatalf("reminder went to %s", to)
	}
}

// tokensOf maps each recipient to the survey token in their invitation.
func tokensOf(t *testing.T, msgs []inbox.Message) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range msgs {
		body, err := m.Part("text/plain")
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(body, "/s/")
		if i < 0 {
			continue
		}
		tok := body[i+3:]
		tok = tok[:strings.IndexAny(tok, "?\r\n\" ")]
		out[m.To[0]] = tok
	}
	return out
}

// TestDelivery_LocalHoursAcrossZones steps a fake clock through a day in
// 15-minute steps, planning and sending as the daemon does: each customer
// gets exactly one invitation, inside 10:00-20:00 of their store's zone.
func TestDelivery_LocalHoursAcrossZones(t *testing.T) {
	ctx := context.Background()
	box := startInbox(t, inbox.Options{})
	f := newFixture(t)
	f.now = time.Date(2026, 11, 1, 20, 0, 0, 0, time.UTC)
	zones := map[string]*time.Location{}
	var cs []store.Customer
	var ls []store.PurchaseLine
	for i, st := range []struct{ code, zone string }{{"MSK", "Europe/Moscow"}, {"VVO", "Asia/Vladivostok"}} {
		loc, _ := time.LoadLocation(st.zone)
		for j := range 5 {
			code := fmt.Sprintf("%s%d", st.code, j)
			email := strings.ToLower(code) + "@example.ru"
			zones[email] = loc
			cs = append(cs, store.Customer{Code: code, Email: email, Consent: true})
			// Bought on 1 November, local time, in the afternoon.
			at := time.Date(2026, 11, 1, 14+j, 0, 0, 0, loc)
			ls = append(ls, store.PurchaseLine{StoreCode: st.code, Receipt: fmt.Sprint(i, j), At: at, CustomerCode: code})
		}
	}
	f.load(t, cs, ls)
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer sender.Close()
	sentAt := map[string][]time.Time{}
	for step := 0; step < 36*4; step++ {
		if _, err := f.planner().Plan(ctx, false); err != nil {
			t.Fatal(err)
		}
		before := len(box.Messages())
		if _, err := f.dispatcher(t, sender).Send(ctx); err != nil {
			t.Fatal(err)
		}
		for _, m := range box.Messages()[before:] {
			sentAt[m.To[0]] = append(sentAt[m.To[0]], f.now)
		}
		f.now = f.now.Add(15 * time.Minute)
	}
	if len(sentAt) != 10 {
		t.Fatalf("%d customers got mail, want 10", len(sentAt))
	}
	for email, ts := range sentAt {
		if len(ts) != 1 {
			t.Fatalf("%s got %d messages", email, len(ts))
		}
		local := ts[0].In(zones[email])
		if local.Hour() < 10 || local.Hour() >= 20 || local.Day() != 2 {
			t.Errorf("%s got the invitation at %s local, want 2 November 10:00-20:00", email, local.Format(time.DateTime))
		}
	}
}

func TestAlert_SentEscaped(t *testing.T) {
	ctx := context.Background()
	box := startInbox(t, inbox.Options{})
	f := planned(t, 1)
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer sender.Close()
	if _, err := f.dispatcher(t, sender).Send(ctx); err != nil {
		t.Fatal(err)
	}
	tok := tokensOf(t, box.Messages())["a@example.ru"]
	nps := 2
	if _, err := f.db.AddResponse(ctx, tok, store.Response{Rating: 1, NPS: &nps, Comment: `<script>alert("x")</script> грубый кассир`,
		Feedback: []store.Feedback{{Category: "service", Tone: "negative"}}, AlertTo: []string{"director@example.ru"}}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.dispatcher(t, sender).Send(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("alert: %+v %v", res, err)
	}
	m := box.Messages()[1]
	body, err := m.Part("text/html")
	if err != nil {
		t.Fatal(err)
	}
	if m.To[0] != "director@example.ru" {
		t.Fatalf("alert to %v", m.To)
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatal("the comment is not escaped in the alert's HTML")
	}
	if strings.Contains(string(m.Data), "List-Unsubscribe") {
		t.Fatal("an internal alert carries an unsubscribe header")
	}
}
