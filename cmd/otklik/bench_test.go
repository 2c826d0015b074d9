package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/otklik/otklik/mailer/inbox"
	"github.com/otklik/otklik/store"
)

// These run only with OTKLIK_BENCH=1 (make bench): they build the otklik
// binary and drive it as a separate process, as an administrator would.

func benchOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("OTKLIK_BENCH") == "" {
		t.Skip("set OTKLIK_BENCH=1 (make bench)")
	}
}

// buildBinary builds otklik as make build does, so that what is measured
// is what is installed: without cgo (a binary linked to the C library maps
// it, and its pages count in the peak RSS) and without symbol tables.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "otklik")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// dropConfig writes DIR/otklik.yaml for a local source DIR/drop whose
// files are taken at once; survey adds lines to the survey section.
func dropConfig(t *testing.T, dir, survey string) string {
	t.Helper()
	cfg := filepath.Join(dir, "otklik.yaml")
	body := `database: otklik.db
spool: spool
sources:
  - name: office
    dir: drop
    ready:
      min_age: 0s
smtp:
  address: 127.0.0.1:25
  from: noreply@example.ru
  tls: none
survey:
  base_url: https://otklik.example.ru
` + survey
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// binCmd runs the built binary on a config, ignoring $OTKLIK_CONFIG.
func binCmd(bin, cfg string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"--config", cfg}, args...)...)
	cmd.Env = append(os.Environ(), "OTKLIK_CONFIG=")
	return cmd
}

// queue writes a config sending to addr and plans n invitations due now.
func queue(t *testing.T, dir, addr string, n, conns int) string {
	t.Helper()
	cfg := fmt.Sprintf(`database: otklik.db
spool: spool
sources:
  - name: office
    dir: drop
smtp:
  address: %s
  from: "Магазин <noreply@example.ru>"
  hello: otklik.example.ru
  tls: none
  max_conns: %d
  rate_per_sec: 0
survey:
  base_url: https://otklik.example.ru
`, addr, conns)
	path := filepath.Join(dir, "otklik.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "otklik.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	b, _ := db.BeginBatch(ctx, 0)
	b.AddStore(ctx, store.Store{Code: "0001", Name: "Хофф Химки", TimeZone: "Europe/Moscow"})
	b.Commit()
	for start := 0; start < n; start += 10000 {
		var invs []store.NewInvitation
		for i := start; i < min(n, start+10000); i++ {
			invs = append(invs, store.NewInvitation{
				Candidate: store.Candidate{StoreCode: "0001", Receipt: strconv.Itoa(i), At: now.Add(-20 * time.Hour),
					CustomerCode: strconv.Itoa(i), Email: fmt.Sprintf("c%07d@example.ru", i)},
				Token: fmt.Sprintf("tok%029d", i), DueAt: now.Add(-time.Minute), Expires: now.Add(24 * time.Hour),
			})
		}
		if _, err := db.AddInvitations(ctx, invs, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func status(t *testing.T, cfg string) store.Status {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(filepath.Dir(cfg), "otklik.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSendBenchmark sends 300,000 invitations to Postfix's smtp-sink and
// compares the rate with Postfix's smtp-source sending as many messages
// of the same size at the same concurrency over reused connections, best
// of two runs each, taken in turn.
func TestSendBenchmark(t *testing.T) {
	benchOnly(t)
	for _, p := range []string{"/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s missing (postfix; make bench installs it as root)", p)
		}
	}
	n, conns := 300000, 4
	if s := os.Getenv("OTKLIK_BENCH_MESSAGES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	sink := exec.Command("/usr/sbin/smtp-sink", "-u", "nobody", addr, "256")
	sink.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-sink.Process.Pid, syscall.SIGKILL); sink.Wait() }()
	time.Sleep(200 * time.Millisecond)
	pristine := filepath.Join(dir, "queue")
	os.MkdirAll(pristine, 0o755)
	queue(t, pristine, addr, n, conns)

	// A message as otklik sends it, for smtp-source.
	sample := filepath.Join(dir, "sample.eml")
	if out, err := exec.Command(bin, "preview", "invitation", "--out", sample).CombinedOutput(); err != nil {
		t.Fatalf("preview: %v\n%s", err, out)
	}
	body, _ := os.ReadFile(sample)

	// Best of two, taken in turn, as the machine's speed drifts.
	var otklik, postfix time.Duration
	var rss int64
	for round := range 2 {
		run := filepath.Join(dir, fmt.Sprint("run", round))
		if out, err := exec.Command("cp", "-r", pristine, run).CombinedOutput(); err != nil {
			t.Fatalf("copy the queue: %v\n%s", err, out)
		}
		cfg := filepath.Join(run, "otklik.yaml")
		start := time.Now()
		cmd := exec.Command(bin, "--config", cfg, "send")
		cmd.Env = append(os.Environ(), "OTKLIK_CONFIG=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otklik send: %v\n%s", err, out)
		}
		if d := time.Since(start); otklik == 0 || d < otklik {
			otklik = d
		}
		rss = max(rss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss<<10)
		if s := status(t, cfg); s.Invitations.Sent != int64(n) {
			t.Fatalf("sent %d of %d", s.Invitations.Sent, n)
		}
		os.RemoveAll(run)

		start = time.Now()
		src := exec.Command("/usr/sbin/smtp-source", "-d", "-s", strconv.Itoa(conns), "-m", strconv.Itoa(n),
			"-F", sample, "-f", "noreply@example.ru", "-t", "c@example.ru", "-M", "otklik.example.ru", addr)
		if out, err := src.CombinedOutput(); err != nil {
			t.Fatalf("smtp-source: %v\n%s", err, out)
		}
		if d := time.Since(start); postfix == 0 || d < postfix {
			postfix = d
		}
	}

	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	fmt.Printf("\n| %d messages of %d bytes, %d connections | messages/s | ratio | peak RSS |\n|---|---|---|---|\n", n, len(body), conns)
	fmt.Printf("| otklik send (render, SMTP, outcome in SQLite) | %.0f | %.2f of smtp-source | %d MiB |\n", rate(otklik), rate(otklik)/rate(postfix), rss>>20)
	fmt.Printf("| Postfix smtp-source | %.0f | | |\n", rate(postfix))
	if rate(otklik) < 0.5*rate(postfix) {
		t.Errorf("otklik: %.0f messages/s, below half of smtp-source's %.0f", rate(otklik), rate(postfix))
	}
	if rss > 100<<20 {
		t.Errorf("otklik: peak RSS %d MiB, over 100 MiB", rss>>20)
	}
}

// TestSendCrashLoop kills `otklik send` with SIGKILL at 20 random moments
// of a 20,000-message send, restarting it each time: every recipient gets
// exactly one message, except those in flight at a kill, which are
// reported "unknown" and get at most one.
func TestSendCrashLoop(t *testing.T) {
	benchOnly(t)
	n := 20000
	if s := os.Getenv("OTKLIK_BENCH_CRASH_MESSAGES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	bin := buildBinary(t)
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	dir := t.TempDir()
	cfg := queue(t, dir, box.Addr(), n, 4)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for kills < 20 {
		cmd := exec.Command(bin, "--config", cfg, "send")
		done := startCmd(t, cmd)
		select {
		case <-time.After(time.Duration(50+rng.IntN(600)) * time.Millisecond):
			cmd.Process.Kill()
			<-done
			kills++
		case err := <-done:
			if err != nil {
				t.Fatalf("send exited: %v", err)
			}
			t.Logf("the send finished before kill %d", kills+1)
			kills = 20
		}
	}
	if out, err := exec.Command(bin, "--config", cfg, "send").CombinedOutput(); err != nil {
		t.Fatalf("final send: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, m := range box.Messages() {
		got[m.To[0]]++
	}
	s := status(t, cfg)
	db, _ := store.Open(context.Background(), filepath.Join(dir, "otklik.db"))
	defer db.Close()
	unknown := map[string]bool{}
	rows, err := db.UnknownRecipients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rows {
		unknown[e] = true
	}
	twice, missing := 0, 0
	for i := range n {
		e := fmt.Sprintf("c%07d@example.ru", i)
		switch {
		case got[e] > 1:
			twice++
		case got[e] == 0 && !unknown[e]:
			missing++
		}
	}
	fmt.Printf("\n| crash loop | messages | kills | sent | unknown (in flight at a kill) | received twice | never received (not unknown) |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| otklik send, SIGKILL at random moments | %d | %d | %d | %d | %d | %d |\n",
		n, kills, s.Invitations.Sent, s.Invitations.Unknown, twice, missing)
	if twice > 0 || missing > 0 || s.Invitations.Sent+s.Invitations.Unknown != int64(n) {
		t.Errorf("twice %d, missing %d, status %+v", twice, missing, s.Invitations)
	}
}
