package main

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
	"github.com/prometheus/client_golang/prometheus"
)

// A scrape reports the counts last read: it reads them again only after a
// job or once they are old, and a slow read (a chain's purchase lines)
// holds a scrape up for at most the wait, which then reports what it had.
func TestStatusCollector_ReadsOnlyWhenStale(t *testing.T) {
	var reads atomic.Int64
	var stores atomic.Int64
	release := make(chan struct{}, 10)
	var slow, hang atomic.Bool
	life, stop := context.WithCancel(context.Background())
	defer stop()
	c := newStatusCollector(life, func(ctx context.Context) (statusSnapshot, error) {
		reads.Add(1)
		if slow.Load() {
			<-release
		}
		if hang.Load() {
			<-ctx.Done() // as a query interrupted by its context
			return statusSnapshot{}, ctx.Err()
		}
		var s store.Status
		s.Stores = stores.Load()
		return statusSnapshot{Status: s}, nil
	})
	c.wait = 200 * time.Millisecond
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	// scrape gathers as Prometheus would and returns otklik_records{table="stores"}.
	scrape := func() float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				if f.GetName() == "otklik_records" && m.GetLabel()[0].GetValue() == "stores" {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}

	stores.Store(8)
	if got := scrape(); got != 8 {
		t.Fatalf("first scrape: stores %v, want 8", got)
	}
	stores.Store(9)
	scrape()
	scrape()
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads for three scrapes with nothing new, want 1", n)
	}
	c.invalidate() // a job finished
	if got := scrape(); got != 9 || reads.Load() != 2 {
		t.Errorf("after a job: stores %v after %d reads, want 9 after 2", got, reads.Load())
	}

	slow.Store(true)
	stores.Store(10)
	c.invalidate()
	start := time.Now()
	if got := scrape(); got != 9 {
		t.Errorf("during a slow read: stores %v, want the 9 read before", got)
	}
	if held := time.Since(start); held > 2*time.Second {
		t.Errorf("a slow read held the scrape for %v", held)
	}
	scrape() // the read in progress is not started again
	if n := reads.Load(); n != 3 {
		t.Errorf("%d reads, want 3: one at a time", n)
	}
	release <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for scrape() != 10 {
		if time.Now().After(deadline) {
			t.Fatal("the slow read's counts never showed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	slow.Store(false)
	c.maxAge = 50 * time.Millisecond
	before := reads.Load()
	time.Sleep(60 * time.Millisecond)
	scrape()
	if n := reads.Load(); n != before+1 {
		t.Errorf("counts older than maxAge: %d reads, want %d", n, before+1)
	}

	// A read in progress when the daemon stops ends with it, so that
	// closing the database does not wait for it.
	hang.Store(true)
	c.invalidate()
	scrape()
	c.mu.Lock()
	reading := c.reading
	c.mu.Unlock()
	if reading == nil {
		t.Fatal("no read in progress")
	}
	stop()
	select {
	case <-reading:
	case <-time.After(5 * time.Second):
		t.Fatal("the read went on after the daemon stopped")
	}
}

// The free space of SQLite's temporary folder is watched as SQLite finds
// that folder: $SQLITE_TMPDIR, then $TMPDIR, then the system's, skipping
// a folder that does not exist.
func TestSQLiteTempDir(t *testing.T) {
	mine, other := t.TempDir(), t.TempDir()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SQLITE_TMPDIR": mine, "TMPDIR": other}, mine},
		{map[string]string{"SQLITE_TMPDIR": filepath.Join(mine, "gone"), "TMPDIR": other}, other},
		{map[string]string{"TMPDIR": other}, other},
		{map[string]string{}, "/var/tmp"},
	} {
		if got := sqliteTempDir(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
	if !sameDisk(filepath.Join(mine, "not yet made.db"), other) {
		t.Errorf("a file not yet made and a folder beside it: not on one disk")
	}
	if sameDisk(mine, "/proc/self") {
		t.Errorf("a folder and /proc on the same disk")
	}
}
