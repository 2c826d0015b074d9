package mailer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/otklik/otklik/mailer"
	"github.com/otklik/otklik/mailer/inbox"
	"github.com/otklik/otklik/store"
)

func startInbox(tb testing.TB, o inbox.Options) *inbox.Inbox {
	tb.Helper()
	box, err := inbox.StartWith(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { box.Close() })
	return box
}

// selfSigned returns a server config for 127.0.0.1 and a client config
// that trusts it.
func selfSigned(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func (f *fixture) dispatcher(tb testing.TB, s mailer.Sender) *mailer.Dispatcher {
	tb.Helper()
	tm, err := mailer.LoadTemplates("")
	if err != nil {
		tb.Fatal(err)
	}
	msk, _ := time.LoadLocation("Europe/Moscow")
	return &mailer.Dispatcher{DB: f.db, NewSender: func() mailer.Sender { return s }, Templates: tm, Zone: msk,
		From: &mail.Address{Name: "Магазин", Address: "noreply@example.ru"}, BaseURL: "https://otklik.example.ru"}
}

// planned loads n customers who bought yesterday in Moscow and plans
// their invitations; the clock is then at 10:00 Moscow time.
func planned(tb testing.TB, n int) *fixture {
	tb.Helper()
	f := newFixture(tb)
	var cs []store.Customer
	var ls []store.PurchaseLine
	for i := range n {
		code := string(rune('a' + i))
		cs = append(cs, store.Customer{Code: code, Name: "Иванов Иван Иванович", Email: code + "@example.ru", Consent: true})
		ls = append(ls, store.PurchaseLine{StoreCode: "MSK", Receipt: code, At: f.now.Add(-20 * time.Hour), CustomerCode: code})
	}
	f.load(tb, cs, ls)
	if res, err := f.planner().Plan(context.Background(), false); err != nil || res.Planned != n {
		tb.Fatalf("plan: %+v %v", res, err)
	}
	f.now = time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	return f
}

func TestDispatcher_SendsOnceOverStartTLSWithAuth(t *testing.T) {
	ctx := context.Background()
	srvTLS, cliTLS := selfSigned(t)
	box := startInbox(t, inbox.Options{TLS: srvTLS, User: "otklik", Password: "s3cret"})
	f := planned(t, 3)
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSStartTLS,
		Hello: "otklik.example.ru", User: "otklik", Password: "s3cret", TLSConfig: cliTLS, Timeout: 5 * time.Second})
	defer sender.Close()
	res, err := f.dispatcher(t, sender).Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 {
		t.Fatalf("sent %d, want 3: %+v", res.Sent, res)
	}
	if res, err = f.dispatcher(t, sender).Send(ctx); err != nil || res.Sent != 0 {
		t.Fatalf("second run: %+v %v", res, err)
	}
	msgs := box.Messages()
	if len(msgs) != 3 {
		t.Fatalf("inbox has %d messages, want 3", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if len(m.To) != 1 || seen[m.To[0]] {
			t.Fatalf("recipients %v (seen %v)", m.To, seen)
		}
		seen[m.To[0]] = true
		if !strings.Contains(string(m.Data), "List-Unsubscribe-Post: List-Unsubscribe=One-Click") {
			t.Error("no one-click unsubscribe header")
		}
	}
}

func TestDispatcher_SendsOverImplicitTLSWithAuth(t *testing.T) {
	ctx := context.Background()
	srvTLS, cliTLS := selfSigned(t)
	box := startInbox(t, inbox.Options{TLS: srvTLS, Implicit: true, User: "otklik", Password: "s3cret"})
	f := planned(t, 2)
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSImplicit,
		Hello: "otklik.example.ru", User: "otklik", Password: "s3cret", TLSConfig: cliTLS, Timeout: 5 * time.Second})
	defer sender.Close()
	res, err := f.dispatcher(t, sender).Send(ctx)
	if err != nil || res.Sent != 2 {
		t.Fatalf("res = %+v %v, want 2 sent", res, err)
	}
	if msgs := box.Messages(); len(msgs) != 2 {
		t.Fatalf("inbox has %d messages, want 2", len(msgs))
	}
}

func TestSMTPSender_RefusesPasswordWithoutTLS(t *testing.T) {
	box := startInbox(t, inbox.Options{})
	s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, User: "u", Password: "p", Timeout: 5 * time.Second})
	_, err := s.Check(context.Background())
	var se *mailer.SendError
	if !errors.As(err, &se) || se.Stage != "auth" || !strings.Contains(err.Error(), "without TLS") {
		t.Fatalf("err = %v, want a refusal to authenticate in clear", err)
	}
}

// A message whose send could not be recorded is withheld at the final
// dot: the server discards what it got, and the next message goes out on
// a new connection.
func TestSMTPSender_WithheldBeforeTheDot(t *testing.T) {
	ctx := context.Background()
	box := startInbox(t, inbox.Options{})
	var rcpts []string
	box.Reject = func(rcpt string) error { rcpts = append(rcpts, rcpt); return nil }
	s := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer s.Close()
	msg := []byte("Subject: test\r\n\r\n" + strings.Repeat("строка письма\r\n", 1000))
	asked := 0
	err := s.Send(ctx, mailer.Envelope{From: "noreply@example.ru", To: []string{"a@example.ru"}}, msg, func() bool {
		asked++
		if len(rcpts) != 1 {
			t.Errorf("confirm asked before the envelope was taken: %v", rcpts)
		}
		return false
	})
	if !errors.Is(err, mailer.ErrWithheld) || asked != 1 {
		t.Fatalf("err = %v, confirm asked %d times; want ErrWithheld after one", err, asked)
	}
	if err := s.Send(ctx, mailer.Envelope{From: "noreply@example.ru", To: []string{"b@example.ru"}}, msg, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	msgs := box.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "b@example.ru" {
		t.Fatalf("inbox: %d messages (%v), want only b's", len(msgs), msgs)
	}
}

func TestDispatcher_Outcomes(t *testing.T) {
	ctx := context.Background()
	box := startInbox(t, inbox.Options{})
	box.Reject = func(rcpt string) error {
		switch rcpt {
		case "a@example.ru":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case "b@example.ru":
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
		}
		return nil
	}
	f := planned(t, 3)
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer sender.Close()
	res, err := f.dispatcher(t, sender).Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 1 || res.Bounced != 1 || res.Retry != 1 {
		t.Fatalf("res = %+v, want 1 sent, 1 bounced, 1 retry", res)
	}
	s, _ := f.db.Status(ctx)
	if s.Suppressed != 1 || s.Invitations.Bounced != 1 || s.Invitations.Planned != 1 {
		t.Fatalf("status = %+v", s.Invitations)
	}
	// The greylisting ends; the retry goes out after its backoff.
	box.Reject = nil
	f.now = f.now.Add(10 * time.Minute)
	if res, err = f.dispatcher(t, sender).Send(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if got := len(box.Messages()); got != 2 {
		t.Fatalf("inbox has %d messages, want 2", got)
	}
}

func TestDispatcher_ServerDownRetriesThenExpires(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	f := planned(t, 1)
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: addr, TLS: mailer.TLSNone, Timeout: time.Second})
	res, err := f.dispatcher(t, sender).Send(ctx)
	if err != nil || res.Retry != 1 {
		t.Fatalf("res = %+v %v, want a retry", res, err)
	}
	f.now = f.now.Add(24 * time.Hour) // past the end of the window
	if res, err = f.dispatcher(t, sender).Send(ctx); err != nil || res.Expired != 1 {
		t.Fatalf("res = %+v %v, want the invitation expired", res, err)
	}
}

func TestDispatcher_InFlightBecomesUnknown(t *testing.T) {
	ctx := context.Background()
	f := planned(t, 2)
	// A run that claimed invitations and died before settling them.
	out, err := f.db.ClaimDue(ctx, 2)
	if err != nil || len(out) != 2 {
		t.Fatalf("claim: %v %v", out, err)
	}
	if ok, err := f.db.Start(ctx, out[0]); err != nil || !ok { // in flight; the other only claimed
		t.Fatalf("start: %v %v", ok, err)
	}
	box := startInbox(t, inbox.Options{})
	sender := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer sender.Close()
	res, err := f.dispatcher(t, sender).Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 1 || res.Sent != 1 || len(box.Messages()) != 1 {
		t.Fatalf("res = %+v, inbox %d; want 1 recovered as unknown and 1 sent", res, len(box.Messages()))
	}
	s, _ := f.db.Status(ctx)
	if s.Invitations.Unknown != 1 {
		t.Fatalf("unknown = %d", s.Invitations.Unknown)
	}
}

// stopAfterAhead stops the run once the next message's envelope has gone
// out with the final dot of the one before.
type stopAfterAhead struct {
	*mailer.SMTPSender
	stop func()
}

func (s stopAfterAhead) SendThen(ctx context.Context, env mailer.Envelope, msg []byte, confirm func() bool, next func() (mailer.Envelope, bool)) error {
	return s.SMTPSender.SendThen(ctx, env, msg, confirm, func() (mailer.Envelope, bool) {
		time.Sleep(100 * time.Millisecond) // the next message is rendered meanwhile
		e, ok := next()
		if ok {
			s.stop()
		}
		return e, ok
	})
}

// TestDispatcher_StoppedAfterEnvelopeAhead: a message whose envelope went
// out ahead when the run stopped was not sent, so it is planned again, not
// unknown, and the next run sends it once.
func TestDispatcher_StoppedAfterEnvelopeAhead(t *testing.T) {
	f := planned(t, 2)
	box := startInbox(t, inbox.Options{})
	smtp := mailer.NewSMTPSender(mailer.SMTPConfig{Address: box.Addr(), TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	defer smtp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := f.dispatcher(t, stopAfterAhead{smtp, cancel}).Send(ctx)
	if !errors.Is(err, context.Canceled) || res.Sent != 1 || res.Unknown != 0 || len(box.Messages()) != 1 {
		t.Fatalf("stopped run: %+v %v, inbox %d; want 1 sent, stopped", res, err, len(box.Messages()))
	}
	s, _ := f.db.Status(context.Background())
	if s.Invitations.Planned != 1 || s.Invitations.Sending != 0 {
		t.Fatalf("invitations %+v; want the other planned again", s.Invitations)
	}
	if res, err := f.dispatcher(t, smtp).Send(context.Background()); err != nil || res.Sent != 1 {
		t.Fatalf("next run: %+v %v", res, err)
	}
	msgs := box.Messages()
	if len(msgs) != 2 || msgs[0].To[0] == msgs[1].To[0] {
		t.Fatalf("inbox %d messages; want one to each customer", len(msgs))
	}
}
