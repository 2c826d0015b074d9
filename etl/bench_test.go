package etl_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/store"
)

// BenchmarkIngest loads a generated Windows-1251 drop (60 days of
// purchases, 3,000 customers) into a fresh database; it reports lines/s.
func BenchmarkIngest(b *testing.B) {
	drop := b.TempDir()
	sum, err := sample.Write(drop, sample.Options{Now: time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		db, err := store.Open(context.Background(), filepath.Join(dir, "otklik.db"))
		if err != nil {
			b.Fatal(err)
		}
		in := &etl.Ingester{DB: db, Spool: filepath.Join(dir, "spool"), Zone: time.UTC}
		b.StartTimer()
		if _, err := in.Run(context.Background(), []etl.SourceSpec{{Name: "office", Source: &etl.Local{Dir: drop}}}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(sum.Lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
