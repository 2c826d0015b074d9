package mailer

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
)

//go:embed templates/*
var defaultTemplates embed.FS

// Kinds of email, each a set of three files in the templates folder:
// KIND.subject.txt, KIND.txt and KIND.html.
const (
	KindInvitation = "invitation"
	KindReminder   = "reminder"
	KindThanks     = "thanks"
	KindAlert      = "alert"
	KindReport     = "report"
)

// Kinds lists every kind of email.
var Kinds = []string{KindInvitation, KindReminder, KindThanks, KindAlert, KindReport}

// Templates are the parsed email templates.
type Templates struct {
	subject map[string]*texttemplate.Template
	text    map[string]*texttemplate.Template
	html    map[string]*htmltemplate.Template
}

// LoadTemplates parses the templates of every kind. A file present in dir
// overrides the built-in one, so a marketer edits only what they change;
// dir "" uses the built-in set. A template that does not parse, or fails
// on sample data, is an error naming the file and line.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{
		subject: map[string]*texttemplate.Template{},
		text:    map[string]*texttemplate.Template{},
		html:    map[string]*htmltemplate.Template{},
	}
	read := func(name string) (string, []byte, error) {
		if dir != "" {
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err == nil {
				return p, b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", nil, fmt.Errorf("read template %s: %w", p, err)
			}
		}
		b, err := defaultTemplates.ReadFile("templates/" + name)
		return "built-in " + name, b, err
	}
	for _, kind := range Kinds {
		for _, suffix := range []string{".subject.txt", ".txt", ".html"} {
			where, body, err := read(kind + suffix)
			if err != nil {
				return nil, err
			}
			// The template is named after its file, so parse errors read
			// "template: /etc/otklik/templates/invitation.html:12: ...".
			switch suffix {
			case ".subject.txt":
				tt, err := texttemplate.New(where).Option("missingkey=error").Parse(strings.TrimSpace(string(body)))
				if err != nil {
					return nil, err
				}
				t.subject[kind] = tt
			case ".txt":
				tt, err := texttemplate.New(where).Option("missingkey=error").Parse(string(body))
				if err != nil {
					return nil, err
				}
				t.text[kind] = tt
			case ".html":
				ht, err := htmltemplate.New(where).Option("missingkey=error").Parse(string(body))
				if err != nil {
					return nil, err
				}
				t.html[kind] = ht
			}
		}
		if _, err := t.Render(kind, SampleData(kind)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Rendered is an email's subject and bodies.
type Rendered struct {
	Subject, Text, HTML string
}

// renderBuffers keep the buffers templates execute into, grown to the
// size of a message, from one message to the next.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render renders the templates of a kind with data.
func (t *Templates) Render(kind string, data any) (Rendered, error) {
	st, ok := t.subject[kind]
	if !ok {
		return Rendered{}, fmt.Errorf("render: unknown email kind %q", kind)
	}
	var r Rendered
	b := renderBuffers.Get().(*bytes.Buffer)
	defer renderBuffers.Put(b)
	b.Reset()
	if err := st.Execute(b, data); err != nil {
		return r, fmt.Errorf("render %s: %w", kind, err)
	}
	// A subject is one line whatever the data holds.
	r.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.text[kind].Execute(b, data); err != nil {
		return r, fmt.Errorf("render %s: %w", kind, err)
	}
	r.Text = b.String()
	b.Reset()
	if err := t.html[kind].Execute(b, data); err != nil {
		return r, fmt.Errorf("render %s: %w", kind, err)
	}
	r.HTML = b.String()
	return r, nil
}

// Rating is one score link in an invitation.
type Rating struct {
	Score int
	Label string
	URL   string
}

// InvitationData is what an invitation template sees.
type InvitationData struct {
	Name           string // how to address the customer, may be empty
	StoreName      string
	PurchaseDate   string // DD.MM.YYYY in the store's time zone
	Ratings        []Rating
	SurveyURL      string
	UnsubscribeURL string
}

// ThanksData is what a thank-you template sees.
type ThanksData struct {
	Name           string
	StoreName      string
	PromoCode      string
	UnsubscribeURL string
}

// AlertData is what an alert to a store's director sees.
type AlertData struct {
	StoreName, StoreCode         string
	PurchaseDate, Receipt, Sum   string
	AnsweredAt                   string
	Rating                       int
	NPS                          string // "" if not given
	Good, Bad                    string // categories, comma-separated
	Comment                      string
	CustomerName, CustomerCode   string
	CustomerEmail, CustomerPhone string
}

// ReportData is what a report email template sees.
type ReportData struct {
	Month        string // "ноябрь 2026"
	Scope        string // empty for the whole chain, else a director's stores
	Sent         int64
	Responses    int64
	ResponseRate string
	CSI          string
	NPS          string
	Negative     int64
	FileName     string
	Highlights   []string // the month's largest changes
}

// SampleData returns example data for a kind, for checking templates at
// start and for `otklik preview`.
func SampleData(kind string) any {
	switch kind {
	case KindInvitation, KindReminder:
		base := "https://otklik.example.ru"
		return InvitationData{
			Name:           "Анна Сергеевна",
			StoreName:      "Хофф Екатеринбург",
			PurchaseDate:   "22.11.2026",
			Ratings:        ratingLinks(base, "SAMPLEtoken"),
			SurveyURL:      base + "/s/SAMPLEtoken",
			UnsubscribeURL: base + "/u/SAMPLEtoken",
		}
	case KindThanks:
		return ThanksData{Name: "Анна Сергеевна", StoreName: "Хофф Екатеринбург", PromoCode: "OTK-7KQ2-M9XD",
			UnsubscribeURL: "https://otklik.example.ru/u/SAMPLEtoken"}
	case KindAlert:
		return AlertData{StoreName: "Хофф Екатеринбург", StoreCode: "0004", PurchaseDate: "21.11.2026", Receipt: "0004-261121-00017",
			Sum: "45 990,00 ₽", AnsweredAt: "22.11.2026 10:42", Rating: 2, NPS: "3", Bad: "Обслуживание, Ассортимент",
			Comment: "Долго ждали консультанта, нужной модели не было в наличии.", CustomerName: "Иванова Анна Сергеевна",
			CustomerCode: "000100001", CustomerEmail: "anna@example.ru", CustomerPhone: "+79123456789"}
	case KindReport:
		return ReportData{
			Month: "октябрь 2026", Sent: 12840, Responses: 1931, ResponseRate: "15,0 %",
			CSI: "4,31", NPS: "+42", Negative: 214, FileName: "otklik-2026-10.xlsx",
			Highlights: []string{"Жалоб на «обслуживание» больше: 41 против 28 в прошлом месяце."},
		}
	}
	return nil
}

var ratingLabels = []string{"очень плохо", "плохо", "нормально", "хорошо", "отлично"}

func ratingLinks(base, token string) []Rating {
	out := make([]Rating, 0, len(ratingLabels))
	for i, l := range ratingLabels {
		out = append(out, Rating{Score: i + 1, Label: l, URL: base + "/s/" + token + "?r=" + strconv.Itoa(i+1)})
	}
	return out
}
