package etl

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const purchasesHead = "НомерЧека;НомерСтроки;Дата;Магазин;КодКлиента;КодТовара;Товар;Категория;Количество;Цена;Сумма;Продавец\n"

// purchaseRow is a data row of a purchases export, the k-th of a run.
func purchaseRow(k int, seller string) string {
	return fmt.Sprintf("0001-%07d;%d;%02d.11.2026 %d:%02d:00;0001;%06d;Т-%d;Товар %d;Кухни;1;%d,00;%d,00;%s\n",
		k/3, k%3+1, 1+k%28, 10+k%10, k%60, k%997, k%50, k%50, 100+k%900, 100+k%900, seller)
}

type blockItem struct {
	line, known int
	parsed      bool
	bad         string
	block       string // the hash recorded with the line
}

// readBlocks reads a purchases export as a load does, with the hashes in
// known taken as loaded; it returns what the reader sends and adds the
// hashes of the blocks it records to recorded.
func readBlocks(t *testing.T, text string, skip int, known, recorded map[string]bool) []blockItem {
	t.Helper()
	items, err := readItems(text, skip, true, known, recorded)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// readItems reads a purchases export as a load does, in blocks or row by
// row as other feeds are read.
func readItems(text string, skip int, blocks bool, known, recorded map[string]bool) ([]blockItem, error) {
	parse := func(r *csvRow) (func() (outcome, error), *RowError) {
		_, bad := parsePurchase(r, func(string) *time.Location { return time.UTC }, time.Now())
		return func() (outcome, error) { return queuedRow, nil }, bad
	}
	var isKnown func([]byte) (bool, error)
	if blocks {
		isKnown = func(hash []byte) (bool, error) { return known[string(hash)], nil }
	}
	rows, wait := readAhead(context.Background(), strings.NewReader(text), feeds[FeedPurchases], skip, parse, isKnown)
	var out []blockItem
	for chunk := range rows {
		for _, p := range chunk {
			it := blockItem{line: p.line, known: p.known, parsed: p.write != nil, block: string(p.block)}
			if p.bad != nil {
				it.bad = p.bad.Field + ": " + p.bad.Reason
			}
			if p.block != nil {
				recorded[string(p.block)] = true
			}
			out = append(out, it)
		}
	}
	return out, wait()
}

// covered checks that items cover each line from first to last once, in
// order, and returns how many were passed over.
func covered(t *testing.T, items []blockItem, first, last int) (known int) {
	t.Helper()
	next := first
	for _, it := range items {
		if it.known > 0 {
			next += it.known
			known += it.known
			if it.line != next-1 {
				t.Fatalf("a known block ends at line %d, want %d", it.line, next-1)
			}
			continue
		}
		if it.line != next {
			t.Fatalf("line %d sent, want %d", it.line, next)
		}
		next++
	}
	if next != last+1 {
		t.Fatalf("lines up to %d sent, want up to %d", next-1, last)
	}
	return known
}

func TestBlocker_PassesOverBlocksLoadedBefore(t *testing.T) {
	const n = 6000
	var first strings.Builder
	first.WriteString(purchasesHead)
	for k := range n {
		first.WriteString(purchaseRow(k, "Белова Н."))
	}
	loaded := map[string]bool{}
	items1 := readBlocks(t, first.String(), 0, nil, loaded)
	if got := covered(t, items1, 2, n+1); got != 0 {
		t.Fatalf("%d lines of a first export passed over", got)
	}
	if len(loaded) < 4 {
		t.Fatalf("%d blocks recorded in %d lines", len(loaded), n)
	}

	// The next export: from row 1000 on, one row changed, a bad row, 400
	// new rows.
	var second strings.Builder
	second.WriteString(purchasesHead)
	changed, bad := 0, 0
	for k := 1000; k < n+400; k++ {
		line := 2 + k - 1000 + bad
		switch k {
		case 3000:
			second.WriteString(purchaseRow(k, "Орлова Е."))
			changed = line
			continue
		case 4000:
			second.WriteString("0001-x;1;31.02.2026 10:00:00;0001;;Т-1;Товар;Кухни;1;1,00;1,00;\n")
			bad = 1
		}
		second.WriteString(purchaseRow(k, "Белова Н."))
	}
	last := 1 + n + 400 - 1000 + 1
	recorded := map[string]bool{}
	items := readBlocks(t, second.String(), 0, loaded, recorded)
	known := covered(t, items, 2, last)
	// Each of the three changes (the cut, the changed row, the bad row)
	// costs the block it falls in; the export is fixed, and so are its
	// blocks.
	if known < (n-1000)/2 {
		t.Fatalf("%d of %d lines loaded before passed over, want at least half", known, n-1000)
	}
	t.Logf("%d blocks recorded; of the next export %d of %d lines loaded before passed over", len(loaded), known, n-1000)
	var badField string
	for _, it := range items {
		switch {
		case it.line == changed && !it.parsed:
			t.Errorf("the changed line %d was not parsed", changed)
		case it.line > 1+n-1000+1 && it.known > 0:
			t.Errorf("a block of new lines ending at %d passed over", it.line)
		case it.bad != "":
			badField = it.bad
		}
	}
	if !strings.HasPrefix(badField, "Дата: ") {
		t.Fatalf("bad row rejected on %q, want Дата", badField)
	}
	for h := range recorded {
		if loaded[h] {
			t.Error("a block passed over was recorded again")
		}
	}

	// A load cut off in the middle of a block resumes after its last line:
	// the lines before it are not sent again, and its block is recorded
	// with its last line as in a load that was not cut off.
	for _, skip := range []int{700, 2501} {
		want := map[string]bool{}
		for _, it := range items1 {
			if it.block != "" && it.line > skip {
				want[it.block] = true
			}
		}
		got := map[string]bool{}
		items := readBlocks(t, first.String(), skip, nil, got)
		covered(t, items, skip+1, n+1)
		if !maps.Equal(got, want) {
			t.Errorf("resumed after line %d: %d blocks recorded, want the %d the whole load records after it", skip, len(got), len(want))
		}
	}
}

// FuzzBlocks reads arbitrary purchases exports three ways: in blocks, in
// blocks again with those recorded taken as loaded, and row by row. Each
// way must send every line, and the same rejects.
func FuzzBlocks(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/csv/purchases/*.csv")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	var gen strings.Builder
	gen.WriteString(purchasesHead)
	for k := range 3000 {
		gen.WriteString(purchaseRow(k, "Белова Н."))
	}
	f.Add([]byte(gen.String()))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u utf8Checker
		u.Write(data)
		r, err := decoder(bytes.NewReader(data), u.Encoding())
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(r)
		if err != nil {
			return
		}
		summary := func(items []blockItem) (lines int, bad []string) {
			for _, it := range items {
				if it.known > 0 {
					lines += it.known
					continue
				}
				lines++
				if it.bad != "" {
					bad = append(bad, fmt.Sprint(it.line, it.bad))
				}
			}
			return lines, bad
		}
		loaded := map[string]bool{}
		items1, err1 := readItems(string(text), 0, true, nil, loaded)
		items2, err2 := readItems(string(text), 0, true, loaded, map[string]bool{})
		items3, err3 := readItems(string(text), 0, false, nil, nil)
		if fmt.Sprint(err1) != fmt.Sprint(err3) || fmt.Sprint(err2) != fmt.Sprint(err3) {
			t.Fatalf("errors: in blocks %v, again %v, row by row %v", err1, err2, err3)
		}
		lines1, bad1 := summary(items1)
		lines2, bad2 := summary(items2)
		lines3, bad3 := summary(items3)
		if lines1 != lines3 || lines2 != lines3 || !slices.Equal(bad1, bad3) || !slices.Equal(bad2, bad3) {
			t.Fatalf("lines and rejects: in blocks %d %v, again %d %v, row by row %d %v", lines1, bad1, lines2, bad2, lines3, bad3)
		}
	})
}
