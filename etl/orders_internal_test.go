package etl

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestXMLLoad_ReadAhead: the items of a file are loaded in order while
// the file is read ahead; a load that fails stops the reading, and a
// file broken after some items has those loaded and fails after them.
// Either way the reading goroutine has ended when read returns.
func TestXMLLoad_ReadAhead(t *testing.T) {
	cml := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.10\">\n"
	doc := "<Документ><Ид>1</Ид><Роль>Покупатель</Роль></Документ>\n"
	docs := strings.Repeat(doc, 1000)
	boom := errors.New("boom")
	tests := []struct {
		name    string
		in      string
		failAt  int // the item whose load fails, or 0
		want    string
		loaded  int
		skipped int // items of buyers, loaded as such
	}{
		{"whole", cml + docs + "</КоммерческаяИнформация>\n", 0, "", 1000, 1000},
		{"load fails", cml + docs + "</КоммерческаяИнформация>\n", 2, "boom", 2, 1},
		{"file broken", cml + strings.Repeat(doc, 3) + "<Документ><Ид>", 0, "строка 6: XML повреждён: файл обрывается посреди XML: он обрезан", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			loaded := 0
			x := &xmlLoad{step: func(item int, load func() error) error {
				loaded++
				if item != loaded {
					t.Fatalf("item %d loaded as the %dth", item, loaded)
				}
				if item == tt.failAt {
					return boom
				}
				return load()
			}}
			err := x.read(strings.NewReader(tt.in), true)
			if got := errString(err); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
			if loaded != tt.loaded || x.buyer != tt.skipped {
				t.Errorf("%d items loaded, %d of buyers; want %d, %d", loaded, x.buyer, tt.loaded, tt.skipped)
			}
			for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines, %d before: the reader did not end", runtime.NumGoroutine(), before)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

func errString(err error) string {
	var fe *FileError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &fe):
		return fe.Reason
	}
	return err.Error()
}
