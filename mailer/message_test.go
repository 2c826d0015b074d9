package mailer_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/mailer"
)

func TestCompose_HeadersRoundTrip(t *testing.T) {
	subject := "Хофф Екатеринбург: как прошла ваша покупка 22.11.2026? Оцените обслуживание, это займёт минуту"
	msg, id, err := mailer.Compose(mailer.Message{
		From: &mail.Address{Name: "Магазин", Address: "noreply@example.ru"},
		To: []*mail.Address{{Name: "Иванова\r\nBcc: victim@example.ru", Address: "anna@example.ru"},
			{Name: "Ivanova\r\nBcc: victim@example.ru", Address: "ivanova@example.ru"}},
		Subject:     subject + "\r\nBcc: victim@example.ru",
		Text:        "Текст",
		HTML:        "<p>Текст</p>",
		Unsubscribe: "https://otklik.example.ru/u/tok",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id, "@example.ru") {
		t.Errorf("Message-ID %q is not on the sender's domain", id)
	}
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get("Bcc"); got != "" {
		t.Fatalf("a Bcc header was injected: %q", got)
	}
	got, err := r.Header.Subject()
	if err != nil {
		t.Fatal(err)
	}
	if want := subject + " Bcc: victim@example.ru"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	for _, line := range strings.Split(string(msg), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("a line of %d bytes", len(line))
		}
	}
	if got := r.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	if got := r.Header.Get("List-Unsubscribe"); got != "<https://otklik.example.ru/u/tok>" {
		t.Errorf("List-Unsubscribe = %q", got)
	}
	if r.Header.Get("Date") == "" {
		t.Error("no Date")
	}
	var types []string
	for _, p := range inlineParts(t, r) {
		types = append(types, p.ctype)
		if !strings.Contains(p.body, "Текст") {
			t.Errorf("%s part lost its text: %q", p.ctype, p.body)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts = %v", types)
	}
}

func TestCompose_Attachment(t *testing.T) {
	msg, _, err := mailer.Compose(mailer.Message{
		From: &mail.Address{Address: "noreply@example.ru"}, To: []*mail.Address{{Address: "m@example.ru"}},
		Subject: "Отчёт", Text: "t", HTML: "<p>h</p>",
		Attachments: []mailer.Attachment{{Name: "otklik-2026-10.xlsx", ContentType: "application/octet-stream", Data: []byte("PK\x03\x04data")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			body, _ := io.ReadAll(p.Body)
			if name != "otklik-2026-10.xlsx" || string(body) != "PK\x03\x04data" {
				t.Fatalf("attachment %q = %q", name, body)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no attachment")
	}
}

// A Russian text goes in base64, shorter than quoted-printable's three
// bytes a byte; mostly-ASCII markup stays quoted-printable. Both decode to
// what was written.
func TestCompose_ShorterTransferEncoding(t *testing.T) {
	text := strings.Repeat("Спасибо за покупку в магазине «Хофф»! ", 20)
	html := `<table style="width:100%"><tr><td style="padding:4px;">` + strings.Repeat(`<a href="https://otklik.example.ru/s/tok?r=5" style="display:inline-block;">5</a>`, 10) + `</td></tr></table><p>Оцените</p>`
	msg, _, err := mailer.Compose(mailer.Message{
		From: &mail.Address{Address: "noreply@example.ru"}, To: []*mail.Address{{Address: "anna@example.ru"}},
		Subject: "Оцените покупку", Text: text, HTML: html,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"text/plain": {"base64", text}, "text/html": {"quoted-printable", html}}
	for _, p := range inlineParts(t, r) {
		w, ok := want[p.ctype]
		if !ok {
			t.Fatalf("unexpected part %s", p.ctype)
		}
		delete(want, p.ctype)
		if p.encoding != w[0] {
			t.Errorf("%s in %s, want %s", p.ctype, p.encoding, w[0])
		}
		if p.body != w[1] {
			t.Errorf("%s decodes to %q", p.ctype, p.body)
		}
	}
	if len(want) != 0 {
		t.Fatalf("parts missing: %v", want)
	}
	_, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, line := range strings.Split(body, "\r\n") {
		if len(line) > 78 {
			t.Fatalf("a body line of %d bytes: %q", len(line), line)
		}
	}
}

func TestLoadTemplates_BrokenNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "invitation.html"), []byte("<p>\n{{.Name}\n</p>\n"), 0o644)
	_, err := mailer.LoadTemplates(dir)
	if err == nil {
		t.Fatal("a broken template was accepted")
	}
	if want := filepath.Join(dir, "invitation.html") + ":2"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
	os.WriteFile(filepath.Join(dir, "invitation.html"), []byte("<p>{{.NoSuchField}}</p>"), 0o644)
	if _, err := mailer.LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "NoSuchField") {
		t.Fatalf("a template using an unknown field was accepted: %v", err)
	}
}

func TestTemplates_EscapeHTML(t *testing.T) {
	tm, err := mailer.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	data := mailer.SampleData(mailer.KindInvitation).(mailer.InvitationData)
	data.Name = `<script>alert(1)</script>`
	r, err := tm.Render(mailer.KindInvitation, data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") {
		t.Fatal("customer name not escaped in HTML")
	}
}

func TestSalutation(t *testing.T) {
	for in, want := range map[string]string{
		"Иванова Анна Сергеевна": "Анна Сергеевна",
		"Петров":      "Петров",
		"":            "",
		"  Ли   Вэй ": "Ли Вэй",
	} {
		if got := mailer.Salutation(in); got != want {
			t.Errorf("Salutation(%q) = %q, want %q", in, got, want)
		}
	}
}

type mailAddr = mail.Address

func mustAddr(t *testing.T, s string) *mail.Address {
	t.Helper()
	a, err := mailer.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type inlinePart struct{ ctype, encoding, body string }

// inlineParts reads the inline parts of a message, decoded.
func inlineParts(t *testing.T, r *mail.Reader) []inlinePart {
	t.Helper()
	var out []inlinePart
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		h, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := h.ContentType()
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, inlinePart{ct, h.Get("Content-Transfer-Encoding"), string(body)})
	}
}

// A header line holding encoded-words is at most 76 characters (RFC 2047,
// section 2), however long the subject or the customer's name, and reads
// back as it was written.
func TestCompose_HeaderLinesFold(t *testing.T) {
	tests := []struct {
		name, subject, to string
	}{
		{"cyrillic", "Хофф Екатеринбург: как прошла ваша покупка 22.11.2026? Оцените обслуживание, это займёт минуту",
			"Анна Сергеевна Константинопольская-Преображенская"},
		{"ascii", "How was your purchase on 22.11.2026? Please rate the service, it takes a minute", "Anna \"Ann\" Smith"},
		{"mixed", "Магазин «Ёлка» (Store #12, Nizhny Novgorod) — оцените покупку 🎄🎄🎄🎄🎄🎄🎄🎄🎄🎄🎄🎄🎄🎄", "Ли 李小龍 Lee"},
		{"one long word", strings.Repeat("Ж", 200), strings.Repeat("ё", 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, _, err := mailer.Compose(mailer.Message{
				From:    &mail.Address{Name: "Магазин Хофф Екатеринбург, служба заботы о покупателях", Address: "noreply@example.ru"},
				To:      []*mail.Address{{Name: tt.to, Address: "anna@example.ru"}},
				Subject: tt.subject,
				Text:    "Текст",
				HTML:    "<p>Текст</p>",
			})
			if err != nil {
				t.Fatal(err)
			}
			head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
			for _, line := range strings.Split(string(head), "\r\n") {
				if len(line) > 76 && strings.Contains(line, "=?") {
					t.Errorf("a header line of %d characters: %s", len(line), line)
				}
			}
			r, err := mail.CreateReader(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Header.Subject(); err != nil || got != tt.subject {
				t.Errorf("subject = %q (%v), want %q", got, err, tt.subject)
			}
			to, err := r.Header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Name != tt.to || to[0].Address != "anna@example.ru" {
				t.Errorf("To = %v (%v), want %q <anna@example.ru>", to, err, tt.to)
			}
			from, err := r.Header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Name != "Магазин Хофф Екатеринбург, служба заботы о покупателях" {
				t.Errorf("From = %v (%v)", from, err)
			}
		})
	}
}
