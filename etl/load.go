package etl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/otklik/otklik/store"
)

// batchTime is the longest a load holds SQLite's write lock at a time;
// after yieldAfter it lets a waiting writer (survey answers, send
// outcomes) go first.
const (
	batchTime  = 50 * time.Millisecond
	yieldAfter = 10 * time.Millisecond
)

// load parses a spooled file and writes its rows in batches. Each batch
// commits with a checkpoint (the last line, or CommerceML item, it
// covers, and the counts so far), so a load cut off by a crash resumes
// after its last batch and ends as an uninterrupted one would.
func (in *Ingester) load(ctx context.Context, fileID int64, feedName, path, enc string, cols map[string]string, resume store.Resume) (store.FileCounts, error) {
	c := resume.Counts
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	var bom [2]byte
	if n, _ := f.Read(bom[:]); n == 2 && (bom == [2]byte{0xff, 0xfe} || bom == [2]byte{0xfe, 0xff}) {
		return c, &FileError{Reason: "the file is UTF-16: save it as UTF-8 or Windows-1251"}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return c, err
	}
	r, err := decoder(f, enc)
	if err != nil {
		return c, &FileError{Reason: err.Error()}
	}
	zone, err := in.zones(ctx)
	if err != nil {
		return c, err
	}
	size := in.BatchSize
	if size <= 0 {
		size = 5000
	}
	batch, err := in.DB.BeginBatch(ctx, fileID)
	if err != nil {
		return c, err
	}
	defer func() { batch.Rollback() }()
	pending, last, began := 0, resume.Checkpoint, time.Now()
	// step loads what is at pos (a line, or a CommerceML item) unless a
	// cut-off load already did, then commits the batch with pos as its
	// checkpoint once it is full, has held the write lock for batchTime,
	// or for yieldAfter while another writer waits (survey answers).
	step := func(pos int, load func() error) error {
		if pos <= resume.Checkpoint {
			return nil
		}
		if err := load(); err != nil {
			return err
		}
		last = pos
		if held := time.Since(began); pending < size && held < batchTime && (held < yieldAfter || !in.DB.WriterWaiting()) {
			return nil
		}
		if err := batch.Checkpoint(ctx, pos, c); err != nil {
			return err
		}
		pending, began = 0, time.Now()
		batch, err = in.DB.BeginBatch(ctx, fileID)
		return err
	}
	record := func(e *RowError) error {
		pending++
		c.Rejected++
		return batch.AddReject(ctx, e.Line, e.Field, e.Reason)
	}
	added := func(ok bool, err error) error {
		if err != nil {
			return err
		}
		pending++
		if ok {
			c.Loaded++
		} else {
			c.Duplicate++
		}
		return nil
	}
	var row func(*csvRow) error
	switch feedName {
	case FeedStores:
		row = func(r *csvRow) error {
			s, bad := parseStore(r)
			if bad != nil {
				return record(bad)
			}
			return added(batch.AddStore(ctx, s))
		}
	case FeedCustomers:
		row = func(r *csvRow) error {
			cu, bad := parseCustomer(r)
			if bad != nil {
				return record(bad)
			}
			return added(batch.AddCustomer(ctx, cu))
		}
	case FeedPurchases:
		row = func(r *csvRow) error {
			p, bad := parsePurchase(r, zone)
			if bad != nil {
				return record(bad)
			}
			return added(batch.AddPurchaseLine(ctx, p))
		}
	case FeedPromoCodes:
		row = func(r *csvRow) error {
			code := r.get("code")
			if code == "" {
				return record(rowErr(r, "code", "empty promo code"))
			}
			if len(code) > 64 || strings.ContainsFunc(code, unicode.IsSpace) {
				return record(rowErr(r, "code", "%q is not a promo code (no spaces, at most 64 bytes)", code))
			}
			return added(batch.AddPromoCode(ctx, code))
		}
	case FeedOrders:
		f.Seek(0, io.SeekStart)
		x := &xmlLoad{ctx: ctx, in: in, batch: func() *store.Batch { return batch }, zone: zone, added: added, reject: record, step: step}
		if err := x.read(f, enc == EncodingUTF8); err != nil {
			return c, err
		}
		if n, err := batch.Categorize(ctx); err != nil {
			return c, err
		} else if n > 0 {
			in.log().Info("earlier order lines categorized by the catalog", "lines", n)
		}
		if x.sales == 0 && x.usable == 0 && x.skipped != "" && resume.Checkpoint == 0 {
			return c, &FileError{Reason: "nothing to load: " + x.skipped}
		}
		return c, batch.Checkpoint(ctx, last, c)
	default:
		return c, &FileError{Reason: fmt.Sprintf("unknown feed %q", feedName)}
	}
	each := func(r *csvRow) error { return step(r.line, func() error { return row(r) }) }
	unreadable := func(e *RowError) error { return step(e.Line, func() error { return record(e) }) }
	if err := readCSV(r, feeds[feedName].withColumns(cols), each, unreadable); err != nil {
		return c, err
	}
	return c, batch.Checkpoint(ctx, last, c)
}

// zones returns a lookup of each store's time zone, the default for a
// store not yet known or without one.
func (in *Ingester) zones(ctx context.Context) (func(string) *time.Location, error) {
	names, err := in.DB.StoreTimeZones(ctx)
	if err != nil {
		return nil, err
	}
	def := in.Zone
	if def == nil {
		def = time.UTC
	}
	locs := map[string]*time.Location{}
	for code, name := range names {
		if loc, err := time.LoadLocation(name); err == nil && name != "" {
			locs[code] = loc
		}
	}
	return func(code string) *time.Location {
		if loc, ok := locs[code]; ok {
			return loc
		}
		return def
	}, nil
}

// IngestFiles loads the given local files as source "files": each as the
// given feed, or with feed "" by the feed its name matches under the
// default patterns.
func (in *Ingester) IngestFiles(ctx context.Context, feed string, paths []string) (Result, error) {
	var res Result
	byDir := map[string][]Entry{}
	var dirs []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return res, fmt.Errorf("ingest %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return res, fmt.Errorf("ingest %s: not a regular file", p)
		}
		name := filepath.Base(p)
		if feed == "" && FeedOf(name) == "" {
			return res, fmt.Errorf("ingest %s: the name matches no feed (%s); name the feed with --feed", p, patternList())
		}
		dir := filepath.Dir(p)
		if _, ok := byDir[dir]; !ok {
			dirs = append(dirs, dir)
		}
		byDir[dir] = append(byDir[dir], Entry{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	for _, dir := range dirs {
		spec := SourceSpec{Name: "files", Source: &Local{Dir: dir}}
		if feed != "" {
			spec.Patterns = map[string][]string{feed: {"*"}}
		}
		work, err := in.plan(ctx, spec, byDir[dir], in.log())
		if err != nil {
			return res, err
		}
		for _, w := range work {
			srcErr, err := in.take(ctx, spec, w.entry, w.feed, &res)
			if err != nil {
				return res, err
			}
			if srcErr != nil {
				return res, srcErr
			}
		}
	}
	return res, nil
}

func patternList() string {
	var ps []string
	for _, f := range Feeds {
		ps = append(ps, DefaultPatterns[f]...)
	}
	return strings.Join(ps, ", ")
}

func (in *Ingester) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log.With("component", "etl")
}

func (in *Ingester) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}
