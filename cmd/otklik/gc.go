package main

import "runtime/debug"

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

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
