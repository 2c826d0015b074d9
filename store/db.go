// Package store keeps otklik's state in one SQLite database: the files
// ledger, stores, customers, purchase lines, the invitations outbox,
// responses and suppressions. The stage packages (etl, mailer, survey,
// reports) meet only here.
//
// A DB holds two handles on the same file: a writer with a single
// connection whose transactions start IMMEDIATE, and a reader with several
// query-only connections, so that reports and the survey page never queue
// behind an ingest batch and no transaction can deadlock the pool.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors returned by store methods.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change was refused because the row is not in
	// the state the change expects (an answered invitation, say).
	ErrConflict = errors.New("conflict")
)

const busyTimeoutMS = 5000

// readers is how many query-only connections a DB keeps.
const readers = 4

// DB is an open otklik database.
type DB struct {
	write *sql.DB
	read  *sql.DB
	path  string

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // prepared on the writer, for hot paths

	waiting atomic.Int32 // transactions waiting for the writer

	answers *committer // survey answers, group-committed

	// Now returns the current time; tests and the demo replace it.
	Now func() time.Time
}

// Open opens (creating if needed) the database at path, checks that the
// connection pragmas took effect and applies pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	db := &DB{write: w, path: path, Now: time.Now}
	db.answers = newCommitter(db)
	if err := db.firstConn(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	db.read = r
	return db, nil
}

// dsn builds the connection string in code, never from config: a _pragma
// value is executed as SQL (PITFALLS: modernc StrictPragmas).
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(busyTimeoutMS)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// firstConn opens the writer's first connection and checks its pragmas.
// Switching a new file to WAL needs a lock that SQLite takes without its
// busy handler, so a second process opening the same new database at that
// moment (the daemon's first start, `otklik status` beside it) gets
// SQLITE_BUSY; it waits and tries again, as long as the busy timeout.
func (db *DB) firstConn(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for {
		err := db.checkPragmas(ctx, w)
		var se interface{ Code() int }
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sqliteBusy is SQLITE_BUSY, the primary result code.
const sqliteBusy = 5

// checkPragmas reads back what the DSN set: modernc versions before 1.55
// silently ignored unknown DSN keys, leaving busy_timeout at 0.
func (db *DB) checkPragmas(ctx context.Context, h *sql.DB) error {
	var timeout int
	if err := h.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil {
		return fmt.Errorf("read busy_timeout: %w", err)
	}
	if timeout != busyTimeoutMS {
		return fmt.Errorf("busy_timeout is %d, want %d", timeout, busyTimeoutMS)
	}
	var mode string
	if err := h.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var fk int
	if err := h.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("read foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("foreign_keys is off")
	}
	return nil
}

// migrate applies every embedded migration not yet recorded in
// schema_migrations, each in its own transaction.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	return db.applyMigrations(ctx, names)
}

// foreignKeysOff is the first line of a migration that rebuilds a table:
// it runs with foreign keys off (the rows of the table that others refer
// to are dropped and copied back) and must leave none broken.
const foreignKeysOff = "-- foreign keys off\n"

func (db *DB) applyMigrations(ctx context.Context, names []string) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range names {
		base := path.Base(name)
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", base, err)
		}
		apply := func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, base).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, base, time.Now().Unix())
			return err
		}
		if strings.HasPrefix(string(body), foreignKeysOff) {
			err = db.withoutForeignKeys(ctx, apply)
		} else {
			err = db.tx(ctx, apply)
		}
		if err != nil {
			return fmt.Errorf("migrate %s: %w", base, err)
		}
	}
	return nil
}

// withoutForeignKeys runs fn in a transaction on the writer's connection
// with foreign keys off, which can only change outside a transaction, and
// commits only if no foreign key is broken then.
func (db *DB) withoutForeignKeys(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer func() {
		var on int
		_, errOn := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`)
		if errOn == nil {
			errOn = conn.QueryRowContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys`).Scan(&on)
		}
		if errOn == nil && on != 1 {
			errOn = errors.New("foreign keys stayed off")
		}
		if errOn != nil {
			// The connection must not go on without them.
			conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("turn foreign keys back on: %w", errOn))
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	var table string
	var rowid sql.NullInt64
	var parent string
	var fkid int
	switch err := tx.QueryRowContext(ctx, `PRAGMA foreign_key_check`).Scan(&table, &rowid, &parent, &fkid); {
	case err == nil:
		tx.Rollback()
		return fmt.Errorf("row %d of %s refers to a missing row of %s", rowid.Int64, table, parent)
	case !errors.Is(err, sql.ErrNoRows):
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// prepared returns a statement prepared once on the writer connection;
// use it in a transaction through tx.StmtContext.
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if st, ok := db.stmts[query]; ok {
		return st, nil
	}
	st, err := db.write.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if db.stmts == nil {
		db.stmts = map[string]*sql.Stmt{}
	}
	db.stmts[query] = st
	return st, nil
}

// Close closes both handles.
func (db *DB) Close() error {
	db.answers.close()
	var errs []error
	db.mu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
	db.mu.Unlock()
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	return errors.Join(errs...)
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// tx runs fn in a write transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	db.waiting.Add(1)
	tx, err := db.write.BeginTx(ctx, nil)
	db.waiting.Add(-1)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// LoadCache gives the writer 16 MiB of page cache for a load, which
// inserts into the keys of large tables at random places (with SQLite's
// default of 2 MiB it reads most of those pages again); 32 MiB loaded no
// faster, at 1 or 10 million lines, new or overlapping a load, than 16.
// The pages come from the arena ReservePageCache sizes to it. It moves the
// WAL's checkpoints aside (checkpointAside), and returns what puts the
// defaults back so that the other jobs stay small.
func (db *DB) LoadCache(ctx context.Context) (restore func(), err error) {
	if _, err := db.write.ExecContext(ctx, `PRAGMA cache_size = -`+strconv.Itoa(loadCacheKiB)); err != nil {
		return nil, fmt.Errorf("page cache: %w", err)
	}
	stop := db.checkpointAside(ctx)
	return func() {
		stop()
		// A failure leaves the larger cache: a little memory, no harm.
		db.write.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = -2000`)
	}, nil
}

// checkpointAside moves the WAL's checkpoints off the writer while a load
// runs: a checkpoint run by a commit (SQLite's automatic one) holds the
// writer through its fsyncs, and an answer waiting for the writer waits
// for them too (up to half a second on a busy disk). A goroutine runs a
// passive checkpoint every checkpointEvery on a connection of its own,
// which takes no write lock, and restarts the WAL once it is
// walRestartFrames long (see restartWAL); the automatic checkpoint stays
// as a backstop at 20,000 pages (80 MiB of WAL) in case that one falls
// behind.
func (db *DB) checkpointAside(ctx context.Context) (stop func()) {
	cp, err := sql.Open("sqlite", dsn(db.path, false))
	if err != nil {
		return func() {}
	}
	cp.SetMaxOpenConns(1)
	if _, err := db.write.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 20000`); err != nil {
		cp.Close()
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// A checkpoint that fails (the disk, a busy lock) is
				// tried at the next tick; the backstop bounds the WAL.
				if log, done, err := checkpoint(ctx, cp); err == nil && log >= walRestartFrames && done == log {
					db.restartWAL(ctx, cp)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		cp.Close()
		db.write.ExecContext(context.WithoutCancel(ctx), `PRAGMA wal_autocheckpoint = 1000`)
	}
}

// checkpointEvery is how often checkpointAside checkpoints, and
// walRestartFrames how long it lets the WAL grow before restarting it
// (32 MiB of pages); tests shorten both.
var (
	checkpointEvery  = 200 * time.Millisecond
	walRestartFrames = 8192
)

// checkpoint runs a passive checkpoint on conn and returns how many frames
// the WAL held and how many of them are now in the database.
func checkpoint(ctx context.Context, conn interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (log, done int, err error) {
	var busy int
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
	return log, done, err
}

// restartWAL makes the next write transaction write the WAL from its
// start again, which SQLite does only for a transaction that begins with
// every frame already copied into the database. While a load commits
// batch after batch, with answers between them, the passive checkpoints
// on cp never finish at such a moment, and the WAL used to grow to the
// backstop, whose checkpoint then held the writer for 100 ms and more
// (it copies what came since the last pass, and syncs), every answer
// waiting behind it. So one more pass on cp copies what came during the
// last, and a pass on the writer's own connection, where nothing can
// commit in between, copies the little left and syncs. The writer waits
// for it as for an answer (a load yields to it). If a reader holds an
// old snapshot the WAL grows on, and the next tick tries again.
func (db *DB) restartWAL(ctx context.Context, cp *sql.DB) {
	if _, _, err := checkpoint(ctx, cp); err != nil {
		return
	}
	db.waiting.Add(1)
	conn, err := db.write.Conn(ctx)
	db.waiting.Add(-1)
	if err != nil {
		return
	}
	defer conn.Close()
	checkpoint(ctx, conn)
}

// WriterWaiting reports whether a short write transaction (an answer, a
// send outcome) is waiting for the writer: a long load commits its batch
// early to let it through.
func (db *DB) WriterWaiting() bool { return db.waiting.Load() > 0 }

func (db *DB) now() int64 { return db.Now().UTC().Unix() }

// nullString maps "" to NULL.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
