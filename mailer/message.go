package mailer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"mime/quotedprintable"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Attachment is a file attached to a message. Name should be ASCII:
// go-message writes non-ASCII names RFC 2047-style, which some clients
// show raw (PITFALLS: go-message).
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Message is an email to compose.
type Message struct {
	From    *mail.Address
	To      []*mail.Address
	Subject string
	Text    string
	HTML    string
	// Unsubscribe is the one-click URL (RFC 8058), empty for none;
	// UnsubscribeMailto an address offered besides it.
	Unsubscribe       string
	UnsubscribeMailto string
	Attachments       []Attachment
	Date              time.Time
}

// Compose builds the MIME message: multipart/alternative with a text and
// an HTML part, inside multipart/mixed when there are attachments; UTF-8,
// RFC 2047 encoded headers, Date and a Message-ID on the sender's domain.
// A subject or display name is made one line and, unless it is plain
// ASCII, encoded (encodeText), so CR or LF in it cannot inject a header.
func Compose(m Message) (msg []byte, messageID string, err error) {
	var b bytes.Buffer
	messageID, err = composeTo(&b, m)
	if err != nil {
		return nil, "", err
	}
	return b.Bytes(), messageID, nil
}

// composeTo is Compose into b, which the sender reuses. It writes with
// go-message's textproto layer (headers, multipart boundaries) and encodes
// the parts itself: go-message's entity writers copy each header twice
// and wrap base64 a line and a CRLF per write, which was a tenth of a
// send's CPU.
func composeTo(b *bytes.Buffer, m Message) (messageID string, err error) {
	var h mail.Header
	h.Set("From", addressList("From", []*mail.Address{m.From}))
	h.Set("To", addressList("To", m.To))
	h.Set("Subject", encodeText("Subject", oneLine(m.Subject)))
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	_, domain, ok := strings.Cut(m.From.Address, "@")
	if !ok || domain == "" {
		return "", fmt.Errorf("compose: sender %q has no domain", m.From.Address)
	}
	if err := h.GenerateMessageIDWithHostname(domain); err != nil {
		return "", fmt.Errorf("compose: %w", err)
	}
	messageID, _ = h.MessageID()
	if m.Unsubscribe != "" {
		v := "<" + oneLine(m.Unsubscribe) + ">"
		if m.UnsubscribeMailto != "" {
			v += ", <mailto:" + oneLine(m.UnsubscribeMailto) + "?subject=unsubscribe>"
		}
		h.Set("List-Unsubscribe", v)
		h.Set("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h.Set("MIME-Version", "1.0")
	b.Grow(2048 + len(m.Text)*2 + len(m.HTML)*3/2)
	if len(m.Attachments) == 0 {
		alt := textproto.NewMultipartWriter(b)
		h.SetContentType("multipart/alternative", map[string]string{"boundary": alt.Boundary()})
		if err := textproto.WriteHeader(b, h.Header.Header); err != nil {
			return "", fmt.Errorf("compose: %w", err)
		}
		return messageID, writeAlternatives(alt, m)
	}
	mixed := textproto.NewMultipartWriter(b)
	h.SetContentType("multipart/mixed", map[string]string{"boundary": mixed.Boundary()})
	if err := textproto.WriteHeader(b, h.Header.Header); err != nil {
		return "", fmt.Errorf("compose: %w", err)
	}
	var alts bytes.Buffer
	alt := textproto.NewMultipartWriter(&alts)
	if err := writeAlternatives(alt, m); err != nil {
		return "", err
	}
	var ah message.Header
	ah.SetContentType("multipart/alternative", map[string]string{"boundary": alt.Boundary()})
	if err := writePart(mixed, ah.Header, alts.Bytes()); err != nil {
		return "", fmt.Errorf("compose: %w", err)
	}
	for _, a := range m.Attachments {
		var ah mail.AttachmentHeader
		ah.Set("Content-Type", a.ContentType)
		ah.SetFilename(a.Name)
		ah.Set("Content-Transfer-Encoding", "base64")
		if err := writePart(mixed, ah.Header.Header, appendBase64(nil, a.Data)); err != nil {
			return "", fmt.Errorf("compose: attach %s: %w", a.Name, err)
		}
	}
	if err := mixed.Close(); err != nil {
		return "", fmt.Errorf("compose: %w", err)
	}
	return messageID, nil
}

// writeAlternatives writes the text and the HTML part, each in the
// shorter of quoted-printable and base64, and closes w.
func writeAlternatives(w *textproto.MultipartWriter, m Message) error {
	encoded := encodeBuffers.Get().(*[]byte)
	defer encodeBuffers.Put(encoded)
	for _, part := range []struct{ ctype, body string }{
		{"text/plain", m.Text},
		{"text/html", m.HTML},
	} {
		enc := transferEncoding(part.body)
		if enc == "base64" {
			*encoded = appendBase64((*encoded)[:0], []byte(part.body))
		} else {
			*encoded = appendQuotedPrintable((*encoded)[:0], part.body)
		}
		if err := writePart(w, partHeaders[[2]string{part.ctype, enc}], *encoded); err != nil {
			return fmt.Errorf("compose: %s part: %w", part.ctype, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	return nil
}

func writePart(w *textproto.MultipartWriter, h textproto.Header, body []byte) error {
	pw, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = pw.Write(body)
	return err
}

// encodeBuffers hold a part's encoded body from one message to the next.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// partHeaders are the headers of the text parts by type and transfer
// encoding, made once. Each is formatted and read back, so that its
// fields keep their lines as read and writing it only copies them.
var partHeaders = func() map[[2]string]textproto.Header {
	hs := map[[2]string]textproto.Header{}
	for _, ctype := range []string{"text/plain", "text/html"} {
		for _, enc := range []string{"base64", "quoted-printable"} {
			var h mail.InlineHeader
			h.SetContentType(ctype, map[string]string{"charset": "utf-8"})
			h.Set("Content-Disposition", "inline")
			h.Set("Content-Transfer-Encoding", enc)
			var b bytes.Buffer
			if err := textproto.WriteHeader(&b, h.Header.Header); err != nil {
				panic(err) // cannot fail: the fields are constant
			}
			read, err := textproto.ReadHeader(bufio.NewReader(&b))
			if err != nil {
				panic(err)
			}
			hs[[2]string{ctype, enc}] = read
		}
	}
	return hs
}()

// appendBase64 appends data in base64, in lines of 76 characters (RFC
// 2045, 6.8) separated by CRLF.
func appendBase64(dst, data []byte) []byte {
	const line = 76
	enc := base64.StdEncoding
	n := enc.EncodedLen(len(data))
	dst = slices.Grow(dst, n+n/line*2)
	for len(data) > 0 {
		chunk := data[:min(len(data), line/4*3)]
		data = data[len(chunk):]
		dst = enc.AppendEncode(dst, chunk)
		if len(data) > 0 {
			dst = append(dst, "\r\n"...)
		}
	}
	return dst
}

// appendQuotedPrintable appends s in quoted-printable, as go-message
// writes it (mime/quotedprintable).
func appendQuotedPrintable(dst []byte, s string) []byte {
	b := bytes.NewBuffer(dst)
	w := quotedprintable.NewWriter(b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

// transferEncoding picks the shorter of quoted-printable and base64 for
// a text part. Quoted-printable writes each byte of a Cyrillic letter as
// three ("=D0=9F"), so a Russian text is shorter in base64, which mail
// programs in Russia use for it; mostly-ASCII text (an HTML part heavy
// with markup) stays quoted-printable and readable in the source.
func transferEncoding(body string) string {
	qp := len(body) + 2*escapedBytes(body)
	qp += qp / 75 * 3 // soft line breaks
	b64 := (len(body) + 2) / 3 * 4
	b64 += b64 / 76 * 2 // line breaks
	if b64 < qp {
		return "base64"
	}
	return "quoted-printable"
}

// escapedBytes counts the bytes quoted-printable writes as "=XX": '='
// and the bytes of multibyte characters, which have the high bit set and
// are counted eight at a time.
func escapedBytes(body string) int {
	n := strings.Count(body, "=")
	i := 0
	for ; i+8 <= len(body); i += 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64([]byte(body[i:i+8])) & 0x8080808080808080)
	}
	for ; i < len(body); i++ {
		if body[i] >= 0x80 {
			n++
		}
	}
	return n
}

// A line of a header holding RFC 2047 encoded-words is at most 76
// characters (RFC 2047, section 2). go-message folds a header only at
// whitespace, and Go's encoder makes words of up to 75 characters, so
// "Subject: " and one such word already overflow the first line and the
// whole header would go out on one line. encodeText therefore makes words
// short enough for the first line, separated by spaces to fold at; a
// reader joins adjacent encoded-words without the space (RFC 2047, 6.2).
const maxHeaderLine = 76

// encodeText is the value of header key: s as is if it is printable
// ASCII, else base64 encoded-words of whole UTF-8 characters, each short
// enough to follow "key: " on a line.
func encodeText(key, s string) string {
	if !needsEncoding(s) {
		return s
	}
	const prefix, suffix = "=?utf-8?b?", "?="
	room := (maxHeaderLine - len(key) - len(": ") - len(prefix) - len(suffix)) / 4 * 3 // bytes a word holds
	var b strings.Builder
	b.Grow(len(s)*4/3 + len(s)/room*(len(prefix)+len(suffix)+1) + 16)
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n > 0 && n+size > room {
				break
			}
			n += size
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(prefix)
		var word [64]byte
		b.Write(base64.StdEncoding.AppendEncode(word[:0], []byte(s[:n])))
		b.WriteString(suffix)
		s = s[n:]
	}
	return b.String()
}

func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\t' {
			return true
		}
	}
	return false
}

// addressList formats addresses for header key as go-message would,
// except that a display name to encode goes through encodeText.
func addressList(key string, list []*mail.Address) string {
	formatted := make([]string, len(list))
	for i, a := range list {
		if needsEncoding(a.Name) {
			formatted[i] = encodeText(key, oneLine(a.Name)) + " " + (&mail.Address{Address: a.Address}).String()
		} else {
			formatted[i] = a.String()
		}
	}
	return strings.Join(formatted, ", ")
}

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// ParseAddress reads "Name <addr@host>" or a bare address.
func ParseAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address: %w", s, err)
	}
	return a, nil
}

// Mask hides most of an address for logs: "an***@mail.ru".
func Mask(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok {
		return "***"
	}
	r := []rune(local)
	if len(r) > 2 {
		r = r[:2]
	}
	return string(r) + "***@" + domain
}
