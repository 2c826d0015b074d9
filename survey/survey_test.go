package survey_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
	"github.com/otklik/otklik/survey"
)

// sent creates a sent invitation with the given token.
func sent(tb testing.TB, token string) (*store.DB, *httptest.Server) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	b, _ := db.BeginBatch(ctx, 0)
	b.AddStore(ctx, store.Store{Code: "0001", Name: "Хофф <Химки>", TimeZone: "Europe/Moscow", DirectorEmail: "director@example.ru"})
	b.Commit()
	inv := store.NewInvitation{Candidate: store.Candidate{StoreCode: "0001", Receipt: "R", At: now.Add(-20 * time.Hour),
		CustomerCode: "C", Email: "c@example.ru"}, Token: token, DueAt: now, Expires: now.Add(time.Hour)}
	if _, err := db.AddInvitations(ctx, []store.NewInvitation{inv}, now.AddDate(0, 0, -30)); err != nil {
		tb.Fatal(err)
	}
	out, err := db.ClaimDue(ctx, 1)
	if err != nil || len(out) != 1 {
		tb.Fatalf("claim: %v %v", out, err)
	}
	db.Start(ctx, out[0])
	if err := db.MarkSent(ctx, out[0], "<x@example.ru>"); err != nil {
		tb.Fatal(err)
	}
	h, err := survey.New(db, survey.Options{AlertGroups: []string{"training@example.ru"}, PerIPRate: 1000, PerIPBurst: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return db, srv
}

func get(tb testing.TB, u string) (int, string) {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(tb testing.TB, u string, form url.Values, header ...string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func responses(tb testing.TB, db *store.DB) int64 {
	tb.Helper()
	s, err := db.Status(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return s.Responses
}

func TestSurvey_GetNeverRecords(t *testing.T) {
	db, srv := sent(t, "tok")
	code, body := get(t, srv.URL+"/s/tok?r=4")
	if code != http.StatusOK {
		t.Fatalf("GET = %d", code)
	}
	if !strings.Contains(body, `value="4" aria-label="4 — хорошо" checked`) {
		t.Error("the rating from the link is not preselected")
	}
	if !strings.Contains(body, "Хофф &lt;Химки&gt;") {
		t.Error("store name not escaped")
	}
	if got := responses(t, db); got != 0 {
		t.Fatalf("a GET recorded %d responses", got)
	}
	// It counts as opened, once however often the page is shown.
	get(t, srv.URL+"/s/tok")
	day := store.Period{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)}
	if s, err := db.SurveyStats(context.Background(), day, nil); err != nil || s.Sent != 1 || s.Opened != 1 {
		t.Fatalf("survey stats after two views: %+v, %v; want 1 sent, 1 opened", s, err)
	}
}

func TestSurvey_PostRecordsOnce(t *testing.T) {
	db, srv := sent(t, "tok")
	form := url.Values{"rating": {"2"}, "nps": {"3"}, "bad": {"service", "bogus"}, "good": {"comfort"},
		"comment": {"<script>alert(1)</script> долго ждали"}}
	code, body := post(t, srv.URL+"/s/tok", form)
	if code != http.StatusOK || !strings.Contains(body, "Спасибо за ответ") {
		t.Fatalf("POST = %d %s", code, body)
	}
	if got := responses(t, db); got != 1 {
		t.Fatalf("responses = %d", got)
	}
	counts, _ := db.FeedbackCounts(context.Background(), store.Period{From: time.Unix(0, 0), To: time.Now().AddDate(1, 0, 0)}, nil)
	if counts[store.Feedback{Category: "service", Tone: "negative"}] != 1 || counts[store.Feedback{Category: "comfort", Tone: "positive"}] != 1 || len(counts) != 2 {
		t.Fatalf("feedback = %v", counts)
	}
	code, body = post(t, srv.URL+"/s/tok", form)
	if code != http.StatusOK || !strings.Contains(body, "уже ответили") {
		t.Fatalf("second POST = %d %s", code, body)
	}
	if _, body := get(t, srv.URL+"/s/tok"); !strings.Contains(body, "уже ответили") {
		t.Fatal("the used link still shows the form")
	}
	if got := responses(t, db); got != 1 {
		t.Fatalf("responses = %d after a second POST", got)
	}
}

func TestSurvey_Errors(t *testing.T) {
	db, srv := sent(t, "tok")
	for _, tc := range []struct {
		name string
		code int
		do   func() (int, string)
		want string
	}{
		{"unknown token", 404, func() (int, string) { return get(t, srv.URL+"/s/nope") }, "Ссылка недействительна"},
		{"no rating", 422, func() (int, string) { return post(t, srv.URL+"/s/tok", url.Values{"comment": {"x"}}) }, "выберите оценку"},
		{"rating out of range", 422, func() (int, string) { return post(t, srv.URL+"/s/tok", url.Values{"rating": {"9"}}) }, "выберите оценку"},
		{"cross-site form post", 403, func() (int, string) {
			return post(t, srv.URL+"/s/tok", url.Values{"rating": {"5"}}, "Sec-Fetch-Site", "cross-site")
		}, ""},
		{"other path", 404, func() (int, string) { return get(t, srv.URL+"/admin") }, "Страница не найдена"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tc.do()
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %q, want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
	if got := responses(t, db); got != 0 {
		t.Fatalf("responses = %d", got)
	}
}

func TestSurvey_OneClickUnsubscribe(t *testing.T) {
	db, srv := sent(t, "tok")
	if code, body := get(t, srv.URL+"/u/tok"); code != 200 || !strings.Contains(body, "Отписаться") {
		t.Fatalf("GET /u = %d", code)
	}
	if s, _ := db.Status(context.Background()); s.Suppressed != 0 {
		t.Fatal("a GET unsubscribed")
	}
	// RFC 8058: the mailbox provider POSTs this body, with no cookies.
	for range 2 {
		if code, _ := post(t, srv.URL+"/u/tok", url.Values{"List-Unsubscribe": {"One-Click"}}); code != 200 {
			t.Fatalf("POST /u = %d", code)
		}
	}
	if s, _ := db.Status(context.Background()); s.Suppressed != 1 {
		t.Fatalf("suppressed = %d, want 1", s.Suppressed)
	}
}

func TestSurvey_SecurityHeaders(t *testing.T) {
	_, srv := sent(t, "tok")
	resp, err := http.Get(srv.URL + "/s/tok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	big := url.Values{"rating": {"5"}, "comment": {strings.Repeat("я", 40<<10)}}
	if code, _ := post(t, srv.URL+"/s/tok", big); code != http.StatusBadRequest {
		t.Errorf("an oversized body got %d, want 400", code)
	}
}

// alerts lists the queued alerts' recipients.
func alerts(tb testing.TB, db *store.DB) []string {
	tb.Helper()
	out, err := db.ClaimDue(context.Background(), 100)
	if err != nil {
		tb.Fatal(err)
	}
	var to []string
	for _, o := range out {
		if o.Kind == store.KindAlert {
			to = append(to, o.Email)
		}
	}
	sort.Strings(to)
	return to
}

func TestSurvey_NegativeAnswerAlertsDirectorOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"low rating", url.Values{"rating": {"2"}}, "director@example.ru training@example.ru"},
		{"good rating, bad comment", url.Values{"rating": {"5"}, "comment": {"Цены кусаются"}}, "director@example.ru training@example.ru"},
		{"good rating, bad category", url.Values{"rating": {"4"}, "bad": {"comfort"}}, "director@example.ru training@example.ru"},
		{"good answer", url.Values{"rating": {"5"}, "comment": {"Продавец помог выбрать, спасибо"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, srv := sent(t, "tok")
			if code, body := post(t, srv.URL+"/s/tok", tc.form); code != 200 {
				t.Fatalf("POST = %d %s", code, body)
			}
			post(t, srv.URL+"/s/tok", tc.form) // a second POST changes nothing
			if got := strings.Join(alerts(t, db), " "); got != tc.want {
				t.Fatalf("alerts to %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSurvey_CommentClassifiedBesidesChoices(t *testing.T) {
	db, srv := sent(t, "tok")
	post(t, srv.URL+"/s/tok", url.Values{"rating": {"4"}, "good": {"service"}, "comment": {"Продавец не помог, и не хватает моделей"}})
	counts, _ := db.FeedbackCounts(context.Background(), store.Period{From: time.Unix(0, 0), To: time.Now().AddDate(1, 0, 0)}, nil)
	// The customer's own choice for service stands; the comment adds
	// assortment.
	want := map[store.Feedback]int64{{Category: "service", Tone: "positive"}: 1, {Category: "assortment", Tone: "negative"}: 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("feedback = %v, want %v", counts, want)
	}
}

func TestSurvey_RateLimitPerIP(t *testing.T) {
	db, _ := sent(t, "tok")
	h, err := survey.New(db, survey.Options{PerIPRate: 1, PerIPBurst: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	codes := ""
	for range 5 {
		code, _ := get(t, srv.URL+"/s/nope")
		codes += fmt.Sprint(code, " ")
	}
	if codes != "404 404 404 429 429 " {
		t.Fatalf("codes = %s", codes)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz limited: %d", code)
	}
}
