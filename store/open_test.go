package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestOpen_TwoAtOnce: two processes' first opens of a new database (the
// daemon starting, `otklik status` beside it) both succeed. Switching a
// new file to WAL takes a lock that SQLite's busy timeout does not wait
// for.
func TestOpen_TwoAtOnce(t *testing.T) {
	ctx := context.Background()
	for i := range 20 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("otklik%d.db", i))
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for j := range errs {
			wg.Go(func() {
				db, err := Open(ctx, path)
				if err == nil {
					err = db.Close()
				}
				errs[j] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
}
