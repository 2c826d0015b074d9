package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otklik/otklik/store"
)

// BenchmarkPurchaseLines loads 20,000-line batches of new lines, then of
// lines loaded already, one statement a line (Add) against many (Queue).
func BenchmarkPurchaseLines(b *testing.B) {
	ctx := context.Background()
	const batch = 20000
	for _, queue := range []bool{false, true} {
		name := map[bool]string{false: "add", true: "queue"}[queue]
		load := func(b *testing.B, db *store.DB, from int) {
			bt, err := db.BeginBatch(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			for i := from; i < from+batch; i++ {
				p := store.PurchaseLine{StoreCode: fmt.Sprint(i % 8), Receipt: fmt.Sprintf("R-%09d", i/2), Line: i % 2,
					At: time.Unix(1793361600+int64(i%30)*86400, 0), CustomerCode: "000123456", ProductCode: "Т-1001",
					Product: "Диван-кровать", Category: "Диваны", QtyMilli: 1000, PriceKop: 4599000, SumKop: 4599000, Seller: "Иванова"}
				if queue {
					err = bt.QueuePurchaseLine(ctx, p)
				} else {
					_, err = bt.AddPurchaseLine(ctx, p)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			var c store.FileCounts
			if err := bt.Checkpoint(ctx, 0, &c); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name+"/new", func(b *testing.B) {
			db := open(b)
			n := 0
			for b.Loop() {
				load(b, db, n)
				n += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/line")
		})
		b.Run(name+"/duplicate", func(b *testing.B) {
			db := open(b)
			load(b, db, 0)
			n := 0
			for b.Loop() {
				load(b, db, 0)
				n += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/line")
		})
	}
}
