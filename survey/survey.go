// Package survey serves the survey page that invitation links open: it
// shows the questions for a token, records the answer on POST (never on
// GET: mail scanners follow links), and handles one-click unsubscribe.
package survey

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/otklik/otklik/store"
)

//go:embed templates/*.html
var defaultPages embed.FS

// Categories are the feedback categories a customer can pick, with their
// labels on the page.
var Categories = []struct{ Key, Label string }{
	{"service", "Обслуживание"},
	{"assortment", "Ассортимент"},
	{"prices", "Цены"},
	{"comfort", "Комфорт в магазине"},
	{"other", "Другое"},
}

const (
	maxBody    = 16 << 10
	maxComment = 2000 // runes
)

// Questions are the texts and scales of the survey, from a file a
// marketer edits. The rating is CSI on a 1-5 scale; NPS (0-10) can be
// turned off.
type Questions struct {
	Title        string   `yaml:"title"`         // "{store}" is replaced by the store's name
	Rating       string   `yaml:"rating"`        // the CSI question
	RatingLabels []string `yaml:"rating_labels"` // five labels, from 1 to 5
	RatingHint   string   `yaml:"rating_hint"`
	NPS          bool     `yaml:"nps"`
	NPSQuestion  string   `yaml:"nps_question"`
	NPSHint      string   `yaml:"nps_hint"`
	Good         string   `yaml:"good"`
	Bad          string   `yaml:"bad"`
	// Categories are the labels of service, assortment, prices, comfort
	// and other; a category left out is not offered.
	Categories map[string]string `yaml:"categories"`
	Comment    string            `yaml:"comment"`
	Submit     string            `yaml:"submit"`
}

// DefaultQuestions are the built-in Russian questions.
func DefaultQuestions() Questions {
	labels := map[string]string{}
	for _, c := range Categories {
		labels[c.Key] = c.Label
	}
	return Questions{
		Title:        "Как вам покупка в магазине «{store}»?",
		Rating:       "Оцените обслуживание от 1 до 5",
		RatingLabels: []string{"очень плохо", "плохо", "нормально", "хорошо", "отлично"},
		RatingHint:   "1 — очень плохо, 5 — отлично",
		NPS:          true,
		NPSQuestion:  "Насколько вероятно, что вы порекомендуете нас друзьям? (0–10)",
		NPSHint:      "0 — точно нет, 10 — точно да",
		Good:         "Что понравилось?",
		Bad:          "Что можно улучшить?",
		Categories:   labels,
		Comment:      "Комментарий",
		Submit:       "Отправить ответ",
	}
}

// Check reports what is wrong with questions, naming the key.
func (q Questions) Check() error {
	if len(q.RatingLabels) != 5 {
		return fmt.Errorf("rating_labels: want 5 labels (1 to 5), got %d", len(q.RatingLabels))
	}
	for k := range q.Categories {
		found := false
		for _, c := range Categories {
			found = found || c.Key == k
		}
		if !found {
			return fmt.Errorf("categories: %q is not one of service, assortment, prices, comfort, other", k)
		}
	}
	for key, v := range map[string]string{"title": q.Title, "rating": q.Rating, "good": q.Good, "bad": q.Bad, "comment": q.Comment, "submit": q.Submit} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s: empty", key)
		}
	}
	return nil
}

// Options configure the survey site.
type Options struct {
	// Pages is a folder of page templates that override the built-in
	// ones file by file; "" uses the built-in set.
	Pages string
	// Questions default to DefaultQuestions.
	Questions *Questions
	// Dictionary classifies comments; nil uses the built-in one.
	Dictionary *Dictionary
	// Zone is used for stores without a time zone.
	Zone *time.Location
	Log  *slog.Logger
	// ThanksWithin, if set, queues a thank-you with a promo code for each
	// answer, dropped if it cannot be sent within this time.
	ThanksWithin time.Duration
	// An answer rated at or under AlertAt (default 3), or with a negative
	// category, is emailed to the store's director and to AlertGroups.
	AlertAt     int
	AlertGroups []string
	// PerIPRate limits requests from one client address (per second,
	// with a burst of PerIPBurst); 0 means 5 and 30. RealIPHeader, if
	// set, names the header a reverse proxy puts the client address in.
	PerIPRate    float64
	PerIPBurst   int
	RealIPHeader string
}

// Handler serves the survey site.
type Handler struct {
	db    *store.DB
	opts  Options
	text  atomic.Pointer[texts] // questions and dictionary, reloadable
	ips   *ipLimiter
	pages *template.Template
	zone  *time.Location
	log   *slog.Logger
	mux   *http.ServeMux
	next  http.Handler // mux behind cross-origin protection
}

// New returns the survey site's handler.
func New(db *store.DB, o Options) (*Handler, error) {
	pages, err := LoadPages(o.Pages)
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zone := o.Zone
	if zone == nil {
		zone = time.UTC
	}
	q := DefaultQuestions()
	if o.Questions != nil {
		q = *o.Questions
	}
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("survey questions: %w", err)
	}
	dict := o.Dictionary
	if dict == nil {
		if dict, err = LoadDictionary(""); err != nil {
			return nil, err
		}
	}
	if o.AlertAt == 0 {
		o.AlertAt = 3
	}
	if o.PerIPRate <= 0 {
		o.PerIPRate = 5
	}
	if o.PerIPBurst <= 0 {
		o.PerIPBurst = 30
	}
	h := &Handler{db: db, opts: o, ips: newIPLimiter(o.PerIPRate, o.PerIPBurst),
		pages: pages, zone: zone, log: log.With("component", "survey"), mux: http.NewServeMux()}
	h.text.Store(&texts{q: q, dict: dict})
	h.mux.HandleFunc("GET /s/{token}", h.showSurvey)
	h.mux.HandleFunc("POST /s/{token}", h.postSurvey)
	h.mux.HandleFunc("GET /u/{token}", h.showUnsubscribe)
	h.mux.HandleFunc("POST /u/{token}", h.postUnsubscribe)
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.message(w, http.StatusNotFound, "Страница не найдена", "Проверьте ссылку из письма.")
	})
	// Refuses form posts that a browser marks as cross-site (CSRF); a
	// mailbox provider's one-click POST carries no such headers and passes.
	h.next = http.NewCrossOriginProtection().Handler(h.mux)
	return h, nil
}

// LoadPages parses the page templates, each file of dir replacing the
// built-in file of the same name. Errors name the file and line.
func LoadPages(dir string) (*template.Template, error) {
	names, err := fs.Glob(defaultPages, "templates/*.html")
	if err != nil {
		return nil, err
	}
	root := template.New("pages")
	for _, n := range names {
		base := filepath.Base(n)
		body, err := defaultPages.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if dir != "" {
			p := filepath.Join(dir, base)
			b, err := os.ReadFile(p)
			switch {
			case err == nil:
				body = b
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("read page template %s: %w", p, err)
			}
		}
		if _, err := root.New(base).Parse(string(body)); err != nil {
			return nil, fmt.Errorf("page template: %w", err)
		}
	}
	return root, nil
}

// ServeHTTP serves the site with security headers, a body limit and
// cross-origin protection for forms.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if r.URL.Path != "/healthz" && !h.ips.allow(clientIP(r, h.opts.RealIPHeader)) {
		w.Header().Set("Retry-After", "10")
		h.message(w, http.StatusTooManyRequests, "Слишком много запросов", "Пожалуйста, подождите немного и попробуйте ещё раз.")
		return
	}
	h.next.ServeHTTP(w, r)
}

type choice struct {
	Score   int
	Label   string
	Checked bool
}

type category struct {
	Key, Label string
	Checked    bool
}

type surveyPage struct {
	Title, Heading, StoreName, PurchaseDate, Action, Error, Comment string
	Q                                                               Questions
	Ratings, NPS                                                    []choice
	Good, Bad                                                       []category
}

func (h *Handler) lookup(w http.ResponseWriter, r *http.Request) (store.Survey, bool) {
	token := r.PathValue("token")
	s, err := h.db.SurveyByToken(r.Context(), token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.message(w, http.StatusNotFound, "Ссылка недействительна", "Эта ссылка устарела или набрана с ошибкой. Спасибо, что хотели ответить!")
		return s, false
	case err != nil:
		h.log.Error("look up survey", "err", err)
		h.message(w, http.StatusServiceUnavailable, "Сервис временно недоступен", "Пожалуйста, попробуйте ещё раз через несколько минут.")
		return s, false
	case s.Answered:
		h.message(w, http.StatusOK, "Спасибо, вы уже ответили", "Ваш ответ уже получен. Спасибо, что помогаете нам стать лучше!")
		return s, false
	case s.Status != store.InvSent && s.Status != store.InvUnknown:
		h.message(w, http.StatusNotFound, "Ссылка недействительна", "Эта ссылка устарела или набрана с ошибкой. Спасибо, что хотели ответить!")
		return s, false
	}
	return s, true
}

func (h *Handler) page(s store.Survey, r *http.Request) surveyPage {
	loc := h.zone
	if l := store.Zone(s.TimeZone); l != nil {
		loc = l
	}
	name := s.StoreName
	if name == "" {
		name = s.StoreCode
	}
	return surveyPage{
		Title:        "Оцените покупку",
		Heading:      strings.ReplaceAll(h.text.Load().q.Title, "{store}", name),
		Q:            h.text.Load().q,
		StoreName:    name,
		PurchaseDate: s.PurchasedAt.In(loc).Format("02.01.2006"),
		Action:       "/s/" + r.PathValue("token"),
	}
}

func (p *surveyPage) fill(rating, nps int, good, bad map[string]bool) {
	for i, l := range p.Q.RatingLabels {
		p.Ratings = append(p.Ratings, choice{Score: i + 1, Label: l, Checked: rating == i+1})
	}
	if p.Q.NPS {
		for i := 0; i <= 10; i++ {
			p.NPS = append(p.NPS, choice{Score: i, Checked: nps == i})
		}
	}
	for _, c := range Categories {
		label, ok := p.Q.Categories[c.Key]
		if !ok {
			continue
		}
		p.Good = append(p.Good, category{c.Key, label, good[c.Key]})
		p.Bad = append(p.Bad, category{c.Key, label, bad[c.Key]})
	}
}

// showSurvey shows the form; a rating from the email link is preselected
// but not recorded.
func (h *Handler) showSurvey(w http.ResponseWriter, r *http.Request) {
	s, ok := h.lookup(w, r)
	if !ok {
		return
	}
	if !s.Opened {
		// Counted in the report as "opened"; a link scanner counts too.
		if err := h.db.MarkOpened(r.Context(), s.InvitationID); err != nil {
			h.log.Warn("record survey opened", "invitation", s.InvitationID, "err", err)
		}
	}
	rating, _ := strconv.Atoi(r.URL.Query().Get("r"))
	p := h.page(s, r)
	p.fill(rating, -1, nil, nil)
	h.render(w, http.StatusOK, "survey.html", p)
}

func (h *Handler) postSurvey(w http.ResponseWriter, r *http.Request) {
	s, ok := h.lookup(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusBadRequest, "Не удалось прочитать ответ", "Пожалуйста, вернитесь назад и отправьте анкету ещё раз.")
		return
	}
	resp, good, bad, problem := parseAnswer(r)
	resp.ThanksWithin = h.opts.ThanksWithin
	resp.Feedback = merge(resp.Feedback, h.text.Load().dict.Classify(resp.Comment))
	if problem == "" && h.negative(resp) {
		resp.AlertTo = h.alertTo(r, s.StoreCode)
	}
	if problem != "" {
		p := h.page(s, r)
		nps := -1
		if resp.NPS != nil {
			nps = *resp.NPS
		}
		p.fill(resp.Rating, nps, good, bad)
		p.Error, p.Comment = problem, resp.Comment
		h.render(w, http.StatusUnprocessableEntity, "survey.html", p)
		return
	}
	_, err := h.db.AddResponse(r.Context(), r.PathValue("token"), resp)
	switch {
	case errors.Is(err, store.ErrConflict):
		h.message(w, http.StatusOK, "Спасибо, вы уже ответили", "Ваш ответ уже получен. Спасибо, что помогаете нам стать лучше!")
		return
	case errors.Is(err, store.ErrNotFound):
		h.message(w, http.StatusNotFound, "Ссылка недействительна", "Эта ссылка устарела или набрана с ошибкой.")
		return
	case err != nil:
		h.log.Error("save response", "invitation", s.InvitationID, "err", err)
		h.message(w, http.StatusServiceUnavailable, "Не удалось сохранить ответ", "Пожалуйста, попробуйте отправить анкету ещё раз через несколько минут.")
		return
	}
	h.log.Info("response saved", "invitation", s.InvitationID, "rating", resp.Rating, "alerts", len(resp.AlertTo))
	h.message(w, http.StatusOK, "Спасибо за ответ!", "Ваше мнение поможет нам стать лучше.")
}

// parseAnswer reads and checks the form; problem is a sentence for the
// customer if something must be fixed.
func parseAnswer(r *http.Request) (resp store.Response, good, bad map[string]bool, problem string) {
	good, bad = map[string]bool{}, map[string]bool{}
	resp.Comment = strings.TrimSpace(strings.ToValidUTF8(r.PostFormValue("comment"), ""))
	if utf8.RuneCountInString(resp.Comment) > maxComment {
		resp.Comment = string([]rune(resp.Comment)[:maxComment])
	}
	if v := r.PostFormValue("nps"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil && n >= 0 && n <= 10 {
			resp.NPS = &n
		}
	}
	known := map[string]bool{}
	for _, c := range Categories {
		known[c.Key] = true
	}
	for _, k := range r.PostForm["good"] {
		if known[k] && !good[k] {
			good[k] = true
			resp.Feedback = append(resp.Feedback, store.Feedback{Category: k, Tone: "positive"})
		}
	}
	for _, k := range r.PostForm["bad"] {
		if known[k] && !bad[k] {
			bad[k] = true
			resp.Feedback = append(resp.Feedback, store.Feedback{Category: k, Tone: "negative"})
		}
	}
	rating, err := strconv.Atoi(r.PostFormValue("rating"))
	if err != nil || rating < 1 || rating > 5 {
		return resp, good, bad, "Пожалуйста, выберите оценку от 1 до 5."
	}
	resp.Rating = rating
	return resp, good, bad, ""
}

func (h *Handler) showUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if _, err := h.db.SurveyByToken(r.Context(), r.PathValue("token")); err != nil {
		h.message(w, http.StatusNotFound, "Ссылка недействительна", "Эта ссылка устарела или набрана с ошибкой.")
		return
	}
	h.render(w, http.StatusOK, "unsubscribe.html", map[string]string{
		"Title": "Отписаться от опросов", "Action": "/u/" + r.PathValue("token"),
	})
}

// postUnsubscribe serves both the confirm button and RFC 8058 one-click
// POSTs from mailbox providers (no cookies, no form token: the URL token
// alone authorizes). It is idempotent.
func (h *Handler) postUnsubscribe(w http.ResponseWriter, r *http.Request) {
	err := h.db.UnsubscribeToken(r.Context(), r.PathValue("token"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.message(w, http.StatusNotFound, "Ссылка недействительна", "Эта ссылка устарела или набрана с ошибкой.")
	case err != nil:
		h.log.Error("unsubscribe", "err", err)
		h.message(w, http.StatusServiceUnavailable, "Не удалось отписаться", "Пожалуйста, попробуйте ещё раз через несколько минут.")
	default:
		h.log.Info("unsubscribed")
		h.message(w, http.StatusOK, "Вы отписались", "Мы больше не будем присылать вам опросы.")
	}
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (h *Handler) message(w http.ResponseWriter, status int, title, text string) {
	h.render(w, status, "message.html", map[string]string{"Title": title, "Text": text})
}

// render executes a page into a buffer first, so a template error never
// sends half a page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	var b bytes.Buffer
	if err := h.pages.ExecuteTemplate(&b, name, data); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "Сервис временно недоступен", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// Preview renders the survey form with sample data, for `otklik preview`.
func Preview(dir string) ([]byte, error) {
	pages, err := LoadPages(dir)
	if err != nil {
		return nil, err
	}
	q := DefaultQuestions()
	p := surveyPage{Title: "Оцените покупку", Heading: strings.ReplaceAll(q.Title, "{store}", "Хофф Екатеринбург"), Q: q,
		StoreName: "Хофф Екатеринбург", PurchaseDate: "22.11.2026", Action: "/s/SAMPLEtoken"}
	p.fill(5, -1, nil, nil)
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "survey.html", p); err != nil {
		return nil, fmt.Errorf("page template: %w", err)
	}
	return b.Bytes(), nil
}

// merge adds to the customer's own choices what the dictionary found in
// the comment for categories the customer did not mark.
func merge(chosen, found []store.Feedback) []store.Feedback {
	marked := map[string]bool{}
	for _, f := range chosen {
		marked[f.Category] = true
	}
	out := chosen
	for _, f := range found {
		if !marked[f.Category] {
			out = append(out, f)
		}
	}
	return out
}

// negative reports whether an answer calls for an alert: rated at or
// under the threshold, or with a negative category.
func (h *Handler) negative(r store.Response) bool {
	if r.Rating <= h.opts.AlertAt {
		return true
	}
	for _, f := range r.Feedback {
		if f.Tone == Negative {
			return true
		}
	}
	return false
}

// alertTo returns who hears about a negative answer: the store's director
// from the stores feed, and the configured groups.
func (h *Handler) alertTo(r *http.Request, storeCode string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(e string) {
		e = strings.ToLower(strings.TrimSpace(e))
		if e != "" && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	st, err := h.db.GetStore(r.Context(), storeCode)
	if err == nil {
		add(st.DirectorEmail)
	} else if !errors.Is(err, store.ErrNotFound) {
		h.log.Warn("look up store director", "store", storeCode, "err", err)
	}
	for _, g := range h.opts.AlertGroups {
		add(g)
	}
	return out
}

type texts struct {
	q    Questions
	dict *Dictionary
}

// Reload swaps in new questions and a new dictionary (SIGHUP), for the
// requests that come after.
func (h *Handler) Reload(q Questions, d *Dictionary) error {
	if err := q.Check(); err != nil {
		return fmt.Errorf("survey questions: %w", err)
	}
	h.text.Store(&texts{q: q, dict: d})
	return nil
}
