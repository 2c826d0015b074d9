// Package etl pulls 1C's nightly drop from its sources into the spool,
// decodes and validates each file and loads it into the store without
// duplicates: a file once by its sha256, a row once by its natural key.
package etl

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/otklik/otklik/store"
)

// After says what happens to a file on the source once it is loaded.
type After int

// What to do with a loaded file. The default leaves it in place: 1C
// accounts are often read-only, and the ledger alone prevents a second
// load.
const (
	Keep After = iota
	Move
	Delete
)

// Readiness says when a listed file is complete enough to take. Every rule
// that is set must hold. Files with temporary names (.part, .tmp, a
// leading dot) are never taken.
type Readiness struct {
	// MinAge: the file's mtime is at least this old.
	MinAge time.Duration
	// StableFor: the file has shown the same size and mtime in listings
	// for at least this long (the first listing only starts the clock).
	StableFor time.Duration
	// MarkerSuffixes: the file is taken only when NAME+suffix is listed
	// too (".done", ".ok"), which 1C writes after the data.
	MarkerSuffixes []string
	// DropMarker: nothing is taken until a file of this name is listed,
	// one marker for the whole drop.
	DropMarker string
}

// SourceSpec is one configured source and how to read it.
type SourceSpec struct {
	Name   string
	Source Source
	// Patterns are the file name globs of each feed; nil means
	// DefaultPatterns. Matching ignores case.
	Patterns map[string][]string
	Ready    Readiness
	// After a file is loaded: Keep, Move into ProcessedDir, or Delete.
	After        After
	ProcessedDir string
	// Encoding forces the encoding of CSV files; "" decides by the
	// bytes. Encodings does so per feed, before Encoding. CommerceML
	// files are always decided by their bytes.
	Encoding  string
	Encodings map[string]string
	// Columns are the header names this source's 1C writes where they
	// differ from the defaults: feed -> column key (see Columns) -> header.
	Columns map[string]map[string]string
}

// encoding is the encoding the config forces on a feed's files, or "".
func (s SourceSpec) encoding(feed string) string {
	if feed == FeedOrders {
		return "" // the bytes decide, whatever the declaration (readCommerceML)
	}
	if e := s.Encodings[feed]; e != "" {
		return e
	}
	return s.Encoding
}

// Ingester loads drops into the store.
type Ingester struct {
	DB        *store.DB
	Spool     string         // root of the spool folder
	Zone      *time.Location // for stores without a time zone
	Log       *slog.Logger
	BatchSize int // rows per write transaction; 0 means 20000
	Now       func() time.Time
	// Retries is how many times a broken download is resumed; 0 means 3.
	Retries int
	// RetryWait is the first wait between attempts, doubled each time,
	// with jitter; 0 means 2s.
	RetryWait time.Duration
	// KeepDays is how long spooled copies are kept; 0 keeps them.
	KeepDays int
	// MaxFileBytes: a larger file is refused without being downloaded
	// (recorded as failed, with a rejects file saying why); 0 means 4 GiB.
	MaxFileBytes int64
	// Progress, if set, is told after each file of a source how many of
	// its files are done and the rows loaded so far.
	Progress func(source string, done, total int, rows int64)
}

// Result counts what a run did.
type Result struct {
	Ingested, Failed, SkippedDuplicate int
	Loaded, Duplicate, Rejected        int64
	Dropped                            int64 // values left out of rows that loaded
	SourceErrors                       int
	// Sources holds each source's outcome: nil if it was listed and
	// every file it offered was downloaded.
	Sources map[string]error
}

func (r *Result) add(c store.FileCounts) {
	r.Loaded += c.Loaded
	r.Duplicate += c.Duplicate
	r.Rejected += c.Rejected
	r.Dropped += c.Dropped
}

// errChanged means a file changed while it was read: it is left for a
// later run, which is not a failure of the source.
var errChanged = errors.New("changed while read")

// Run pulls and loads every new, complete file of every source. A source
// that cannot be listed or read is logged and counted and the others go
// on; a file that cannot be parsed is marked failed and the run goes on;
// a store or spool failure stops the run with an error.
func (in *Ingester) Run(ctx context.Context, specs []SourceSpec) (Result, error) {
	res := Result{Sources: map[string]error{}}
	err := in.loading(ctx, func() error { return in.takeAll(ctx, specs, &res) })
	return res, err
}

// takeAll takes the new files of every source, counting into res.
func (in *Ingester) takeAll(ctx context.Context, specs []SourceSpec, res *Result) error {
	if err := in.sweep(ctx); err != nil {
		in.log().Warn("sweep spool", "err", err)
	}
	for _, spec := range specs {
		log := in.log().With("source", spec.Name)
		entries, err := spec.Source.List(ctx)
		if err != nil {
			res.SourceErrors++
			res.Sources[spec.Name] = err
			log.Error("list source", "err", err)
			continue
		}
		work, err := in.plan(ctx, spec, entries, log)
		if err != nil {
			return err
		}
		var srcErr error
		for i, w := range work {
			if err := ctx.Err(); err != nil {
				return err
			}
			if in.Progress != nil {
				in.Progress(spec.Name, i, len(work), res.Loaded)
			}
			ferr, err := in.take(ctx, spec, w.entry, w.feed, res)
			if err != nil {
				return err
			}
			if ferr != nil {
				srcErr = ferr
			}
		}
		if in.Progress != nil && len(work) > 0 {
			in.Progress(spec.Name, len(work), len(work), res.Loaded)
		}
		res.Sources[spec.Name] = srcErr
		if srcErr != nil {
			res.SourceErrors++
		}
	}
	return nil
}

// loading runs load with the store set up for loading: the roll-ups
// brought up to date first (so that the load's batches can add to them),
// the writer's load cache while load runs, and the days the load marked
// refreshed at the end, after that cache is given back: the refresh reads
// on the readers, and keeping the writer's load cache through it set the peak
// memory of a large ingest. A refresh that fails before the load does not
// keep the files from loading: its days stay marked, and the refresh after
// the load tries them again and reports the failure.
func (in *Ingester) loading(ctx context.Context, load func() error) error {
	if err := in.rollUp(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		in.log().Error("roll-ups not refreshed before loading", "err", err)
	}
	restore, err := in.DB.LoadCache(ctx)
	if err != nil {
		return err
	}
	err = load()
	restore()
	if err != nil {
		return err
	}
	return in.rollUp(ctx)
}

// rollUp brings the daily roll-ups up to date with what was loaded, so
// that reports never scan the lines. Before a load it builds them if they
// were never built, so that the load's batches can add to them instead
// of marking days for a later refresh.
func (in *Ingester) rollUp(ctx context.Context) error {
	zone := in.Zone
	if zone == nil {
		zone = time.UTC
	}
	began := time.Now()
	days, err := in.DB.RefreshRollups(ctx, zone)
	if err != nil {
		return err
	}
	if days > 0 {
		in.log().Info("roll-ups refreshed", "days", days, "took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

type work struct {
	entry Entry
	feed  string
	order int
}

// plan picks the files of a listing that belong to a feed and are ready,
// in load order: by feed, then by name.
func (in *Ingester) plan(ctx context.Context, spec SourceSpec, entries []Entry, log *slog.Logger) ([]work, error) {
	patterns := spec.Patterns
	if patterns == nil {
		patterns = DefaultPatterns
	}
	r := spec.Ready
	now := in.now()
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.Name] = true
	}
	if r.DropMarker != "" && !listed[r.DropMarker] {
		log.Debug("drop marker not there yet", "marker", r.DropMarker)
		return nil, nil
	}
	var since map[string]time.Time
	if r.StableFor > 0 {
		files := make([]store.Listed, 0, len(entries))
		for _, e := range entries {
			files = append(files, store.Listed{Name: e.Name, Size: e.Size, MTime: e.ModTime.UnixNano()})
		}
		var err error
		if since, err = in.DB.Stability(ctx, spec.Name, files); err != nil {
			return nil, err
		}
	}
	var out []work
	for _, e := range entries {
		if err := checkName(e.Name); err != nil {
			log.Warn("refused file name", "name", fmt.Sprintf("%q", e.Name))
			continue
		}
		if tempName(e.Name) {
			continue
		}
		feed, order := matchFeed(e.Name, patterns)
		if feed == "" {
			continue
		}
		if age := now.Sub(e.ModTime); age < r.MinAge {
			log.Debug("file not ready: too new", "file", e.Name, "age", age.Round(time.Second))
			continue
		}
		if r.StableFor > 0 && now.Sub(since[e.Name]) < r.StableFor {
			log.Debug("file not ready: not stable yet", "file", e.Name)
			continue
		}
		if len(r.MarkerSuffixes) > 0 && !hasMarker(e.Name, r.MarkerSuffixes, listed) {
			log.Debug("file not ready: no marker", "file", e.Name)
			continue
		}
		out = append(out, work{entry: e, feed: feed, order: order})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].order != out[j].order {
			return out[i].order < out[j].order
		}
		return out[i].entry.Name < out[j].entry.Name
	})
	return out, nil
}

func hasMarker(name string, suffixes []string, listed map[string]bool) bool {
	for _, s := range suffixes {
		if listed[name+s] {
			return true
		}
	}
	return false
}

// matchFeed returns the feed whose patterns match name, ignoring case.
func matchFeed(name string, patterns map[string][]string) (string, int) {
	lower := strings.ToLower(name)
	for i, feed := range Feeds {
		for _, p := range patterns[feed] {
			if ok, _ := filepath.Match(strings.ToLower(p), lower); ok {
				return feed, i
			}
		}
	}
	return "", 0
}

// FeedOf returns the feed a file name belongs to under the default
// patterns, or "".
func FeedOf(name string) string { return MatchFeed(name, DefaultPatterns) }

// MatchFeed returns the feed whose patterns match name, or "".
func MatchFeed(name string, patterns map[string][]string) string {
	f, _ := matchFeed(name, patterns)
	return f
}

// take downloads one file into the spool and loads it, unless the ledger
// already holds this version. srcErr is a failure of the source (the
// download failed after its retries); err stops the run.
func (in *Ingester) take(ctx context.Context, spec SourceSpec, e Entry, feed string, res *Result) (srcErr, err error) {
	v := store.FileVersion{Source: spec.Name, Name: e.Name, Size: e.Size, MTime: e.ModTime.Unix()}
	status, err := in.DB.FileStatus(ctx, v)
	if err != nil {
		return nil, err
	}
	if status != "" && status != store.FileLoading {
		return nil, nil // seen before: loaded, failed or a duplicate
	}
	log := in.log().With("source", spec.Name, "file", e.Name, "feed", feed)
	if limit := in.maxFileBytes(); e.Size > limit {
		reason := fmt.Sprintf("в файле %s, больше предела %s (max_file_mb)", sizeText(e.Size), sizeText(limit))
		return nil, in.refuse(ctx, spec.Name, v, feed, reason, res, log)
	}
	path, sum, enc, err := in.download(ctx, spec, e, log)
	var spoolErr *spoolError
	switch {
	case errors.As(err, &spoolErr):
		return nil, spoolErr // the spool itself is broken: stop
	case errors.Is(err, errChanged):
		log.Info("file changed while read; left for the next run", "err", err)
		return nil, nil
	case err != nil:
		log.Error("download", "err", err)
		return err, nil
	}
	if forced := spec.encoding(feed); forced != "" {
		enc = forced
	}
	id, dup, resume, err := in.DB.BeginFile(ctx, v, sum, feed, enc)
	if err != nil {
		return nil, err
	}
	if dup {
		res.SkippedDuplicate++
		log.Info("skipped: same content already ingested", "sha256", sum[:12])
		in.archive(path, log)
		in.after(ctx, spec, e, log)
		return nil, nil
	}
	if resume.Checkpoint > 0 {
		log.Info("resuming a load cut off before", "after", resume.Checkpoint)
	}
	archive := in.compressing(ctx, path, log)
	counts, err := in.load(ctx, id, feed, path, enc, spec.Columns[feed], resume)
	var fe *FileError
	if errors.As(err, &fe) {
		res.Failed++
		log.Error("file failed", "reason", fe.Reason)
		in.writeRejects(ctx, id, path, e.Name, failureNote(fe, counts), counts, log)
		archive(true)
		return nil, in.DB.FinishFile(ctx, id, counts, fe.Reason)
	}
	if err != nil {
		archive(false) // the copy stays for the load to go on next run
		return nil, fmt.Errorf("load %s/%s: %w", spec.Name, e.Name, err)
	}
	if err := in.DB.FinishFile(ctx, id, counts, ""); err != nil {
		return nil, err
	}
	res.Ingested++
	res.add(counts)
	log.Info("file ingested", "encoding", enc, "loaded", counts.Loaded,
		"duplicate", counts.Duplicate, "rejected", counts.Rejected, "values_dropped", counts.Dropped)
	if counts.Rejected > 0 || counts.Dropped > 0 {
		in.writeRejects(ctx, id, path, e.Name, "", counts, log)
	}
	archive(true)
	in.after(ctx, spec, e, log)
	return nil, nil
}

// after moves or deletes a loaded file on the source, as configured. A
// failure is logged: the ledger already keeps the file from loading twice.
func (in *Ingester) after(ctx context.Context, spec SourceSpec, e Entry, log *slog.Logger) {
	if spec.After == Keep {
		return
	}
	m, ok := spec.Source.(Mover)
	if !ok {
		log.Warn("source cannot move or delete files; left in place")
		return
	}
	var err error
	if spec.After == Move {
		err = m.Move(ctx, e.ref(), spec.ProcessedDir)
	} else {
		err = m.Remove(ctx, e.ref())
	}
	if err != nil {
		log.Warn("could not move or delete the loaded file; it stays and will not load again", "err", err)
	}
}

// spoolError is a failure of the local spool, which stops the run.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "spool: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// download copies a file into the spool through a temporary name, with
// fsync and rename, computing its sha256 and finding its encoding on the
// way. A broken transfer is resumed where it stopped, up to Retries
// times with a growing wait; the size is checked against the listing.
func (in *Ingester) download(ctx context.Context, spec SourceSpec, e Entry, log *slog.Logger) (path, sum, enc string, err error) {
	tmpDir := filepath.Join(in.Spool, "tmp")
	if err := os.MkdirAll(tmpDir, 0o750); err != nil {
		return "", "", "", &spoolError{err}
	}
	tmp, err := os.CreateTemp(tmpDir, "download-*")
	if err != nil {
		return "", "", "", &spoolError{err}
	}
	sw := newSpoolWriter(tmp)
	defer func() {
		if err != nil {
			sw.abort()
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var n int64
	retries, wait := in.Retries, in.RetryWait
	if retries <= 0 {
		retries = 3
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for attempt := 0; ; attempt++ {
		err = copyFrom(ctx, spec.Source, e, sw, &n)
		if err == nil {
			break
		}
		var se *spoolError
		if errors.As(err, &se) || errors.Is(err, errChanged) || errors.Is(err, ErrUnsafeName) ||
			errors.Is(err, ErrHostKey) || attempt >= retries || ctx.Err() != nil {
			return "", "", "", err
		}
		d := time.Duration(float64(wait<<attempt) * (0.75 + 0.5*rand.Float64()))
		log.Warn("download interrupted; resuming", "at", n, "attempt", attempt+1, "wait", d.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", "", "", ctx.Err()
		}
	}
	if n != e.Size {
		return "", "", "", fmt.Errorf("download %q: got %d bytes, listing said %d: %w", e.Name, n, e.Size, errChanged)
	}
	if sum, enc, err = sw.finish(); err != nil {
		return "", "", "", &spoolError{err}
	}
	if err = tmp.Sync(); err != nil {
		return "", "", "", &spoolError{err}
	}
	if err = tmp.Close(); err != nil {
		return "", "", "", &spoolError{err}
	}
	dir, err := in.archiveDir(spec.Name)
	if err != nil {
		return "", "", "", err
	}
	path = filepath.Join(dir, sum[:12]+"_"+e.Name)
	if err = os.Rename(tmp.Name(), path); err != nil {
		return "", "", "", &spoolError{err}
	}
	if err = syncDir(dir); err != nil {
		return "", "", "", &spoolError{err}
	}
	return path, sum, enc, nil
}

// archiveDir makes and returns the folder of the day's copies of a
// source's files.
func (in *Ingester) archiveDir(source string) (string, error) {
	dir := filepath.Join(in.Spool, "archive", source, in.now().UTC().Format("2006-01-02"))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", &spoolError{err}
	}
	return dir, nil
}

// copyFrom copies a file into w from offset *n, adding what was written
// to *n even when the copy breaks, so that a retry resumes there.
func copyFrom(ctx context.Context, src Source, e Entry, w io.Writer, n *int64) error {
	rc, err := src.Open(ctx, e.ref(), *n)
	if err != nil {
		return err
	}
	cw := &countingWriter{w: w, max: e.Size - *n}
	_, err = io.CopyBuffer(cw, rc, make([]byte, 256<<10))
	*n += cw.n
	if cerr := rc.Close(); err == nil {
		err = cerr // an FTP transfer reports a broken end on close
	}
	if cw.werr != nil {
		return &spoolError{cw.werr}
	}
	if err != nil {
		return fmt.Errorf("download %q: %w", e.Name, err)
	}
	if *n > e.Size {
		return fmt.Errorf("download %q: more than the %d bytes listed: %w", e.Name, e.Size, errChanged)
	}
	return nil
}

// countingWriter counts what reached w and keeps w's own error apart from
// the reader's. io.Copy prefers a source's WriterTo (pkg/sftp reads
// concurrently there) to its ReadFrom, which lets the spool writer read
// an FTP stream straight into its buffers.
type countingWriter struct {
	w    io.Writer
	n    int64
	max  int64 // what the listing left to read: a copy stops soon after
	werr error
}

// errLonger: a file went on past the size listed (it grew, or it is not
// a file at all): the copy stops instead of filling the spool's disk.
var errLonger = fmt.Errorf("longer than listed: %w", errChanged)

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.w.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	er := &errReader{r: io.LimitReader(r, c.max-c.n+1)}
	n, err := rf.ReadFrom(er)
	c.n += n
	if err != nil && er.err == nil {
		c.werr = err // not the reader's: the writer's
	}
	return n, err
}

// errReader remembers the last error of r other than EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.werr = err
		return n, err
	}
	if c.n > c.max {
		return n, errLonger
	}
	return n, nil
}

func sizeText(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d байт", n)
	}
	return fmt.Sprintf("%d МиБ", n>>20)
}

func (in *Ingester) maxFileBytes() int64 {
	if in.MaxFileBytes > 0 {
		return in.MaxFileBytes
	}
	return 4 << 30
}

// refuse records a file as failed without downloading it, and writes its
// rejects file, saying why, where its copy would have been.
func (in *Ingester) refuse(ctx context.Context, source string, v store.FileVersion, feed, reason string, res *Result, log *slog.Logger) error {
	id, err := in.DB.RefuseFile(ctx, v, feed, reason)
	if err != nil {
		return err
	}
	res.Failed++
	log.Error("file refused", "reason", reason)
	dir, err := in.archiveDir(source)
	if err != nil {
		return err
	}
	in.writeRejects(ctx, id, filepath.Join(dir, v.Name), v.Name, "файл не загружен: "+reason, store.FileCounts{}, log)
	return nil
}

// failureNote is what the rejects file of a failed file says: whether any of
// it was loaded, and why it failed.
func failureNote(fe *FileError, c store.FileCounts) string {
	if n := c.Loaded + c.Duplicate; n > 0 {
		return fmt.Sprintf("файл загружен не до конца (до этого места строк: %d): %s", n, fe.Reason)
	}
	return "файл не загружен: " + fe.Reason
}

// writeRejects writes NAME.rejects.csv beside the spooled copy of a file:
// why the whole file failed, if it did, its rejected rows and the values
// left out of rows that loaded (as many as c counts, maxListedRejects of
// them listed), for the 1C administrator to open in Excel (UTF-8 with a
// BOM, ";", CRLF). A failure is logged: the rejects stay in the database
// either way.
func (in *Ingester) writeRejects(ctx context.Context, fileID int64, path, name, failure string, c store.FileCounts, log *slog.Logger) {
	pr, pw := io.Pipe()
	go func() {
		w := csv.NewWriter(pw)
		w.Comma, w.UseCRLF = ';', true
		io.WriteString(pw, "\ufeff")
		w.Write([]string{"Файл", "Строка", "Поле", "Причина", "Строка загружена"})
		err := func() error {
			if failure != "" {
				if err := w.Write([]string{name, "", "", failure, ""}); err != nil {
					return err
				}
			}
			var rejected, dropped int64 // listed
			err := in.DB.EachReject(ctx, fileID, func(r store.Reject) error {
				loaded := "нет"
				if r.Kept {
					loaded = "да, без этого значения"
					dropped++
				} else {
					rejected++
				}
				return w.Write([]string{r.File, strconv.Itoa(r.Line), r.Field, r.Reason, loaded})
			})
			if n := c.Rejected - rejected; err == nil && n > 0 {
				err = w.Write([]string{name, "", "", fmt.Sprintf("отклонено ещё строк: %d (перечислены первые %d)", n, maxListedRejects), "нет"})
			}
			if n := c.Dropped - dropped; err == nil && n > 0 {
				why := fmt.Sprintf("ещё значений, без которых строки загружены: %d (перечислены первые %d)", n, maxListedRejects)
				err = w.Write([]string{name, "", "", why, "да, без этих значений"})
			}
			return err
		}()
		w.Flush()
		if err == nil {
			err = w.Error()
		}
		pw.CloseWithError(err)
	}()
	if err := writeAtomic(path+".rejects.csv", pr); err != nil {
		pr.CloseWithError(err)
		log.Warn("write the rejects beside the spooled copy", "err", err)
	}
}

// archive compresses a spooled copy once it is loaded.
func (in *Ingester) archive(path string, log *slog.Logger) {
	in.compressing(context.Background(), path, log)(true)
}

// compressing starts compressing a spooled copy beside it while the copy
// loads (on another core). archive(true) waits for it and removes the
// copy; archive(false) stops it and keeps the copy.
func (in *Ingester) compressing(ctx context.Context, path string, log *slog.Logger) (archive func(done bool)) {
	ctx, stop := context.WithCancel(ctx)
	result := make(chan error, 1)
	go func() { result <- gzipFile(ctx, path) }()
	return func(done bool) {
		if !done {
			stop()
		}
		err := <-result
		stop()
		switch {
		case !done:
			os.Remove(path + ".gz")
		case err != nil:
			log.Warn("compress spooled copy", "err", err)
		default:
			if err := os.Remove(path); err != nil {
				log.Warn("remove spooled copy", "err", err)
			}
		}
	}
}

// gzipFile writes path.gz beside path. BestSpeed: an archive kept a few
// days is not worth a core's time on a large export. klauspost/compress
// does it in half the CPU of compress/gzip, which a load running beside
// it on the other core gets.
func gzipFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	src := ctxReader{ctx, f}
	pr, pw := io.Pipe()
	go func() {
		// The compressor writes a few hundred bytes at a time: buffered,
		// the file gets them in a write of 256 KiB instead of a thousand.
		bw := bufio.NewWriterSize(pw, 256<<10)
		zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
		if err == nil {
			_, err = io.Copy(zw, src)
		}
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		pw.CloseWithError(err)
	}()
	if err := writeAtomic(path+".gz", pr); err != nil {
		pr.CloseWithError(err)
		return err
	}
	return nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// sweep removes spooled copies older than KeepDays, and the rejects of
// files loaded before then from the database.
func (in *Ingester) sweep(ctx context.Context) error {
	if in.KeepDays <= 0 {
		return nil
	}
	y, m, d := in.now().UTC().AddDate(0, 0, -in.KeepDays).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if n, err := in.DB.ForgetRejects(ctx, day); err != nil {
		return err
	} else if n > 0 {
		in.log().Info("rejects of old files deleted", "rejects", n)
	}
	cutoff := day.Format("2006-01-02")
	sources, err := os.ReadDir(filepath.Join(in.Spool, "archive"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range sources {
		days, err := os.ReadDir(filepath.Join(in.Spool, "archive", s.Name()))
		if err != nil {
			return err
		}
		for _, d := range days {
			if d.IsDir() && d.Name() < cutoff {
				if err := os.RemoveAll(filepath.Join(in.Spool, "archive", s.Name(), d.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
