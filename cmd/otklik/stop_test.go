package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/otklik/otklik/etl/sample"
	"github.com/otklik/otklik/mailer/inbox"
)

// TestStop_Ingest sends SIGTERM to `otklik ingest` in the middle of a
// file: it exits within 30 s, leaves the file at a committed batch, and
// the next ingest ends with exactly the rows and counts of one
// uninterrupted ingest.
func TestStop_Ingest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	now := time.Now()
	setup := func() (dir, cfg string) {
		dir = t.TempDir()
		o := sample.Options{Now: now, Customers: 40000, Days: 10, Receipts: 2000, Seed: 11}
		if _, err := sample.Write(filepath.Join(dir, "drop"), o); err != nil {
			t.Fatal(err)
		}
		return dir, dropConfig(t, dir, "")
	}
	ingest := func(cfg string) *exec.Cmd { return binCmd(bin, cfg, "ingest") }
	cleanDir, cleanCfg := setup()
	if out, err := ingest(cleanCfg).CombinedOutput(); err != nil {
		t.Fatalf("clean ingest: %v\n%s", err, out)
	}

	dir, cfg := setup()
	cmd := ingest(cfg)
	done := startCmd(t, cmd)
	db := filepath.Join(dir, "otklik.db")
	for deadline := time.Now().Add(60 * time.Second); !cutOff(t, db); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the ingest ended (%v) before it could be stopped mid-file", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no file got past its first batch in 60 s")
		}
	}
	terminate(t, cmd, done)
	if out, err := ingest(cfg).CombinedOutput(); err != nil {
		t.Fatalf("ingest after the stop: %v\n%s", err, out)
	}
	want, got := dump(t, filepath.Join(cleanDir, "otklik.db")), dump(t, db)
	for table, w := range want {
		if got[table] != w {
			t.Errorf("%s: %s after a stop and a restart, %s after one ingest", table, got[table], w)
		}
	}
}

// TestStop_Send sends SIGTERM to `otklik send` in the middle of a queue:
// it exits within 30 s after the messages in hand, none is left sending
// or unknown, and the next send delivers the rest, each message once.
func TestStop_Send(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	box, err := inbox.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	dir := t.TempDir()
	n := 3000
	cfg := queue(t, dir, box.Addr(), n, 4)
	send := func() *exec.Cmd {
		cmd := exec.Command(bin, "--config", cfg, "send")
		cmd.Env = append(os.Environ(), "OTKLIK_CONFIG=")
		return cmd
	}
	cmd := send()
	done := startCmd(t, cmd)
	for deadline := time.Now().Add(60 * time.Second); len(box.Messages()) < 100; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing sent in 60 s")
		}
	}
	terminate(t, cmd, done)
	s := status(t, cfg)
	received := len(box.Messages())
	if s.Invitations.Sending != 0 || s.Invitations.Unknown != 0 || s.Invitations.Sent != int64(received) {
		t.Fatalf("after SIGTERM: %+v, %d received", s.Invitations, received)
	}
	if received == n {
		t.Fatalf("all %d messages went out before the stop", n)
	}
	if out, err := send().CombinedOutput(); err != nil {
		t.Fatalf("send after the stop: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, m := range box.Messages() {
		got[m.To[0]]++
	}
	for i := range n {
		if e := fmt.Sprintf("c%07d@example.ru", i); got[e] != 1 {
			t.Errorf("%s received %d messages, want 1", e, got[e])
		}
	}
}

// startCmd starts cmd; the channel gets its exit.
func startCmd(t *testing.T, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

// terminate sends cmd SIGTERM and fails the test unless it exits within
// 30 seconds, as the systemd unit expects.
func terminate(t *testing.T, cmd *exec.Cmd, done <-chan error) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not stop within 30 s of SIGTERM", cmd.Args[len(cmd.Args)-1])
	}
}
