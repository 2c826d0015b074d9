package survey_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
	"github.com/otklik/otklik/survey"
)

// BenchmarkPostAnswer saves answers through the handler: the page's cost
// of one answer (form, classification, the transaction with its alerts).
func BenchmarkPostAnswer(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "otklik.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	batch, _ := db.BeginBatch(ctx, 0)
	batch.AddStore(ctx, store.Store{Code: "0001", Name: "Хофф Химки", TimeZone: "Europe/Moscow", DirectorEmail: "director@example.ru"})
	batch.Commit()
	var invs []store.NewInvitation
	for i := range b.N {
		invs = append(invs, store.NewInvitation{Candidate: store.Candidate{StoreCode: "0001", Receipt: fmt.Sprint(i), At: now.Add(-20 * time.Hour),
			CustomerCode: fmt.Sprint(i), Email: fmt.Sprintf("c%d@example.ru", i)}, Token: fmt.Sprintf("tok%029d", i), DueAt: now, Expires: now.Add(time.Hour)})
	}
	if _, err := db.AddInvitations(ctx, invs, now.AddDate(0, 0, -30)); err != nil {
		b.Fatal(err)
	}
	for {
		out, err := db.ClaimDue(ctx, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) == 0 {
			break
		}
		for _, o := range out {
			db.Start(ctx, o)
			db.MarkSent(ctx, o, "<x@example.ru>")
		}
	}
	h, err := survey.New(db, survey.Options{AlertGroups: []string{"training@example.ru"}, PerIPRate: 1e9, PerIPBurst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	form := url.Values{"rating": {"2"}, "nps": {"3"}, "comment": {"Долго ждали консультанта, на кассе очередь"}}.Encode()
	b.ResetTimer()
	for i := range b.N {
		r := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/s/tok%029d", i), strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("answer %d: %d %s", i, w.Code, w.Body)
		}
	}
}
