package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// pageCacheStatus reads SQLite's counters of the arena: the slots in use
// and the bytes of cached pages the C allocator holds beside it.
func pageCacheStatus(t *testing.T) (slots, overflow int64) {
	t.Helper()
	tls := libc.NewTLS()
	defer tls.Close()
	buf := libc.Xcalloc(tls, 2, 8)
	if buf == 0 {
		t.Fatal("out of memory")
	}
	defer libc.Xfree(tls, buf)
	read := func(op int32) int64 {
		if rc := sqlite3.Xsqlite3_status64(tls, op, buf, buf+8, 0); rc != sqlite3.SQLITE_OK {
			t.Fatalf("sqlite3_status64(%d): %d", op, rc)
		}
		return libc.AtomicLoadPInt64(buf)
	}
	return read(sqlite3.SQLITE_STATUS_PAGECACHE_USED), read(sqlite3.SQLITE_STATUS_PAGECACHE_OVERFLOW)
}

// TestPageCache_Arena: the pages a connection caches sit in the arena,
// none beside it, and they go back to it when the cache shrinks; the
// arena cannot be set up once SQLite is in use. It runs in a process of
// its own, as SQLite takes the arena only before its first connection.
func TestPageCache_Arena(t *testing.T) {
	if os.Getenv("OTKLIK_TEST_ARENA") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPageCache_Arena$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "OTKLIK_TEST_ARENA=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPageCache_Arena") {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	ReservePageCache()
	ctx := context.Background()
	db := openTestDB(t)
	if pageCache.err != nil {
		t.Fatalf("arena not set up: %v", pageCache.err)
	}
	before, _ := pageCacheStatus(t)

	restore, err := db.LoadCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Some 12 MiB of pages, more than the default cache holds.
	for _, q := range []string{
		`CREATE TABLE filler(k INTEGER PRIMARY KEY, v BLOB)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000)
		 INSERT INTO filler SELECT i, randomblob(4000) FROM n`,
		`SELECT count(*) FROM filler WHERE length(v) = 4000`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	loaded, overflow := pageCacheStatus(t)
	if loaded-before < 2500 {
		t.Errorf("%d pages in the arena during a load, want the load's (over 2,500)", loaded-before)
	}
	if overflow != 0 {
		t.Errorf("%d bytes of pages beside the arena, want none", overflow)
	}

	restore()
	if _, err := db.write.ExecContext(ctx, `SELECT count(*) FROM filler`); err != nil {
		t.Fatal(err)
	}
	if after, _ := pageCacheStatus(t); after > loaded/2 {
		t.Errorf("%d pages in the arena after the load, %d during it: the cache did not shrink", after, loaded)
	}

	if err := configurePageCache(1 << 20); !errors.Is(err, errInUse) {
		t.Errorf("arena set up with SQLite in use: %v", err)
	}
}
