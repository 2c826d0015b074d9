package etl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/store"
	"golang.org/x/text/encoding/charmap"
)

func TestExporter_Files(t *testing.T) {
	ctx := context.Background()
	_, db := newIngester(t)
	msk, _ := time.LoadLocation("Europe/Moscow")
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	inv := store.NewInvitation{Candidate: store.Candidate{StoreCode: "0001", Receipt: "R-1", At: now.Add(-20 * time.Hour),
		CustomerCode: "000100001", Email: "anna@example.ru"}, Token: "tok", DueAt: now, Expires: now.Add(time.Hour)}
	db.AddInvitations(ctx, []store.NewInvitation{inv}, now.Add(-time.Hour))
	out, _ := db.ClaimDue(ctx, 1)
	db.Start(ctx, out[0])
	db.MarkSent(ctx, out[0], "")
	nps := 3
	if _, err := db.AddResponse(ctx, "tok", store.Response{Rating: 2, NPS: &nps, Comment: "=HYPERLINK(\"http://evil\") очередь 😡",
		Feedback: []store.Feedback{{Category: "service", Tone: "negative"}}}); err != nil {
		t.Fatal(err)
	}
	db.Suppress(ctx, "anna@example.ru", "unsubscribed")
	x := &etl.Exporter{DB: db, Zone: msk}
	files, err := x.Files(ctx, time.Date(2026, 11, 22, 0, 0, 0, 0, msk))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		s, err := charmap.Windows1251.NewDecoder().String(string(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		got[f.Name] = s
	}
	answers := got["answers_20261122.csv"]
	want := "Дата;Магазин;НомерЧека;КодКлиента;Оценка;NPS;Понравилось;НеПонравилось;Комментарий\r\n" +
		"22.11.2026 12:00:00;0001;R-1;000100001;2;3;;Обслуживание;\"'=HYPERLINK(\"\"http://evil\"\") очередь ?\"\r\n"
	if answers != want {
		t.Fatalf("answers file:\n%q\nwant\n%q", answers, want)
	}
	if u := got["unsubscribes_20261122.csv"]; !strings.Contains(u, "anna@example.ru;;Отписался") {
		t.Fatalf("unsubscribes file: %q", u)
	}
	if _, ok := got["promocodes_20261122.csv"]; !ok {
		t.Fatalf("files: %v", files)
	}
	// The same day again gives the same bytes.
	again, _ := x.Files(ctx, time.Date(2026, 11, 22, 15, 0, 0, 0, msk))
	for i := range files {
		if string(again[i].Data) != string(files[i].Data) {
			t.Fatalf("%s differs the second time", files[i].Name)
		}
	}
}
