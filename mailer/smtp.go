package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of an SMTP connection.
const (
	TLSStartTLS = "starttls" // port 587: plain, then STARTTLS (required)
	TLSImplicit = "implicit" // port 465: TLS from the first byte
	TLSNone     = "none"     // a relay on localhost; AUTH is refused
)

// Outcome classifies a failed send.
type Outcome int

// Outcomes of a failed send.
const (
	// Temporary: a 4xx reply or a connection failure before the message
	// was handed over; try again later.
	Temporary Outcome = iota
	// Bounced: the server refused the recipient for good (5xx on RCPT).
	Bounced
	// Refused: the server refused the message or the sender for good.
	Refused
	// Uncertain: the connection broke after the message was handed over;
	// the server may have accepted it, so it must not be sent again.
	Uncertain
)

func (o Outcome) String() string {
	return [...]string{"temporary", "bounced", "refused", "uncertain"}[o]
}

// SendError is returned by Sender.Send.
type SendError struct {
	Outcome Outcome
	Stage   string // dial, hello, auth, mail, rcpt, data
	Err     error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("smtp %s (%s): %v", e.Stage, e.Outcome, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	From string
	To   []string
}

// Sender delivers a finished message.
type Sender interface {
	// Send delivers msg and returns nil, a *SendError or ErrWithheld.
	// If confirm is not nil, it is called once the envelope and the data
	// are written but for the final dot, which is what hands the message
	// over: only if confirm returns true is it sent; else the connection
	// is dropped, so that the server discards what it has, and Send
	// returns ErrWithheld. It lets the caller finish recording the send
	// while the message is on the wire.
	Send(ctx context.Context, env Envelope, msg []byte, confirm func() bool) error
	Close() error
}

// ErrWithheld is returned by Send when confirm said not to send.
var ErrWithheld = errors.New("message withheld before its data")

// SMTPConfig configures an SMTPSender.
type SMTPConfig struct {
	Address  string // host:port
	TLS      string // starttls (default), implicit or none
	Hello    string // the name to introduce ourselves with (an FQDN)
	User     string
	Password string
	// TLSConfig overrides the TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
	Timeout   time.Duration // per command; 0 means 60s
}

// SMTPSender sends through one SMTP connection, opened on first use and
// kept for the messages that follow. A transaction that failed is reset
// with RSET; one that ended with the server's reply to the data needs no
// reset, the next MAIL starts afresh (RFC 5321 4.1.1.4), which saves a
// round trip a message.
type SMTPSender struct {
	cfg SMTPConfig
	c   *smtp.Client
	n   int // messages on this connection
}

var _ Sender = (*SMTPSender)(nil)

// maxPerConn bounds how many messages go over one connection; servers
// close long-lived sessions.
const maxPerConn = 100

// NewSMTPSender returns a sender; it connects on the first Send.
func NewSMTPSender(cfg SMTPConfig) *SMTPSender {
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Hello == "" {
		cfg.Hello = "localhost"
	}
	return &SMTPSender{cfg: cfg}
}

// Dial connects, says hello, secures and authenticates a new client. It is
// also what `otklik check` uses to test the server.
func (s *SMTPSender) Dial(ctx context.Context) (*smtp.Client, error) {
	cfg := s.cfg
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, &SendError{Temporary, "dial", err}
	}
	tlsCfg := cfg.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg = tlsCfg.Clone()
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = host
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, &SendError{Temporary, "dial", err}
	}
	conn := &corkedConn{Conn: raw}
	var c *smtp.Client
	switch cfg.TLS {
	case TLSImplicit:
		tc := tls.Client(conn, tlsCfg)
		tc.SetDeadline(time.Now().Add(cfg.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, &SendError{Temporary, "tls", err}
		}
		c = smtp.NewClient(tc)
	case TLSStartTLS:
		// The first EHLO says "localhost"; after STARTTLS the session
		// starts over and Hello below introduces us properly.
		c, err = smtp.NewClientStartTLS(conn, tlsCfg)
		if err != nil {
			conn.Close()
			return nil, &SendError{classify(err, Temporary), "starttls", err}
		}
	case TLSNone:
		c = smtp.NewClient(conn)
	default:
		conn.Close()
		return nil, &SendError{Refused, "dial", fmt.Errorf("unknown tls mode %q", cfg.TLS)}
	}
	c.CommandTimeout = cfg.Timeout
	c.SubmissionTimeout = 2 * cfg.Timeout
	if err := c.Hello(cfg.Hello); err != nil {
		c.Close()
		return nil, &SendError{classify(err, Temporary), "hello", err}
	}
	if cfg.User != "" {
		// go-sasl's PLAIN sends the password whatever the transport; only
		// ever over TLS (PITFALLS: go-smtp AUTH in clear).
		if _, ok := c.TLSConnectionState(); !ok {
			c.Close()
			return nil, &SendError{Refused, "auth", errors.New("refusing to send the password over a connection without TLS")}
		}
		if err := c.Auth(sasl.NewPlainClient("", cfg.User, cfg.Password)); err != nil {
			c.Close()
			return nil, &SendError{classify(err, Refused), "auth", err}
		}
	}
	return c, nil
}

// Send delivers one message. A per-message failure resets the session so
// that the connection can carry the next message.
func (s *SMTPSender) Send(ctx context.Context, env Envelope, msg []byte, confirm func() bool) error {
	if s.c != nil && s.n >= maxPerConn {
		s.Close()
	}
	if s.c == nil {
		c, err := s.Dial(ctx)
		if err != nil {
			return err
		}
		s.c, s.n = c, 0
	}
	s.n++
	err := s.transaction(env, msg, confirm)
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) && se.Outcome != Uncertain && isReply(se.Err) {
		if s.c.Reset() == nil {
			return err
		}
	}
	s.drop()
	return err
}

func (s *SMTPSender) transaction(env Envelope, msg []byte, confirm func() bool) error {
	c := s.c
	if err := c.Mail(env.From, nil); err != nil {
		return &SendError{classify(err, Temporary), "mail", err}
	}
	for _, to := range env.To {
		if err := c.Rcpt(to, nil); err != nil {
			return &SendError{classify(err, Temporary, Bounced), "rcpt", err}
		}
	}
	w, err := c.Data()
	if err != nil {
		return &SendError{classify(err, Temporary), "data", err}
	}
	if _, err := w.Write(msg); err != nil {
		return &SendError{Temporary, "data", err}
	}
	if confirm != nil && !confirm() {
		// Without the final dot the server has no message to deliver
		// (RFC 5321 4.1.1.4); nothing but closing ends DATA early.
		return ErrWithheld
	}
	if err := w.Close(); err != nil {
		// The final dot was written: a broken connection now leaves the
		// message's fate unknown (knadh/smtppool#20).
		return &SendError{classify(err, Uncertain), "data", err}
	}
	return nil
}

// classify maps an SMTP error to an outcome: 4xx is temporary, 5xx is
// permanent (perm5xx, Refused if not given), anything else (a network
// error) is netOutcome.
func classify(err error, netOutcome Outcome, perm5xx ...Outcome) Outcome {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Temporary() {
			return Temporary
		}
		if se.Code >= 500 {
			if len(perm5xx) > 0 {
				return perm5xx[0]
			}
			return Refused
		}
	}
	return netOutcome
}

func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

func (s *SMTPSender) drop() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}

// Close ends the session politely.
func (s *SMTPSender) Close() error {
	if s.c == nil {
		return nil
	}
	err := s.c.Quit()
	s.drop()
	return err
}

// Check connects to the server, says hello, authenticates and quits.
func (s *SMTPSender) Check(ctx context.Context) error {
	c, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	return c.Quit()
}

// corkedConn holds what is written until the next read. An SMTP client
// reads a reply after every command, so nothing waits longer than it
// would anyway, but a message written through the client's 4 KiB buffer
// leaves in one write with its final dot instead of one per 4 KiB: fewer
// system calls and wake-ups on both sides.
type corkedConn struct {
	net.Conn
	buf []byte
}

// corkMax is how much corkedConn holds before it writes anyway.
const corkMax = 64 << 10

func (c *corkedConn) Write(p []byte) (int, error) {
	if len(c.buf)+len(p) > corkMax {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) > corkMax {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *corkedConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *corkedConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
