// Package inbox is a small SMTP server on loopback that keeps every
// message it accepts, in memory and optionally as .eml files in a folder.
// The demo uses it as the "mail server" so that nothing needs installing,
// and tests use it to capture what otklik sends.
package inbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data []byte
	Path string // the .eml file, if the inbox writes to a folder
}

// Part returns the decoded body of the message's first part of the media
// type (text/plain, text/html), "" if it has none.
func (m Message) Part(mediaType string) (string, error) {
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		return "", fmt.Errorf("read message: %w", err)
	}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read message: %w", err)
		}
		if t, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); t != mediaType {
			continue
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			return "", fmt.Errorf("read message: %w", err)
		}
		return string(body), nil
	}
}

// Inbox is a running SMTP server.
type Inbox struct {
	srv  *smtp.Server
	ln   net.Listener
	dir  string
	done chan struct{}

	mu       sync.Mutex
	messages []Message

	// Reject, if set, is asked about each recipient; a non-nil error
	// (an *smtp.SMTPError for a precise reply) refuses it.
	Reject func(rcpt string) error
}

// Options configure an inbox beyond the defaults.
type Options struct {
	// Dir, if set, receives each message as NNNNN.eml.
	Dir string
	// TLS, if set, offers STARTTLS with this configuration, or with
	// Implicit speaks TLS from the first byte (port 465's way).
	TLS      *tls.Config
	Implicit bool
	// User and Password, if set, are required through AUTH PLAIN, which
	// the server offers only over TLS.
	User, Password string
}

// Start listens on 127.0.0.1 on a free port. With dir set, each message is
// also written there as NNNNN.eml.
func Start(dir string) (*Inbox, error) { return StartWith(Options{Dir: dir}) }

// StartWith starts an inbox with options.
func StartWith(o Options) (*Inbox, error) {
	dir := o.Dir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	if o.TLS != nil && o.Implicit {
		ln = tls.NewListener(ln, o.TLS)
	}
	in := &Inbox{ln: ln, dir: dir, done: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		sess := &session{in: in}
		if o.User != "" {
			return &authSession{session: sess, user: o.User, password: o.Password}, nil
		}
		return sess, nil
	}))
	s.TLSConfig = o.TLS
	s.Domain = "inbox.localhost"
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.MaxMessageBytes = 32 << 20
	s.MaxRecipients = 100
	s.ErrorLog = log.New(io.Discard, "", 0)
	in.srv = s
	go func() {
		defer close(in.done)
		s.Serve(ln)
	}()
	return in, nil
}

// Addr is the host:port to send to.
func (in *Inbox) Addr() string { return in.ln.Addr().String() }

// Messages returns a copy of what was received so far.
func (in *Inbox) Messages() []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Message(nil), in.messages...)
}

// Close stops the server.
func (in *Inbox) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := in.srv.Shutdown(ctx)
	<-in.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

type session struct {
	in     *Inbox
	from   string
	to     []string
	authOK bool
}

// authSession is a session that must authenticate before sending.
type authSession struct {
	*session
	user, password string
}

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *authSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if user != s.user || password != s.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.authOK = true
		return nil
	}), nil
}

func (s *authSession) Mail(from string, opts *smtp.MailOptions) error {
	if !s.authOK {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	return s.session.Mail(from, opts)
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.in.Reject != nil {
		if err := s.in.Reject(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: s.from, To: append([]string(nil), s.to...), Data: data}
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	if s.in.dir != "" {
		m.Path = filepath.Join(s.in.dir, fmt.Sprintf("%05d.eml", len(s.in.messages)+1))
		if err := os.WriteFile(m.Path, data, 0o644); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store message"}
		}
	}
	s.in.messages = append(s.in.messages, m)
	return nil
}
