package etl_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestMalformed_Golden ingests each file of testdata/malformed (wrong
// encodings, truncated, binary, huge fields, no header, wrong delimiter,
// impossible dates, entity tricks, ...) and compares what happened with
// its golden file: the file's reason if it failed, else its counts and
// each rejected row's line, field and reason. Nothing may panic or hang,
// and what loads, loads.
func TestMalformed_Golden(t *testing.T) {
	paths, _ := filepath.Glob("../testdata/malformed/*")
	var inputs []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".golden") {
			inputs = append(inputs, p)
		}
	}
	if len(inputs) < 30 {
		t.Fatalf("%d malformed files, want at least 30", len(inputs))
	}
	for _, p := range inputs {
		t.Run(filepath.Base(p), func(t *testing.T) {
			in, db := newIngester(t)
			res, err := in.IngestFiles(context.Background(), "", []string{p})
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			if res.Failed == 1 {
				errs, _ := db.FileErrors(context.Background())
				for _, e := range errs {
					fmt.Fprintf(&got, "failed: %s\n", e[strings.Index(e, ": ")+2:])
				}
			} else {
				fmt.Fprintf(&got, "ingested: %d loaded, %d duplicate, %d rejected\n", res.Loaded, res.Duplicate, res.Rejected)
				rejects, _ := db.Rejects(context.Background(), 100)
				sort.SliceStable(rejects, func(i, j int) bool { return rejects[i].Line < rejects[j].Line })
				for _, r := range rejects {
					kind := "reject"
					if r.Kept {
						kind = "loaded without"
					}
					fmt.Fprintf(&got, "%s line %d %s: %s\n", kind, r.Line, r.Field, r.Reason)
				}
			}
			golden := p + ".golden"
			if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" { // defined in feeds_test.go
				os.WriteFile(golden, []byte(got.String()), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./etl -run Malformed -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
			}
		})
	}
}
