package main

import (
	"slices"
	"testing"
)

func TestMemoryLimits_IngestAlone(t *testing.T) {
	var got []int64
	m := &memoryLimits{set: func(n int64) int64 { got = append(got, n); return 0 }}
	leaveIngest := m.enter("ingest")
	leaveReport := m.enter("report")
	leaveReport()
	leaveIngest()
	leaveSend := m.enter("send")
	leaveSend()
	want := []int64{ingestMemory, memoryLimit, ingestMemory, memoryLimit, memoryLimit, memoryLimit}
	if !slices.Equal(got, want) {
		t.Fatalf("limits set %v, want %v", got, want)
	}
	// Without a setter (GOMEMLIMIT in the environment) nothing is set.
	(&memoryLimits{}).enter("ingest")()
}
