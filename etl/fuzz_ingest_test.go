package etl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otklik/otklik/etl"
)

// fuzzNames are the names FuzzIngest gives its input, one a feed, with
// a number that makes each input a file the ledger has not seen (it
// passes over a failed file until it changes).
var fuzzNames = []string{"stores_%d.csv", "customers_%d.csv", "purchases_%d.csv", "promo_%d.csv", "orders_%d.xml"}

// FuzzIngest runs arbitrary bytes as a drop file of each feed through the
// whole ingest (spool, decoding, parsing, mapping to rows, loading, the
// rejects file), into one database for all inputs: bad input of any kind
// fails its file or rejects rows, and never the run.
func FuzzIngest(f *testing.F) {
	for _, glob := range []string{"../testdata/malformed/*", "../testdata/csv/*/*.csv", "../../shared/realworld/*.xml"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if strings.HasSuffix(p, ".golden") {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil || len(b) > 64<<10 {
				continue
			}
			feed := etl.FeedOf(filepath.Base(p))
			for i, name := range fuzzNames {
				if etl.FeedOf(fmt.Sprintf(name, 0)) == feed {
					f.Add(uint8(i), b)
				}
			}
		}
	}
	in, _ := newIngester(f)
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, feed uint8, data []byte) {
		n++
		path := filepath.Join(dir, fmt.Sprintf(fuzzNames[int(feed)%len(fuzzNames)], n))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := in.IngestFiles(context.Background(), "", []string{path})
		if err != nil {
			t.Fatalf("the run failed: %v", err)
		}
		if files := res.Ingested + res.Failed + res.SkippedDuplicate; files != 1 {
			t.Fatalf("%d files accounted for, want 1: %+v", files, res)
		}
		os.Remove(path)
	})
}
