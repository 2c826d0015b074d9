package mailer_test

import (
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/otklik/otklik/mailer"
)

// BenchmarkRenderCompose renders and composes one invitation, the work
// done for each message besides SMTP and SQLite.
func BenchmarkRenderCompose(b *testing.B) {
	tm, err := mailer.LoadTemplates("")
	if err != nil {
		b.Fatal(err)
	}
	data := mailer.SampleData(mailer.KindInvitation)
	from := &mail.Address{Name: "Магазин", Address: "noreply@example.ru"}
	to := []*mail.Address{{Address: "anna@example.ru"}}
	b.ReportAllocs()
	for b.Loop() {
		r, err := tm.Render(mailer.KindInvitation, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := mailer.Compose(mailer.Message{From: from, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Unsubscribe: "https://x/u/t"}); err != nil {
			b.Fatal(err)
		}
	}
}
