package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otklik/otklik/mailer/inbox"
)

// TestIngest_SourceDownAlertsOnce: a source that keeps failing is
// reported to the administrator once, and its recovery once.
func TestIngest_SourceDownAlertsOnce(t *testing.T) {
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: share
    dir: share
    ready:
      min_age: 0s
  - name: office
    dir: office
smtp:
  address: %s
  from: "otklik <noreply@example.ru>"
  tls: none
survey:
  base_url: https://otklik.example.ru
admin:
  emails: ["admin@example.ru"]
  source_failures: 3
`, box.Addr())
	path := filepath.Join(dir, "otklik.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	os.Mkdir(filepath.Join(dir, "office"), 0o755)
	for i := range 5 {
		code, _, errs := run(t, "--config", path, "ingest")
		if code != 1 || !strings.Contains(errs, "1 source errors") {
			t.Fatalf("run %d: exit %d %s", i, code, errs)
		}
	}
	msgs := box.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "share") {
		t.Fatalf("%d admin emails after 5 failed runs, want 1", len(msgs))
	}
	os.Mkdir(filepath.Join(dir, "share"), 0o755)
	for range 2 {
		if code, _, errs := run(t, "--config", path, "ingest"); code != 0 {
			t.Fatalf("recovered run: exit %d %s", code, errs)
		}
	}
	if got := len(box.Messages()); got != 2 {
		t.Fatalf("%d admin emails after recovery, want 2", got)
	}
}
