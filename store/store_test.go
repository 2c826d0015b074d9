package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
)

func open(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "otklik.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestOpen_MigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "otklik.db")
	for range 2 {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func TestBeginFile_DuplicateContent(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	v := store.FileVersion{Source: "office", Name: "a.csv", Size: 10, MTime: 1}
	id, dup, _, err := db.BeginFile(ctx, v, "abc", "stores", "utf-8")
	if err != nil || dup {
		t.Fatalf("first: dup=%v err=%v", dup, err)
	}
	if err := db.FinishFile(ctx, id, store.FileCounts{Loaded: 3}, ""); err != nil {
		t.Fatal(err)
	}
	renamed := store.FileVersion{Source: "office", Name: "b.csv", Size: 10, MTime: 2}
	if _, dup, _, err = db.BeginFile(ctx, renamed, "abc", "stores", "utf-8"); err != nil || !dup {
		t.Fatalf("renamed copy: dup=%v err=%v, want a duplicate", dup, err)
	}
	st, err := db.FileStatus(ctx, renamed)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st, store.FileSkippedDuplicate; got != want {
		t.Fatalf("status = %q, want %q", got, want)
	}
	s, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Files.Ingested != 1 || s.Files.SkippedDuplicate != 1 || s.Rows.Loaded != 3 {
		t.Fatalf("status = %+v", s.Files)
	}
}

func TestBeginFile_ResumesCutOffLoad(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	v := store.FileVersion{Source: "office", Name: "stores.csv", Size: 10, MTime: 1}
	id, _, r, err := db.BeginFile(ctx, v, "abc", "stores", "utf-8")
	if err != nil || r.Checkpoint != 0 {
		t.Fatalf("first: resume=%+v err=%v", r, err)
	}
	b, err := db.BeginBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := store.FileCounts{Loaded: 40, Duplicate: 2, Rejected: 1}
	c := want
	if err := b.Checkpoint(ctx, 44, &c); err != nil {
		t.Fatal(err)
	}
	// The process dies here: the file stays "loading".
	id2, dup, r, err := db.BeginFile(ctx, v, "abc", "stores", "utf-8")
	if err != nil || dup || id2 != id {
		t.Fatalf("second: id=%d (want %d) dup=%v err=%v", id2, id, dup, err)
	}
	if r.Checkpoint != 44 || r.Counts != want {
		t.Fatalf("resume = %+v, want checkpoint 44 and %+v", r, want)
	}
	// The same name with new content starts over.
	_, _, r, err = db.BeginFile(ctx, v, "def", "stores", "utf-8")
	if err != nil || r.Checkpoint != 0 {
		t.Fatalf("changed content: resume=%+v err=%v, want a fresh start", r, err)
	}
}

func TestAddResponse_Once(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	inv := store.NewInvitation{
		Candidate: store.Candidate{StoreCode: "0001", Receipt: "R1", At: now.Add(-24 * time.Hour), CustomerCode: "C1", Email: "a@example.ru"},
		Token:     "tok", DueAt: now, Expires: now.Add(time.Hour),
	}
	if n, err := db.AddInvitations(ctx, []store.NewInvitation{inv}, now.Add(-30*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("add invitation: n=%d err=%v", n, err)
	}
	if _, err := db.AddResponse(ctx, "tok", store.Response{Rating: 5}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("answer before sending: err = %v, want ErrConflict", err)
	}
	out, err := db.ClaimDue(ctx, 10)
	if err != nil || len(out) != 1 {
		t.Fatalf("claim: %v %v", out, err)
	}
	if ok, err := db.Start(ctx, out[0]); err != nil || !ok {
		t.Fatalf("start: %v %v", ok, err)
	}
	if err := db.MarkSent(ctx, out[0], "<id@x>"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddResponse(ctx, "tok", store.Response{Rating: 4, Feedback: []store.Feedback{{Category: "service", Tone: "positive"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddResponse(ctx, "tok", store.Response{Rating: 1}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second answer: err = %v, want ErrConflict", err)
	}
	if _, err := db.AddResponse(ctx, "nope", store.Response{Rating: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: err = %v, want ErrNotFound", err)
	}
	counts, err := db.FeedbackCounts(ctx, store.Period{From: now.Add(-time.Hour), To: now.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := counts[store.Feedback{Category: "service", Tone: "positive"}]; got != 1 {
		t.Fatalf("service/positive = %d, want 1", got)
	}
}

func TestForget(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	b, err := db.BeginBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Customer{
		{Code: "1", Name: "Иванов Иван", Email: "ivan@example.ru", Phone: "+79120000000", Consent: true},
		{Code: "2", Name: "Иванов И.", Email: "ivan@example.ru", Consent: true},
		{Code: "3", Name: "Петров", Email: "petr@example.ru", Consent: true},
	} {
		if _, err := b.AddCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	n, err := db.Forget(ctx, "", "+79120000000")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("erased %d cards by phone, want 1", n)
	}
	if n, err = db.Forget(ctx, "ivan@example.ru", ""); err != nil || n != 1 {
		t.Fatalf("erased %d cards by email (err %v), want 1 more", n, err)
	}
	// A later export brings the card back: it must stay erased.
	b, _ = db.BeginBatch(ctx, 0)
	if changed, err := b.AddCustomer(ctx, store.Customer{Code: "1", Name: "Иванов Иван", Email: "ivan@example.ru", Consent: true}); err != nil || changed {
		t.Fatalf("re-export of a forgotten card changed it: %v %v", changed, err)
	}
	b.Commit()
	s, _ := db.Status(ctx)
	if s.Suppressed != 1 {
		t.Fatalf("suppressed = %d, want 1 (the hashed address)", s.Suppressed)
	}
}

func TestStability(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	seen, err := db.Stability(ctx, "s", []store.Listed{{Name: "a", Size: 1, MTime: 1}, {Name: "b", Size: 1, MTime: 1}})
	if err != nil || !seen["a"].Equal(now) {
		t.Fatalf("first listing: %v %v", seen, err)
	}
	later := now.Add(time.Minute)
	db.Now = func() time.Time { return later }
	seen, err = db.Stability(ctx, "s", []store.Listed{{Name: "a", Size: 1, MTime: 1}, {Name: "b", Size: 2, MTime: 2}})
	if err != nil || !seen["a"].Equal(now) || !seen["b"].Equal(later) {
		t.Fatalf("a unchanged since %v, b grew at %v: %v %v", now, later, seen, err)
	}
	if seen, _ = db.Stability(ctx, "s", nil); len(seen) != 0 {
		t.Fatal(seen)
	}
	// Forgotten once gone: a file that comes back starts again.
	seen, _ = db.Stability(ctx, "s", []store.Listed{{Name: "a", Size: 1, MTime: 1}})
	if !seen["a"].Equal(later) {
		t.Fatalf("a came back: %v", seen)
	}
}

func TestSourceRun(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	down := errors.New("connection refused")
	var got []string
	for _, err := range []error{down, down, down, down, nil, nil, down} {
		h, rerr := db.SourceRun(ctx, "ftp", err, 3)
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch {
		case h.Down:
			got = append(got, "down")
		case h.Recovered:
			got = append(got, "up")
		default:
			got = append(got, "-")
		}
	}
	if want := "- - down - up - -"; strings.Join(got, " ") != want {
		t.Fatalf("events = %v, want %s", got, want)
	}
}

func TestCondition_OnceAndClear(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	var events []string
	for _, active := range []bool{false, true, true, true, false, false, true} {
		started, ended, err := db.Condition(ctx, "smtp", active, "x")
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, map[[2]bool]string{{true, false}: "start", {false, true}: "end", {false, false}: "-"}[[2]bool{started, ended}])
	}
	if got := strings.Join(events, " "); got != "- start - - end - start" {
		t.Fatalf("events = %s", got)
	}
}

func TestRetainAndBackup(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	old := time.Date(2022, 1, 10, 9, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return old }
	b, _ := db.BeginBatch(ctx, 0)
	b.AddCustomer(ctx, store.Customer{Code: "old", Name: "Старый", Email: "old@example.ru", Consent: true})
	b.AddCustomer(ctx, store.Customer{Code: "buyer", Name: "Покупатель", Email: "buyer@example.ru", Consent: true})
	b.AddPurchaseLine(ctx, store.PurchaseLine{StoreCode: "1", Receipt: "r", Line: 1, At: now.AddDate(0, -1, 0), CustomerCode: "buyer", QtyMilli: 1000, SumKop: 100})
	b.Commit()
	// An answer with a comment from long ago and one from last month.
	answer := func(token string, at time.Time) {
		t.Helper()
		db.Now = func() time.Time { return at }
		inv := store.NewInvitation{
			Candidate: store.Candidate{StoreCode: "1", Receipt: token, At: at.Add(-24 * time.Hour), CustomerCode: token, Email: token + "@example.ru"},
			Token:     token, DueAt: at, Expires: at.Add(time.Hour),
		}
		if _, err := db.AddInvitations(ctx, []store.NewInvitation{inv}, at.AddDate(0, -1, 0)); err != nil {
			t.Fatal(err)
		}
		out, err := db.ClaimDue(ctx, 1)
		if err != nil || len(out) != 1 {
			t.Fatalf("claim: %v %v", out, err)
		}
		db.Start(ctx, out[0])
		db.MarkSent(ctx, out[0], "<"+token+"@x>")
		if _, err := db.AddResponse(ctx, token, store.Response{Rating: 1, Comment: "Грубый кассир " + token}); err != nil {
			t.Fatal(err)
		}
	}
	answer("early", old)
	answer("recent", now.AddDate(0, -1, 0))
	db.Now = func() time.Time { return now }
	cards, answers, err := db.Retain(ctx, now.AddDate(-3, 0, 0), now.AddDate(-3, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if cards != 1 || answers != 1 {
		t.Fatalf("anonymized %d cards and %d answers, want 1 each (those untouched for 3 years)", cards, answers)
	}
	// Only the old card lost its data; only the recent comment is left.
	if n, _ := db.Forget(ctx, "old@example.ru", ""); n != 0 {
		t.Error("the card untouched for 3 years still has its email")
	}
	if n, _ := db.Forget(ctx, "buyer@example.ru", ""); n != 1 {
		t.Error("the card of a recent buyer lost its email")
	}
	comments, err := db.NegativeComments(ctx, store.Period{From: old.AddDate(-1, 0, 0), To: now}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(comments) != 1 || comments[0].Comment != "Грубый кассир recent" {
		t.Fatalf("comments after retention: %+v", comments)
	}
	// The copy opens and holds the data; only the newest two are kept.
	dir := t.TempDir()
	var last string
	for i := range 3 {
		db.Now = func() time.Time { return now.Add(time.Duration(i) * time.Second) }
		if last, err = db.Backup(ctx, dir, 2); err != nil {
			t.Fatal(err)
		}
	}
	copies, _ := filepath.Glob(filepath.Join(dir, "otklik-*.db"))
	if len(copies) != 2 || copies[1] != last {
		t.Fatalf("copies = %v", copies)
	}
	cp, err := store.Open(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if s, _ := cp.Status(ctx); s.Customers != 2 || s.PurchaseLines != 1 || s.Responses != 2 {
		t.Fatalf("backup holds %+v", s)
	}
}

// Answers arriving together are written together, and each still gets its
// own outcome: one answer per survey, a repeat refused, an unknown token
// not found, even while an ingest batch holds the writer.
func TestAddResponse_Concurrent(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	const n = 200
	addInvitations(t, db, now, n)
	out, err := db.ClaimDue(ctx, n)
	if err != nil || len(out) != n {
		t.Fatalf("claim: %d %v", len(out), err)
	}
	for _, o := range out {
		db.Start(ctx, o)
		db.MarkSent(ctx, o, "<x@example.ru>")
	}
	batch, err := db.BeginBatch(ctx, 0) // an ingest holding the writer
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		token string
		id    int64
		err   error
	}
	results := make(chan result, 3*n)
	var wg sync.WaitGroup
	for i := range n {
		for _, token := range []string{fmt.Sprint("tok", i), fmt.Sprint("tok", i), fmt.Sprint("nope", i)} {
			wg.Go(func() {
				id, err := db.AddResponse(ctx, token, store.Response{Rating: 1 + i%5, AlertTo: []string{"director@example.ru"},
					Feedback: []store.Feedback{{Category: "service", Tone: "negative"}}})
				results <- result{token, id, err}
			})
		}
	}
	time.Sleep(50 * time.Millisecond)
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	saved, refused, ids := map[string]int{}, map[string]int{}, map[int64]bool{}
	for r := range results {
		switch {
		case strings.HasPrefix(r.token, "nope"):
			if !errors.Is(r.err, store.ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", r.token, r.err)
			}
		case r.err == nil:
			saved[r.token]++
			if ids[r.id] {
				t.Errorf("%s: response id %d given twice", r.token, r.id)
			}
			ids[r.id] = true
		case errors.Is(r.err, store.ErrConflict):
			refused[r.token]++
		default:
			t.Errorf("%s: %v", r.token, r.err)
		}
	}
	for i := range n {
		token := fmt.Sprint("tok", i)
		if saved[token] != 1 || refused[token] != 1 {
			t.Errorf("%s: saved %d, refused %d; want one of each", token, saved[token], refused[token])
		}
	}
	s, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Responses != n {
		t.Errorf("%d responses stored, want %d", s.Responses, n)
	}
	counts, err := db.FeedbackCounts(ctx, store.Period{From: now.Add(-time.Hour), To: now.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := counts[store.Feedback{Category: "service", Tone: "negative"}]; got != n {
		t.Errorf("service/negative = %d, want %d: a refused answer left its categories", got, n)
	}
	if s.Messages.Planned != n {
		t.Errorf("%d alerts queued, want one per saved answer (%d)", s.Messages.Planned, n)
	}
}

// purchasesFile opens a database and begins loading a purchases file.
func purchasesFile(t *testing.T) (*store.DB, int64) {
	t.Helper()
	db := open(t)
	v := store.FileVersion{Source: "office", Name: "purchases.csv", Size: 10, MTime: 1}
	id, _, _, err := db.BeginFile(context.Background(), v, "abc", "purchases", "utf-8")
	if err != nil {
		t.Fatal(err)
	}
	return db, id
}

// Queued purchase lines are inserted many to a statement, with the same
// result as one by one: a line loaded before, or twice in the queue,
// counts as a duplicate, and the checkpoint adds the counts to the file's.
func TestQueuePurchaseLine_CountsAsAddPurchaseLine(t *testing.T) {
	ctx := context.Background()
	db, id := purchasesFile(t)
	line := func(receipt string, n int) store.PurchaseLine {
		return store.PurchaseLine{StoreCode: "1", Receipt: receipt, Line: n, At: time.Unix(1793361600, 0),
			Category: "Свет", QtyMilli: 1000, SumKop: 100}
	}
	b, err := db.BeginBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPurchaseLine(ctx, line("a", 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err = db.BeginBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// 150 lines: a whole statement or two and a part; "a"/1 is loaded
	// already and "b"/7 comes twice.
	var offered []store.PurchaseLine
	offered = append(offered, line("a", 1))
	for i := range 148 {
		offered = append(offered, line("b", i))
	}
	offered = append(offered, line("b", 7))
	for _, l := range offered {
		if err := b.QueuePurchaseLine(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	c := store.FileCounts{Loaded: 1, Rejected: 3}
	if err := b.Checkpoint(ctx, 150, &c); err != nil {
		t.Fatal(err)
	}
	if want := (store.FileCounts{Loaded: 149, Duplicate: 2, Rejected: 3}); c != want {
		t.Errorf("counts = %+v, want %+v", c, want)
	}
	s, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.PurchaseLines != 149 {
		t.Errorf("%d purchase lines, want 149", s.PurchaseLines)
	}
}

// In a run of lines loaded already, queued lines are looked up before
// they are offered; a receipt loaded in part gets its new lines (also
// when those queued leave a gap that its loaded lines fill), the same
// receipt number in another store is another receipt, and a line queued
// twice counts once.
func TestQueuePurchaseLine_OverlappingExport(t *testing.T) {
	ctx := context.Background()
	db, id := purchasesFile(t)
	line := func(storeCode, receipt string, n int) store.PurchaseLine {
		return store.PurchaseLine{StoreCode: storeCode, Receipt: receipt, Line: n, At: time.Unix(1793361600, 0),
			Category: "Свет", QtyMilli: 1000, SumKop: 100}
	}
	var loaded []store.PurchaseLine
	for r := range 100 {
		for n := 1; n <= 3; n++ {
			loaded = append(loaded, line("1", fmt.Sprint("r", r), n))
		}
	}
	loaded = append(loaded, line("1", "x", 1), line("1", "x", 2), line("1", "z", 1), line("1", "z", 2))
	queue := func(ls []store.PurchaseLine) store.FileCounts {
		t.Helper()
		b, err := db.BeginBatch(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if err := b.QueuePurchaseLine(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		var c store.FileCounts
		if err := b.Checkpoint(ctx, 1, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	queue(loaded)
	// The first statement's lines are all loaded, so the next ones are
	// looked up first.
	again := append([]store.PurchaseLine{}, loaded[:100]...)
	again = append(again, line("1", "x", 1), line("1", "x", 3), line("1", "x", 2), line("1", "x", 4),
		line("2", "x", 1), line("2", "x", 2), line("1", "y", 1), line("1", "y", 2), line("1", "y", 1),
		line("1", "z", 1), line("1", "z", 3))
	again = append(again, loaded[100:]...)
	if got, want := queue(again), (store.FileCounts{Loaded: 7, Duplicate: int64(len(again) - 7)}); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	s, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(loaded) + 7); s.PurchaseLines != want {
		t.Errorf("%d purchase lines, want %d", s.PurchaseLines, want)
	}
}

// Claimed mail is leased: another claim skips it until the lease runs out
// (a sender that died without settling it).
func TestClaimDue_Leases(t *testing.T) {
	ctx := context.Background()
	db, now := withInvitations(t, 3)
	*now = now.Add(time.Minute)
	ids := func(out []store.Outgoing) (s []string) {
		for _, o := range out {
			s = append(s, o.Email)
		}
		return s
	}
	first, err := db.ClaimDue(ctx, 2)
	if err != nil || len(first) != 2 {
		t.Fatalf("first claim: %v %v", ids(first), err)
	}
	rest, err := db.ClaimDue(ctx, 10)
	if err != nil || len(rest) != 1 || rest[0].Email != "c2@example.ru" {
		t.Fatalf("second claim: %v %v, want only the unleased c2@", ids(rest), err)
	}
	if again, err := db.ClaimDue(ctx, 10); err != nil || len(again) != 0 {
		t.Fatalf("third claim: %v %v, want nothing", ids(again), err)
	}
	*now = now.Add(time.Hour)
	if again, err := db.ClaimDue(ctx, 10); err != nil || len(again) != 3 {
		t.Fatalf("after the leases ran out: %v %v, want all three", ids(again), err)
	}
}

// withInvitations opens a database whose clock reads *now, with n
// invitations (addInvitations) due at it.
func withInvitations(tb testing.TB, n int) (*store.DB, *time.Time) {
	tb.Helper()
	db := open(tb)
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	addInvitations(tb, db, now, n)
	return db, &now
}

// addInvitations adds n invitations for receipts "0".."n-1" of store 0001
// (addresses c<i>@example.ru, tokens tok<i>), due at now, claimed in that
// order, and expiring a day later.
func addInvitations(tb testing.TB, db *store.DB, now time.Time, n int) {
	tb.Helper()
	var invs []store.NewInvitation
	for i := range n {
		invs = append(invs, store.NewInvitation{Candidate: store.Candidate{StoreCode: "0001", Receipt: fmt.Sprint(i), At: now.Add(-24 * time.Hour),
			CustomerCode: fmt.Sprint(i), Email: fmt.Sprintf("c%d@example.ru", i)}, Token: fmt.Sprint("tok", i), DueAt: now, Expires: now.Add(24 * time.Hour)})
	}
	if added, err := db.AddInvitations(context.Background(), invs, now.AddDate(0, 0, -30)); err != nil || added != n {
		tb.Fatalf("add invitations: %d of %d, %v", added, n, err)
	}
}

// TestBeginSending_RecoversOnlyAfterAnUnfinishedRun: a run that died
// leaves mail sending and claims leased, which the next run settles; after
// a run that ended (EndSending) the next one does not look.
func TestBeginSending_RecoversOnlyAfterAnUnfinishedRun(t *testing.T) {
	ctx := context.Background()
	db, _ := withInvitations(t, 3)
	begin := func(want int64) {
		t.Helper()
		if n, err := db.BeginSending(ctx); err != nil || n != want {
			t.Fatalf("recovered %d, %v; want %d", n, err, want)
		}
	}
	begin(0) // a new database: looks, finds nothing
	out, err := db.ClaimDue(ctx, 2)
	if err != nil || len(out) != 2 {
		t.Fatalf("claim: %v %v", out, err)
	}
	if ok, err := db.Start(ctx, out[0]); err != nil || !ok {
		t.Fatalf("start: %v %v", ok, err)
	}
	// The run dies here: the next one marks the started one unknown and
	// releases the other claim.
	begin(1)
	if again, err := db.ClaimDue(ctx, 10); err != nil || len(again) != 2 {
		t.Fatalf("claims after recovery: %d %v, want the two never started", len(again), err)
	}
	if err := db.EndSending(ctx); err != nil {
		t.Fatal(err)
	}
	// After a run that ended, nothing is looked for: mail claimed now
	// stays leased to this run.
	begin(0)
	if again, err := db.ClaimDue(ctx, 10); err != nil || len(again) != 0 {
		t.Fatalf("claims after a clean start: %d %v, want none (leased)", len(again), err)
	}
	s, _ := db.Status(ctx)
	if s.Invitations.Unknown != 1 {
		t.Fatalf("unknown = %d, want 1", s.Invitations.Unknown)
	}
}

// TestSummarize_RejectsByColumn: the summary groups a day's rejects by
// file and column, largest first, each with its first reason.
func TestSummarize_RejectsByColumn(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return day.Add(3 * time.Hour) }
	v := store.FileVersion{Source: "office", Name: "purchases_1.csv", Size: 10, MTime: 1}
	id, _, _, err := db.BeginFile(ctx, v, "abc", "purchases", "utf-8")
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.BeginBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range [][2]string{
		{"Дата", `"2026-13-01" is not a date`}, {"Дата", `"2026-14-01" is not a date`},
		{"", `bare " in non-quoted-field`}, {"Дата", `"2026-15-01" is not a date`},
	} {
		if err := b.AddReject(ctx, i+2, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	// A value a row loaded without is counted apart from the rejects.
	if err := b.AddDropped(ctx, 7, "Дата", `"2026-16-01" is not a date`); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishFile(ctx, id, store.FileCounts{Rejected: 4, Dropped: 1}, ""); err != nil {
		t.Fatal(err)
	}
	s, err := db.Summarize(ctx, store.Period{From: day, To: day.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ReasonCount{
		{File: "purchases_1.csv", Field: "Дата", Example: `"2026-13-01" is not a date`, Count: 3},
		{File: "purchases_1.csv", Field: "", Example: `bare " in non-quoted-field`, Count: 1},
		{File: "purchases_1.csv", Field: "Дата", Example: `"2026-16-01" is not a date`, Count: 1, Kept: true},
	}
	if fmt.Sprint(s.RejectReasons) != fmt.Sprint(want) {
		t.Errorf("reasons %v, want %v", s.RejectReasons, want)
	}
	if s.RowsRejected != 4 || s.ValuesDropped != 1 {
		t.Errorf("%d rows rejected, %d values dropped; want 4 and 1", s.RowsRejected, s.ValuesDropped)
	}
}
