package etl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode"

	"github.com/otklik/otklik/store"
)

// batchTime is the longest a load holds SQLite's write lock at a time;
// after yieldAfter it lets a waiting writer (survey answers, send
// outcomes) go first. Larger batches write each touched page to the WAL
// fewer times.
const (
	batchTime  = 250 * time.Millisecond
	yieldAfter = 10 * time.Millisecond
)

// maxListedRejects is how many of a file's rejected rows (and values left
// out of rows that loaded) are kept with their line and reason, in the
// database and the rejects file; the rest are counted. A file of which
// every row is rejected (a date format changed in 1C) would otherwise add
// to the database as much as it holds, every night it came.
const maxListedRejects = 10000

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
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if isUTF16(head[:n]) {
		return c, &FileError{Reason: "файл в кодировке UTF-16: сохраните его в UTF-8 или Windows-1251"}
	}
	if kind := notExport(head[:n]); kind != "" {
		return c, &FileError{Reason: "файл — " + kind + ", а не текстовая выгрузка 1С (CSV или CommerceML XML)"}
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
		size = 20000
	}
	// A purchases file loaded from its first line is tallied for the
	// sales roll-ups (see store.SalesTally).
	var tally *store.SalesTally
	if feedName == FeedPurchases && resume.Checkpoint == 0 {
		if tally, err = in.DB.BeginTally(ctx); err != nil {
			return c, err
		}
	}
	begin := func() (*store.Batch, error) {
		b, err := in.DB.BeginBatch(ctx, fileID)
		if err == nil {
			b.SetTally(tally)
		}
		return b, err
	}
	batch, err := begin()
	if err != nil {
		return c, err
	}
	defer func() { batch.Rollback() }()
	pending, last, began := 0, resume.Checkpoint, time.Now()
	// cutOff ends a load stopped by a problem with the file as a whole.
	// What was read before the problem is committed, as the batches
	// before it were, so that a file ends the same wherever in it the
	// problem lies. Any other error leaves the batch to be loaded again.
	cutOff := func(err error) (store.FileCounts, error) {
		var fe *FileError
		if errors.As(err, &fe) {
			if cerr := batch.Checkpoint(ctx, last, &c); cerr != nil {
				return c, cerr
			}
		}
		return c, err
	}
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
		if err := batch.Checkpoint(ctx, pos, &c); err != nil {
			return err
		}
		pending, began = 0, time.Now()
		// The committed batch stays in hand until the next begins: the
		// deferred Rollback needs one (a canceled load fails here).
		next, err := begin()
		if err != nil {
			return err
		}
		batch = next
		return nil
	}
	// listed: the reject or dropped value just counted is one of the
	// file's first maxListedRejects.
	listed := func() bool { return c.Rejected+c.Dropped <= maxListedRejects }
	record := func(e *RowError) error {
		pending++
		c.Rejected++
		if !listed() {
			return nil
		}
		return batch.AddReject(ctx, e.Line, e.Field, e.Reason)
	}
	// drop records the values a row loads without.
	drop := func(es []*RowError) error {
		for _, e := range es {
			c.Dropped++
			if !listed() {
				continue
			}
			if err := batch.AddDropped(ctx, e.Line, e.Field, e.Reason); err != nil {
				return err
			}
		}
		return nil
	}
	added := func(o outcome, err error) error {
		if err != nil {
			return err
		}
		pending++
		switch o {
		case loadedRow:
			c.Loaded++
		case duplicateRow:
			c.Duplicate++
		}
		return nil
	}
	latest := in.now().Add(aheadOfClock)
	// parse reads a row into what writes it (nil if the row is bad).
	// Rows are read and parsed in a goroutine of their own while this one
	// writes them; what parse returns uses the batch of the moment.
	var parse func(r *csvRow) (func() (outcome, error), *RowError)
	switch feedName {
	case FeedStores:
		parse = func(r *csvRow) (func() (outcome, error), *RowError) {
			s, bad := parseStore(r)
			return func() (outcome, error) { return outcomeOf(batch.AddStore(ctx, s)) }, bad
		}
	case FeedCustomers:
		parse = func(r *csvRow) (func() (outcome, error), *RowError) {
			cu, dropped, bad := parseCustomer(r)
			return func() (outcome, error) {
				if err := drop(dropped); err != nil {
					return queuedRow, err
				}
				return queuedRow, batch.QueueCustomer(ctx, cu)
			}, bad
		}
	case FeedPurchases:
		parse = func(r *csvRow) (func() (outcome, error), *RowError) {
			p, bad := parsePurchase(r, zone, latest)
			p.Box()
			return func() (outcome, error) { return queuedRow, batch.QueuePurchaseLine(ctx, p) }, bad
		}
	case FeedPromoCodes:
		parse = func(r *csvRow) (func() (outcome, error), *RowError) {
			code := r.get("code")
			if code == "" {
				return nil, rowErr(r, "code", "пустой промокод")
			}
			if len(code) > 64 || strings.ContainsFunc(code, unicode.IsSpace) {
				return nil, rowErr(r, "code", "%q — не промокод (без пробелов, не длиннее 64 байт)", code)
			}
			return func() (outcome, error) { return outcomeOf(batch.AddPromoCode(ctx, code)) }, nil
		}
	case FeedOrders:
		f.Seek(0, io.SeekStart)
		x := &xmlLoad{ctx: ctx, in: in, latest: latest, batch: func() *store.Batch { return batch }, zone: zone, added: added, reject: record, drop: drop, step: step}
		if err := x.read(f, enc == EncodingUTF8); err != nil {
			return cutOff(err)
		}
		if n, err := batch.Categorize(ctx); err != nil {
			return c, err
		} else if n > 0 {
			in.log().Info("earlier order lines categorized by the catalog", "lines", n)
		}
		if x.sales == 0 && x.usable == 0 && x.skipped != "" && resume.Checkpoint == 0 {
			return c, &FileError{Reason: "загружать нечего: " + x.skipped}
		}
		err := batch.Checkpoint(ctx, last, &c)
		return c, err
	default:
		return c, &FileError{Reason: fmt.Sprintf("неизвестная выгрузка %q", feedName)}
	}
	readCtx, stop := context.WithCancel(ctx)
	var known func([]byte) (bool, error)
	if feedName == FeedPurchases {
		known = func(hash []byte) (bool, error) { return in.DB.KnownBlock(readCtx, hash) }
	}
	rows, readErr := readAhead(readCtx, r, feeds[feedName].withColumns(cols), resume.Checkpoint, parse, known)
	defer func() {
		stop()
		for range rows { // let the reader end before the file closes
		}
	}()
	for chunk := range rows {
		// A load keeps both cores busy (this goroutine, its reader, the
		// spool's compression): yielding between chunks lets a survey
		// answer's handler run within a chunk's time instead of waiting
		// for the scheduler to preempt a loader (10 ms each).
		runtime.Gosched()
		for _, it := range chunk {
			err := step(it.line, func() error {
				switch {
				case it.known > 0:
					// Not pending: passing over writes nothing.
					c.Duplicate += int64(it.known)
					return nil
				case it.bad != nil:
					return record(it.bad)
				case it.header != nil:
					return drop(it.header)
				}
				if err := added(it.write()); err != nil || it.block == nil {
					return err
				}
				return batch.AddBlock(ctx, it.block)
			})
			if err != nil {
				return c, err
			}
		}
	}
	if err := readErr(); err != nil {
		return cutOff(err)
	}
	if err := batch.Checkpoint(ctx, last, &c); err != nil {
		return c, err
	}
	// The file is loaded: a tally that cannot be written leaves its days
	// marked, and the refresh after the load sums them.
	if days, err := in.DB.ApplyTally(ctx, tally); err != nil {
		in.log().Warn("sales roll-ups left to the refresh", "err", err)
	} else if days > 0 {
		in.log().Info("sales roll-ups of the file's days written", "days", days)
	}
	return c, nil
}

// parsedRow is a CSV row read and checked: what writes it, or why it is
// rejected; or a block of rows loaded before, passed over.
type parsedRow struct {
	line  int
	write func() (outcome, error)
	bad   *RowError
	// header, on the header's line, notes the columns a file lacks that
	// decide surveys (see feed.absent).
	header []*RowError
	// block, on the last row of a block that loads whole, is its hash,
	// to record with the row (see blocker).
	block []byte
	// known is the number of rows, up to line, of a block loaded before.
	known int
}

// outcome is what writing a row did.
type outcome int8

const (
	duplicateRow outcome = iota
	loadedRow
	queuedRow // to be written with others: the batch's checkpoint counts it
)

// outcomeOf maps a store Add method's result to an outcome.
func outcomeOf(loaded bool, err error) (outcome, error) {
	if loaded {
		return loadedRow, err
	}
	return duplicateRow, err
}

// readAhead reads and parses the rows after line skip in a goroutine and
// sends them in chunks, so that reading, decoding and checking overlap the
// writes. With known (purchases), the rows go in blocks and a block known
// to be loaded is passed over (see blocker). The channel is closed when
// the file is read or ctx is done; then wait returns the reader's error.
func readAhead(ctx context.Context, r io.Reader, f feed, skip int,
	parse func(*csvRow) (func() (outcome, error), *RowError),
	known func([]byte) (bool, error)) (rows <-chan []parsedRow, wait func() error) {
	const chunkRows = 256
	ch := make(chan []parsedRow, 4)
	var err error
	go func() {
		defer close(ch)
		src := prefetch(ctx, r) // decoding beside the CSV reader
		defer src.Close()
		chunk := make([]parsedRow, 0, chunkRows)
		flush := func() error {
			select {
			case ch <- chunk:
				chunk = make([]parsedRow, 0, chunkRows)
				runtime.Gosched() // as the writer does, for answers' handlers
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		add := func(p parsedRow) error {
			if p.line <= skip {
				return nil
			}
			chunk = append(chunk, p)
			if len(chunk) < chunkRows {
				return nil
			}
			return flush()
		}
		// What was read before a problem with the file as a whole goes
		// on too: the load commits it (see cutOff).
		var fe *FileError
		goOn := func() bool { return err == nil || errors.As(err, &fe) }
		header := func(index map[string]int, line int) error {
			if notes := f.absent(index, line); len(notes) > 0 {
				return add(parsedRow{line: line, header: notes})
			}
			return nil
		}
		if known != nil {
			b := newBlocker(known, parse, add, skip)
			err = readCSV(src, f, header, b.row, b.bad)
			if goOn() {
				if e := b.end(); e != nil {
					err = e
				}
			}
		} else {
			err = readCSV(src, f, header, func(row *csvRow) error {
				if row.line <= skip {
					return nil
				}
				write, bad := parse(row)
				if bad != nil {
					write = nil
				}
				return add(parsedRow{line: row.line, write: write, bad: bad})
			}, func(e *RowError) error {
				return add(parsedRow{line: e.Line, bad: e})
			})
		}
		if goOn() && len(chunk) > 0 {
			if e := flush(); e != nil {
				err = e
			}
		}
	}()
	return ch, func() error { return err }
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
	err := in.loading(ctx, func() error { return in.takeFiles(ctx, feed, dirs, byDir, &res) })
	return res, err
}

// takeFiles takes the files of each folder, in the order of dirs,
// stopping at the first that fails.
func (in *Ingester) takeFiles(ctx context.Context, feed string, dirs []string, byDir map[string][]Entry, res *Result) error {
	for _, dir := range dirs {
		spec := SourceSpec{Name: "files", Source: &Local{Dir: dir}}
		if feed != "" {
			spec.Patterns = map[string][]string{feed: {"*"}}
		}
		work, err := in.plan(ctx, spec, byDir[dir], in.log())
		if err != nil {
			return err
		}
		for _, w := range work {
			srcErr, err := in.take(ctx, spec, w.entry, w.feed, res)
			if err != nil {
				return err
			}
			if srcErr != nil {
				return srcErr
			}
		}
	}
	return nil
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
