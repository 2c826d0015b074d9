package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// loadCacheKiB is the writer's page cache during a load (LoadCache), and
// the size of the arena ReservePageCache sets up.
const loadCacheKiB = 16 << 10

// cachedPageSize is the database page size the arena is for: a slot holds
// a page this size and SQLite's header for it. otklik's databases use
// SQLite's default page size; a database with larger pages would take its
// pages from the C allocator, as without the arena.
const cachedPageSize = 4096

var pageCache struct {
	once sync.Once
	err  error
}

// errInUse is what sqlite3_config says once SQLite has opened a database.
var errInUse = errors.New("SQLite was already in use in this process")

// ReservePageCache gives SQLite's page cache one arena of 16 MiB for the
// process: a process that loads files calls it before it opens the
// database (sqlite3_config refuses it after SQLite's first connection).
//
// Without it every cached page is an allocation of its own, a 4 KiB page
// and a header of some 200 bytes, which modernc's C allocator serves from
// an 8 KiB slot: a cache costs twice its size, and pages freed and taken
// again as caches shrink and readers' caches reset go through the
// allocator's pools. The arena's slots fit a page and its header, SQLite
// takes and returns them last in, first out, and the caches of all
// connections share them (this SQLite is built with
// SQLITE_ENABLE_MEMORY_MANAGEMENT, so its caches are one group recycling
// its least recently used pages). A page that finds no free slot comes
// from the allocator as before.
//
// SQLite writes a free-list link into every slot when it starts, so the
// arena is resident from the first connection on. A load's writer fills
// it (LoadCache); a process that only sends or reports is smaller without.
//
// The arena is set up once a process and never freed. A failure leaves
// SQLite as it was, which works the same with more memory; it is logged
// unless SQLite was already in use.
func ReservePageCache() {
	pageCache.once.Do(func() {
		pageCache.err = configurePageCache(loadCacheKiB << 10)
		if pageCache.err != nil && !errors.Is(pageCache.err, errInUse) {
			slog.Warn("SQLite's page cache keeps its pages in the C allocator", "err", pageCache.err)
		}
	})
}

func configurePageCache(size int) error {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.Xmalloc(tls, 3*8) // up to three variadic arguments
	hdr := libc.Xcalloc(tls, 1, 8)
	if va == 0 || hdr == 0 {
		libc.Xfree(tls, va)
		libc.Xfree(tls, hdr)
		return errors.New("page cache: out of memory")
	}
	defer libc.Xfree(tls, va)
	defer libc.Xfree(tls, hdr)

	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PCACHE_HDRSZ, libc.VaList(va, hdr)); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("page cache: header size: %w", configError(rc))
	}
	slot := (cachedPageSize + int(libc.AtomicLoadPInt32(hdr)) + 7) &^ 7
	// The allocator's region holds a header of its own: stay under size
	// so that the region is no larger than size.
	n := (size - cachedPageSize) / slot
	arena := libc.Xmalloc(tls, types.Size_t(n*slot))
	if arena == 0 {
		return fmt.Errorf("page cache: out of memory for %d slots", n)
	}
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PAGECACHE, libc.VaList(va, arena, int32(slot), int32(n))); rc != sqlite3.SQLITE_OK {
		libc.Xfree(tls, arena)
		return fmt.Errorf("page cache: %w", configError(rc))
	}
	return nil
}

// configError names the result codes sqlite3_config returns.
func configError(rc int32) error {
	if rc == sqlite3.SQLITE_MISUSE {
		return errInUse
	}
	return fmt.Errorf("SQLite result code %d", rc)
}
