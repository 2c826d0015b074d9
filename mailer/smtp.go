package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strings"
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
// with RSET, or the connection dropped if replies to commands pipelined
// with the failed one are still unread; one that ended with the server's
// reply to the data needs no reset, the next MAIL starts afresh (RFC 5321
// 4.1.1.4), which saves a round trip a message.
type SMTPSender struct {
	cfg SMTPConfig
	c   *smtp.Client
	n   int // messages on this connection
	// conn is c's connection (above TLS); pipelining says it sends a
	// transaction's commands together, eightBit that the server takes
	// BODY=8BITMIME, which go-smtp's client then adds to MAIL.
	conn       *corkedConn
	pipelining bool
	eightBit   bool
	// ahead is the envelope whose commands went out with the last
	// message's final dot (SendThen).
	ahead *Envelope
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

// dial connects, secures, says hello and authenticates a new client, and
// returns it with the connection under it.
func (s *SMTPSender) dial(ctx context.Context) (*smtp.Client, *corkedConn, error) {
	cfg := s.cfg
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, nil, &SendError{Temporary, "dial", err}
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
		return nil, nil, &SendError{Temporary, "dial", err}
	}
	// The client's connection sits above TLS, where corkedConn sees the
	// commands.
	conn := &corkedConn{Conn: raw, timeout: cfg.Timeout}
	switch cfg.TLS {
	case TLSImplicit:
		tc := tls.Client(raw, tlsCfg)
		tc.SetDeadline(time.Now().Add(cfg.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, &SendError{Temporary, "tls", err}
		}
		tc.SetDeadline(time.Time{})
		conn.Conn = tc
	case TLSStartTLS:
		tc, reply, err := startTLS(ctx, raw, cfg.Hello, tlsCfg, cfg.Timeout)
		if err != nil {
			raw.Close()
			return nil, nil, &SendError{classify(err, Temporary), "starttls", err}
		}
		conn.Conn, conn.greeting = tc, []byte(reply)
	case TLSNone: // a relay on localhost: the connection as dialled
	default:
		raw.Close()
		return nil, nil, &SendError{Refused, "dial", fmt.Errorf("unknown tls mode %q", cfg.TLS)}
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = cfg.Timeout
	c.SubmissionTimeout = 2 * cfg.Timeout
	if err := c.Hello(cfg.Hello); err != nil {
		c.Close()
		return nil, nil, &SendError{classify(err, Temporary), "hello", err}
	}
	if cfg.User != "" {
		// go-sasl's PLAIN sends the password whatever the transport; only
		// ever over TLS (PITFALLS: go-smtp AUTH in clear).
		if cfg.TLS == TLSNone {
			c.Close()
			return nil, nil, &SendError{Refused, "auth", errors.New("refusing to send the password over a connection without TLS")}
		}
		if err := c.Auth(sasl.NewPlainClient("", cfg.User, cfg.Password)); err != nil {
			c.Close()
			return nil, nil, &SendError{classify(err, Refused), "auth", err}
		}
	}
	return c, conn, nil
}

// Send delivers one message. A per-message failure resets the session so
// that the connection can carry the next message.
func (s *SMTPSender) Send(ctx context.Context, env Envelope, msg []byte, confirm func() bool) error {
	return s.SendThen(ctx, env, msg, confirm, nil)
}

// SendThen is Send that also asks next, once the message is confirmed,
// for the envelope of the message that will follow on this connection.
// Given one, and where the server offers PIPELINING, that message's MAIL,
// RCPT and DATA go out with this one's final dot (RFC 2920 allows it
// across transactions), which saves a round trip a message; the following
// call must then be for that envelope. Its replies come after the reply
// to the dot, so a failed message drops the connection and the next one
// starts on a new one.
func (s *SMTPSender) SendThen(ctx context.Context, env Envelope, msg []byte, confirm func() bool, next func() (Envelope, bool)) error {
	if s.c != nil && s.ahead != nil && !sameEnvelope(*s.ahead, env) {
		s.drop() // not what went out ahead: the session cannot go on
	}
	if s.c != nil && s.n >= maxPerConn {
		s.Close()
	}
	if s.c == nil {
		c, conn, err := s.dial(ctx)
		if err != nil {
			return err
		}
		s.c, s.conn, s.n = c, conn, 0
		s.pipelining, _ = c.Extension("PIPELINING")
		s.eightBit, _ = c.Extension("8BITMIME")
	}
	s.n++
	err := s.transaction(env, msg, confirm, next)
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) && se.Outcome != Uncertain && isReply(se.Err) && !s.conn.pending() {
		if s.c.Reset() == nil {
			return err
		}
	}
	s.drop()
	return err
}

func (s *SMTPSender) transaction(env Envelope, msg []byte, confirm func() bool, next func() (Envelope, bool)) error {
	c := s.c
	if s.ahead != nil {
		// MAIL, RCPT and DATA went out with the last final dot; the
		// client's copies are taken as sent.
		s.ahead = nil
	} else if s.pipelining {
		// RCPT and DATA go out with MAIL, and the client's own copies of
		// them are taken as sent.
		s.conn.pipeline("", env.To)
	}
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
	if err := writeData(s.conn, w, msg); err != nil {
		return &SendError{Temporary, "data", err}
	}
	if confirm != nil && !confirm() {
		// Without the final dot the server has no message to deliver
		// (RFC 5321 4.1.1.4); nothing but closing ends DATA early.
		return ErrWithheld
	}
	if next != nil && s.pipelining && s.n < maxPerConn {
		if e, ok := next(); ok && s.conn.pipeline(s.mailCommand(e.From), e.To) {
			s.ahead = &e
		}
	}
	if err := w.Close(); err != nil {
		// The final dot was written: a broken connection now leaves the
		// message's fate unknown (knadh/smtppool#20).
		return &SendError{classify(err, Uncertain), "data", err}
	}
	return nil
}

// writeData writes msg as the content of DATA. The client's dot-writer
// goes through it a byte at a time, which was a seventh of what sending
// cost; the lines that are already as they go on the wire (ending in
// CRLF, not starting with a dot), as Compose writes them, go to conn as
// they are instead. The client has written everything before them: it
// flushes each command before reading its reply. The rest, at least the
// last line, goes through the client, which ends it with the final dot.
func writeData(conn, client io.Writer, msg []byte) error {
	if n := wireLines(msg); n > 0 {
		if _, err := conn.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	_, err := client.Write(msg)
	return err
}

// wireLines is the length of the whole lines at the start of msg that
// the dot-writer would write unchanged: not starting with a dot, with a
// CR only right before their LF. The last line is left out.
func wireLines(msg []byte) int {
	n := 0
	for n < len(msg) && msg[n] != '.' {
		line := msg[n:]
		i := bytes.IndexByte(line, '\n')
		if i < 1 || line[i-1] != '\r' || bytes.IndexByte(line[:i-1], '\r') >= 0 || i+1 == len(line) {
			break
		}
		n += i + 1
	}
	return n
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

// mailCommand is the MAIL command go-smtp's client writes for from,
// without options.
func (s *SMTPSender) mailCommand(from string) string {
	if s.eightBit {
		return "MAIL FROM:<" + from + "> BODY=8BITMIME"
	}
	return "MAIL FROM:<" + from + ">"
}

func sameEnvelope(a, b Envelope) bool {
	return a.From == b.From && slices.Equal(a.To, b.To)
}

func (s *SMTPSender) drop() {
	if s.c != nil {
		s.c.Close()
		s.c, s.conn, s.ahead = nil, nil, nil
	}
}

// Close ends the session politely, or drops it if commands went out
// ahead whose replies are unread (the server is then waiting for data).
func (s *SMTPSender) Close() error {
	if s.c == nil {
		return nil
	}
	if s.conn.pending() { // also when the next envelope went ahead
		s.drop()
		return nil
	}
	err := s.c.Quit()
	s.drop()
	return err
}

// Check connects to the server, says hello, authenticates and quits. It
// returns which of the extensions sending uses the server offers.
func (s *SMTPSender) Check(ctx context.Context) (offered []string, err error) {
	c, _, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	for _, ext := range sendingExtensions {
		if ok, _ := c.Extension(ext); ok {
			offered = append(offered, ext)
		}
	}
	return offered, c.Quit()
}

// sendingExtensions are the extensions that sending makes use of.
var sendingExtensions = []string{"PIPELINING", "8BITMIME"}

// startTLS secures raw as RFC 3207 has it: the greeting, EHLO, STARTTLS,
// then the TLS handshake. go-smtp's client would put TLS around the
// connection it was given, below corkedConn, which would then see only
// ciphertext; so the client starts on the secured connection instead, and
// takes the server's 220 reply to STARTTLS for the greeting it reads
// first. Its own EHLO then starts the session afresh, as it must.
func startTLS(ctx context.Context, raw net.Conn, hello string, cfg *tls.Config, timeout time.Duration) (*tls.Conn, string, error) {
	raw.SetDeadline(time.Now().Add(timeout))
	defer raw.SetDeadline(time.Time{})
	tp := textproto.NewConn(raw)
	cmd := func(code int, format string, args ...any) (string, error) {
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				return "", err
			}
		}
		_, msg, err := tp.ReadResponse(code)
		var te *textproto.Error
		if errors.As(err, &te) {
			err = &smtp.SMTPError{Code: te.Code, Message: te.Msg}
		}
		return msg, err
	}
	if _, err := cmd(220, ""); err != nil {
		return nil, "", err
	}
	ext, err := cmd(250, "EHLO %s", hello)
	if err != nil {
		// Not the message's fault: retried, as with no STARTTLS offered.
		return nil, "", fmt.Errorf("the server does not offer STARTTLS: EHLO: %v", err)
	}
	offered := false
	for _, line := range strings.Split(ext, "\n")[1:] {
		offered = offered || strings.EqualFold(strings.TrimSpace(line), "STARTTLS")
	}
	if !offered {
		return nil, "", errors.New("the server does not offer STARTTLS")
	}
	reply, err := cmd(220, "STARTTLS")
	if err != nil {
		return nil, "", err
	}
	if tp.R.Buffered() > 0 {
		// Whatever came before the handshake was not encrypted and must
		// not pass for what came after (CVE-2011-0411).
		return nil, "", errors.New("the server sent more than its reply to STARTTLS")
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", err
	}
	return tc, "220 " + strings.ReplaceAll(reply, "\n", " ") + "\r\n", nil
}

// corkedConn holds what is written until the next read. An SMTP client
// reads a reply after every command, so nothing waits longer than it
// would anyway, but a message written through the client's 4 KiB buffer
// leaves in one write with its final dot instead of one per 4 KiB: fewer
// system calls and wake-ups on both sides.
//
// It also pipelines (RFC 2920) for go-smtp's client, which writes a
// command only once it has the reply to the one before: given the
// commands that will follow the next one, it sends them together, then
// takes the client's own copies as sent. The server answers in order and
// the client reads each reply as if its command had gone alone; a
// transaction costs two round trips (MAIL, RCPT and DATA; the data)
// instead of four, and one when the next transaction's commands go with
// the final dot (SendThen).
type corkedConn struct {
	net.Conn
	buf []byte
	// ahead goes out after what the client writes before its next read;
	// sent is what went out early and the client has yet to write,
	// pending its replies.
	ahead, sent []byte
	// greeting is read before the connection: see startTLS.
	greeting []byte
	// timeout bounds a write made before the client reads a reply,
	// which it makes with no deadline of its own (a large message).
	timeout time.Duration
}

// corkMax is how much corkedConn holds before it writes anyway.
const corkMax = 64 << 10

// errPipeline is a client writing other commands than it was to.
var errPipeline = errors.New("smtp client wrote other commands than pipelined")

// pipeline sends mail (the MAIL command, if not "") and RCPT for each of
// to, then DATA, after what the client writes before it next reads a
// reply, and reports whether it will. A command with a line break is left
// to the client, which refuses it: it must not go out ahead of that check.
func (c *corkedConn) pipeline(mail string, to []string) bool {
	c.ahead = c.ahead[:0]
	if strings.ContainsAny(mail, "\r\n") {
		return false
	}
	if mail != "" {
		c.ahead = append(append(c.ahead, mail...), "\r\n"...)
	}
	for _, addr := range to {
		if strings.ContainsAny(addr, "\r\n") {
			c.ahead = c.ahead[:0]
			return false
		}
		c.ahead = fmt.Appendf(c.ahead, "RCPT TO:<%s>\r\n", addr)
	}
	c.ahead = append(c.ahead, "DATA\r\n"...)
	return true
}

// pending reports whether commands went out early whose replies the
// client has not read: the session cannot go on from there.
func (c *corkedConn) pending() bool { return len(c.ahead)+len(c.sent) > 0 }

func (c *corkedConn) Write(p []byte) (int, error) {
	n := len(p)
	if len(c.sent) > 0 {
		k := min(len(p), len(c.sent))
		if !bytes.Equal(p[:k], c.sent[:k]) {
			return 0, errPipeline
		}
		c.sent, p = c.sent[k:], p[k:]
	}
	if len(c.buf)+len(p) > corkMax {
		if c.timeout > 0 {
			c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		}
		if err := c.flush(false); err != nil {
			return 0, err
		}
		if len(p) > corkMax {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	return n, nil
}

func (c *corkedConn) Read(p []byte) (int, error) {
	if len(c.greeting) > 0 {
		n := copy(p, c.greeting)
		c.greeting = c.greeting[n:]
		return n, nil
	}
	if err := c.flush(true); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// flush writes what is held, and what is to go ahead if the client is
// about to read: only then has it written all that must go before.
func (c *corkedConn) flush(reading bool) error {
	if len(c.buf) == 0 {
		return nil
	}
	if reading && len(c.ahead) > 0 {
		c.buf = append(c.buf, c.ahead...)
		c.sent = append(c.sent, c.ahead...)
		c.ahead = c.ahead[:0]
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
