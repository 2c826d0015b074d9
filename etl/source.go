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

// ErrUnsafeName is returned for a file name from a source that could
// escape the spool: a path, "..", or control characters.
var ErrUnsafeName = errors.New("unsafe file name")

// Entry is a file listed on a source.
type Entry struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Source is a place 1C drops files into. List returns the regular files
// of the drop folder (not recursive); Open reads one of them by the name
// List gave.
type Source interface {
	List(ctx context.Context) ([]Entry, error)
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	Close() error
}

// Local is a Source over a local folder, such as a mounted share.
type Local struct {
	Dir string
}

var _ Source = (*Local)(nil)

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

// Open opens a listed file.
func (l *Local) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(l.Dir, name))
	if err != nil {
		return nil, fmt.Errorf("local: open %q: %w", name, err)
	}
	return f, nil
}

// Close does nothing: a folder holds no connection.
func (l *Local) Close() error { return nil }

// checkName refuses names that could escape a folder or confuse a log.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) ||
		strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	}
	return nil
}
