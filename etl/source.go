package etl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// Errors of sources.
var (
	// ErrUnsafeName is returned for a file name that could escape a
	// folder: a path, "..", or control characters.
	ErrUnsafeName = errors.New("unsafe file name")
	// ErrHostKey is returned when an SFTP server's host key is not the
	// pinned one; it is never retried.
	ErrHostKey = errors.New("host key not trusted")
)

// Entry is a file listed on a source.
type Entry struct {
	// Name is the file name in UTF-8, for the ledger and logs.
	Name string
	// Ref is the name as the source knows it, passed back to Open, Move
	// and Remove unchanged: on an old FTP server it holds the raw
	// Windows-1251 bytes. Empty means Name.
	Ref     string
	Size    int64
	ModTime time.Time
}

func (e Entry) ref() string {
	if e.Ref != "" {
		return e.Ref
	}
	return e.Name
}

// Source is a folder that 1C drops files into. List returns its regular
// files (not recursive); Open reads one from offset, by the Ref that List
// gave. A Source is used by one goroutine at a time; it connects on first
// use and again after a lost connection.
type Source interface {
	List(ctx context.Context) ([]Entry, error)
	Open(ctx context.Context, ref string, offset int64) (io.ReadCloser, error)
	Close() error
}

// Mover is a Source that can move a loaded file into a subfolder of its
// drop folder, or delete it.
type Mover interface {
	Move(ctx context.Context, ref, dir string) error
	Remove(ctx context.Context, ref string) error
}

// Uploader is a Source that can receive files: Put writes name into dir
// (relative to the source's folder) under a temporary name and renames it
// when complete, so that 1C never reads half a file.
type Uploader interface {
	Put(ctx context.Context, dir, name string, r io.Reader) error
}

// Local is a Source over a local folder, such as a mounted share.
type Local struct {
	Dir string
}

var (
	_ Source   = (*Local)(nil)
	_ Mover    = (*Local)(nil)
	_ Uploader = (*Local)(nil)
)

// List lists the regular files in the folder.
func (l *Local) List(ctx context.Context) ([]Entry, error) {
	des, err := os.ReadDir(l.Dir)
	if err != nil {
		return nil, fmt.Errorf("local: list %s: %w", l.Dir, err)
	}
	var out []Entry
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed while listing
			}
			return nil, fmt.Errorf("local: stat %s: %w", de.Name(), err)
		}
		out = append(out, Entry{Name: de.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// Open opens a listed file at offset.
func (l *Local) Open(ctx context.Context, ref string, offset int64) (io.ReadCloser, error) {
	if err := checkName(ref); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(l.Dir, ref))
	if err != nil {
		return nil, fmt.Errorf("local: open %q: %w", ref, err)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("local: seek %q: %w", ref, err)
		}
	}
	return f, nil
}

// Move moves a file into dir, a subfolder of the drop folder.
func (l *Local) Move(ctx context.Context, ref, dir string) error {
	if err := checkName(ref); err != nil {
		return err
	}
	to := filepath.Join(l.Dir, filepath.FromSlash(dir))
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("local: move %q: %w", ref, err)
	}
	if err := os.Rename(filepath.Join(l.Dir, ref), filepath.Join(to, ref)); err != nil {
		return fmt.Errorf("local: move %q: %w", ref, err)
	}
	return nil
}

// Remove deletes a file.
func (l *Local) Remove(ctx context.Context, ref string) error {
	if err := checkName(ref); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(l.Dir, ref)); err != nil {
		return fmt.Errorf("local: remove %q: %w", ref, err)
	}
	return nil
}

// Put writes a file into dir through a temporary name.
func (l *Local) Put(ctx context.Context, dir, name string, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	to := filepath.Join(l.Dir, filepath.FromSlash(dir))
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("local: put %q: %w", name, err)
	}
	if err := writeAtomic(filepath.Join(to, name), r); err != nil {
		return fmt.Errorf("local: put %q: %w", name, err)
	}
	return nil
}

// Close does nothing: a folder holds no connection.
func (l *Local) Close() error { return nil }

// writeAtomic writes path through a temporary file in the same folder,
// with fsync before and after the rename.
func writeAtomic(path string, r io.Reader) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.part")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, r); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkName refuses names that could escape a folder or confuse a log.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) ||
		strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	}
	return nil
}

// tempName reports names that uploaders use while a file is incomplete;
// such files are never taken.
func tempName(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasSuffix(lower, ".part") ||
		strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".filepart") || strings.HasPrefix(lower, "~")
}
