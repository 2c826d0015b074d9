// Package etl pulls 1C's nightly drop from its sources into the spool,
// decodes and validates each file and loads it into the store without
// duplicates: a file once by its sha256, a row once by its natural key.
package etl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/otklik/otklik/store"
)

// SourceSpec is one configured source and how to read it.
type SourceSpec struct {
	Name   string
	Source Source
	// Patterns are the file name globs of each feed; nil means
	// DefaultPatterns. Matching ignores case.
	Patterns map[string][]string
	// MinAge is how long a file must have been unchanged before it is
	// taken, so that a file still being written is left for a later run.
	MinAge time.Duration
	// Encoding forces a CSV encoding; "" decides by the bytes.
	Encoding string
}

// Ingester loads drops into the store.
type Ingester struct {
	DB        *store.DB
	Spool     string         // root of the spool folder
	Zone      *time.Location // for stores without a time zone
	Log       *slog.Logger
	BatchSize int // rows per write transaction; 0 means 5000
	Now       func() time.Time
}

// Result counts what a run did.
type Result struct {
	Ingested, Failed, SkippedDuplicate int
	Loaded, Duplicate, Rejected        int64
	SourceErrors                       int
}

func (r *Result) add(c store.FileCounts) {
	r.Loaded += c.Loaded
	r.Duplicate += c.Duplicate
	r.Rejected += c.Rejected
}

// Run pulls and loads every new, complete file of every source. A source
// that cannot be listed is logged and counted and the others go on; a
// file that cannot be parsed is marked failed and the run goes on; a
// store or spool failure stops the run with an error.
func (in *Ingester) Run(ctx context.Context, specs []SourceSpec) (Result, error) {
	var res Result
	for _, spec := range specs {
		log := in.log().With("source", spec.Name)
		entries, err := spec.Source.List(ctx)
		if err != nil {
			res.SourceErrors++
			log.Error("list source", "err", err)
			continue
		}
		work := in.plan(spec, entries, log)
		for _, w := range work {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if err := in.take(ctx, spec, w.entry, w.feed, &res); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

type work struct {
	entry Entry
	feed  string
	order int
}

// plan picks the files of a listing that belong to a feed and are ready,
// in load order: by feed, then by name.
func (in *Ingester) plan(spec SourceSpec, entries []Entry, log *slog.Logger) []work {
	patterns := spec.Patterns
	if patterns == nil {
		patterns = DefaultPatterns
	}
	now := in.now()
	var out []work
	for _, e := range entries {
		if err := checkName(e.Name); err != nil {
			log.Warn("refused file name", "name", fmt.Sprintf("%q", e.Name))
			continue
		}
		feed, order := matchFeed(e.Name, patterns)
		if feed == "" {
			continue
		}
		if age := now.Sub(e.ModTime); age < spec.MinAge {
			log.Debug("file not ready", "file", e.Name, "age", age.Round(time.Second))
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
	return out
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
// already holds this version.
func (in *Ingester) take(ctx context.Context, spec SourceSpec, e Entry, feed string, res *Result) error {
	v := store.FileVersion{Source: spec.Name, Name: e.Name, Size: e.Size, MTime: e.ModTime.Unix()}
	status, err := in.DB.FileStatus(ctx, v)
	if err != nil {
		return err
	}
	if status != "" && status != store.FileLoading {
		return nil // seen before: loaded, failed or a duplicate
	}
	log := in.log().With("source", spec.Name, "file", e.Name, "feed", feed)
	path, sum, enc, err := in.download(ctx, spec, e)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && strings.HasPrefix(pe.Path, in.Spool) {
			return err // the spool itself is broken: stop
		}
		res.SourceErrors++
		log.Error("download", "err", err)
		return nil
	}
	if spec.Encoding != "" {
		enc = spec.Encoding
	}
	id, dup, err := in.DB.BeginFile(ctx, v, sum, feed, enc)
	if err != nil {
		return err
	}
	if dup {
		res.SkippedDuplicate++
		log.Info("skipped: same content already ingested", "sha256", sum[:12])
		return nil
	}
	counts, err := in.load(ctx, id, feed, path, enc)
	var fe *FileError
	if errors.As(err, &fe) {
		res.Failed++
		log.Error("file failed", "reason", fe.Reason)
		return in.DB.FinishFile(ctx, id, counts, fe.Reason)
	}
	if err != nil {
		return fmt.Errorf("load %s/%s: %w", spec.Name, e.Name, err)
	}
	if err := in.DB.FinishFile(ctx, id, counts, ""); err != nil {
		return err
	}
	res.Ingested++
	res.add(counts)
	log.Info("file ingested", "encoding", enc, "loaded", counts.Loaded,
		"duplicate", counts.Duplicate, "rejected", counts.Rejected)
	return nil
}

// download copies a file into the spool through a temporary name, with
// fsync and rename, computing its sha256 and finding its encoding on the
// way, and checks the size against the listing.
func (in *Ingester) download(ctx context.Context, spec SourceSpec, e Entry) (path, sum, enc string, err error) {
	tmpDir := filepath.Join(in.Spool, "tmp")
	if err := os.MkdirAll(tmpDir, 0o750); err != nil {
		return "", "", "", err
	}
	rc, err := spec.Source.Open(ctx, e.Name)
	if err != nil {
		return "", "", "", err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(tmpDir, "download-*")
	if err != nil {
		return "", "", "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	var u utf8Checker
	n, err := io.Copy(io.MultiWriter(tmp, h, &u), rc)
	if err != nil {
		return "", "", "", fmt.Errorf("download %q: %w", e.Name, err)
	}
	if n != e.Size {
		return "", "", "", fmt.Errorf("download %q: got %d bytes, listing said %d (changed while read?)", e.Name, n, e.Size)
	}
	if err = tmp.Sync(); err != nil {
		return "", "", "", err
	}
	if err = tmp.Close(); err != nil {
		return "", "", "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(in.Spool, "archive", spec.Name, in.now().UTC().Format("2006-01-02"))
	if err = os.MkdirAll(dir, 0o750); err != nil {
		return "", "", "", err
	}
	path = filepath.Join(dir, sum[:12]+"_"+e.Name)
	if err = os.Rename(tmp.Name(), path); err != nil {
		return "", "", "", err
	}
	if err = syncDir(dir); err != nil {
		return "", "", "", err
	}
	return path, sum, u.Encoding(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load parses a spooled file and writes its rows in batches.
func (in *Ingester) load(ctx context.Context, fileID int64, feedName, path, enc string) (store.FileCounts, error) {
	var c store.FileCounts
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
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
	pending := 0
	flush := func() error {
		pending++
		if pending < size {
			return nil
		}
		if err := batch.Commit(); err != nil {
			return err
		}
		pending = 0
		batch, err = in.DB.BeginBatch(ctx, fileID)
		return err
	}
	reject := func(e *RowError) error {
		c.Rejected++
		if err := batch.AddReject(ctx, e.Line, e.Field, e.Reason); err != nil {
			return err
		}
		return flush()
	}
	added := func(ok bool, err error) error {
		if err != nil {
			return err
		}
		if ok {
			c.Loaded++
		} else {
			c.Duplicate++
		}
		return flush()
	}
	var row func(*csvRow) error
	switch feedName {
	case FeedStores:
		row = func(r *csvRow) error {
			s, bad := parseStore(r)
			if bad != nil {
				return reject(bad)
			}
			return added(batch.AddStore(ctx, s))
		}
	case FeedCustomers:
		row = func(r *csvRow) error {
			cu, bad := parseCustomer(r)
			if bad != nil {
				return reject(bad)
			}
			return added(batch.AddCustomer(ctx, cu))
		}
	case FeedPurchases:
		row = func(r *csvRow) error {
			p, bad := parsePurchase(r, zone)
			if bad != nil {
				return reject(bad)
			}
			return added(batch.AddPurchaseLine(ctx, p))
		}
	default:
		return c, &FileError{Reason: fmt.Sprintf("unknown feed %q", feedName)}
	}
	if err := readCSV(r, feeds[feedName], row, reject); err != nil {
		return c, err
	}
	return c, batch.Commit()
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
		for _, w := range in.plan(spec, byDir[dir], in.log()) {
			if err := in.take(ctx, spec, w.entry, w.feed, &res); err != nil {
				return res, err
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
