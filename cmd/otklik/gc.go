package main

import (
	"runtime/debug"
	"sync"
)

// otklik's Go heap holds a few megabytes whatever it does: rows stream
// through it and SQLite keeps its pages outside it. At Go's default
// GOGC=100 the collector then runs after every 4 MB allocated, about 50
// times a second while sending or loading, and costs a tenth of the CPU
// of a send. gcPercent lets the heap grow to five times what is live
// (some 20 MB) before collecting; memoryLimit makes the collector work
// harder rather than let a large live heap (a big report) grow five
// times. GOGC and GOMEMLIMIT in the environment override both.
const (
	gcPercent   = 400
	memoryLimit = 96 << 20
)

// ingestMemory is the limit on Go's memory while ingests run and nothing
// else does. What an ingest holds live is bounded (blocks of rows, a
// batch's sums: 5-6 MB), but at gcPercent the heap grows to five times
// what is live at the moment the collector looks, and that moment varies
// with the rows in flight: over the 400 collections of a ten-million-row
// file the largest of them put the peak a few MiB above a small file's.
// Held to 36 MiB, the heap's goal stays where a small file's is, at the
// same speed.
const ingestMemory = 36 << 20

// memory sets the limit on Go's memory from the jobs that run: set by
// tuneGC unless GOMEMLIMIT is in the environment.
var memory memoryLimits

type memoryLimits struct {
	mu      sync.Mutex
	set     func(int64) int64 // debug.SetMemoryLimit; nil leaves the limit alone
	ingests int
	others  int
}

// enter counts a job in until leave: ingestMemory holds while ingests
// alone run, memoryLimit otherwise.
func (m *memoryLimits) enter(job string) (leave func()) {
	n := &m.others
	if job == "ingest" {
		n = &m.ingests
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	*n++
	m.apply()
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		*n--
		m.apply()
	}
}

func (m *memoryLimits) apply() {
	if m.set == nil {
		return
	}
	limit := int64(memoryLimit)
	if m.ingests > 0 && m.others == 0 {
		limit = ingestMemory
	}
	m.set(limit)
}

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
		memory.mu.Lock()
		memory.set = debug.SetMemoryLimit
		memory.mu.Unlock()
	}
}
