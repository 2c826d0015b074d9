package etl_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"golang.org/x/crypto/ssh"
)

// TestDownloadBenchmark downloads a 1 GiB file from local OpenSSH sshd and
// vsftpd with otklik's sources, side by side with OpenSSH's sftp client
// and curl, and reports rates, ratios and otklik's peak memory. It runs
// only with OTKLIK_BENCH=1 (make bench); each otklik download runs in a
// child process so that its peak RSS is its own.
func TestDownloadBenchmark(t *testing.T) {
	if child := os.Getenv("OTKLIK_BENCH_CHILD"); child != "" {
		benchChild(t, child)
		return
	}
	if os.Getenv("OTKLIK_BENCH") == "" {
		t.Skip("set OTKLIK_BENCH=1 (make bench)")
	}
	size := int64(1 << 30)
	if s := os.Getenv("OTKLIK_BENCH_BYTES"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	_, sdrop, scfg := startSshd(t)
	_, fdrop, fcfg := startVsftpd(t, etl.FTPPlain)
	writeBig(t, filepath.Join(sdrop, "big.bin"), size)
	if err := os.Link(filepath.Join(sdrop, "big.bin"), filepath.Join(fdrop, "big.bin")); err != nil {
		writeBig(t, filepath.Join(fdrop, "big.bin"), size)
	}
	// OpenSSH's client needs a key without a passphrase.
	plainKey := filepath.Join(filepath.Dir(scfg.KeyFile), "bench_key")
	pub := writeKey(t, plainKey, "")
	ak := filepath.Join(filepath.Dir(scfg.KeyFile), "authorized_keys")
	f, _ := os.OpenFile(ak, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(ssh.MarshalAuthorizedKey(pub))
	f.Close()
	out := filepath.Join(t.TempDir(), "out.bin")
	host, port := splitAddr(scfg.Address)

	tools := []struct {
		name string
		run  func() (time.Duration, int64)
	}{
		{"otklik sftp", func() (time.Duration, int64) {
			return runChild(t, "sftp", scfg.Address, scfg.KeyFile, scfg.KnownHosts, sdrop, size)
		}},
		{"OpenSSH sftp", func() (time.Duration, int64) {
			return timeCmd(t, out, "sftp", "-q", "-i", plainKey, "-P", port, "-o", "UserKnownHostsFile="+scfg.KnownHosts,
				"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", scfg.User+"@"+host+":"+sdrop+"/big.bin", out)
		}},
		{"otklik ftp", func() (time.Duration, int64) {
			return runChild(t, "ftp", fcfg.Address, "", "", "/drop", size)
		}},
		{"curl ftp", func() (time.Duration, int64) {
			return timeCmd(t, out, "curl", "-sS", "-o", out, "ftp://"+fcfg.Address+"/drop/big.bin")
		}},
	}
	best := map[string]time.Duration{}
	peak := map[string]int64{}
	for round := range 3 {
		for _, tool := range tools {
			d, rss := tool.run()
			os.Remove(out)
			// Each tool starts on a quiet disk: the previous one's
			// writeback and the discard of its deleted file are done.
			syscall.Sync()
			time.Sleep(2 * time.Second)
			if b, ok := best[tool.name]; !ok || d < b {
				best[tool.name] = d
			}
			peak[tool.name] = max(peak[tool.name], rss)
			t.Logf("round %d: %-13s %6.0f MB/s", round+1, tool.name, float64(size)/d.Seconds()/1e6)
		}
	}
	rate := func(name string) float64 { return float64(size) / best[name].Seconds() / 1e6 }
	fmt.Printf("\n| download of %d MiB over loopback (best of 3) | MB/s | ratio | peak RSS |\n|---|---|---|---|\n", size>>20)
	for _, pair := range [][2]string{{"otklik sftp", "OpenSSH sftp"}, {"otklik ftp", "curl ftp"}} {
		fmt.Printf("| %s | %.0f | %.2f of %s | %d MiB |\n", pair[0], rate(pair[0]), rate(pair[0])/rate(pair[1]), pair[1], peak[pair[0]]>>20)
		fmt.Printf("| %s | %.0f | | |\n", pair[1], rate(pair[1]))
	}
	for name, want := range map[string]float64{"otklik sftp": 0.8 * rate("OpenSSH sftp"), "otklik ftp": 0.9 * rate("curl ftp")} {
		if rate(name) < want {
			t.Errorf("%s: %.0f MB/s, below the target %.0f MB/s", name, rate(name), want)
		}
		if peak[name] > 64<<20 {
			t.Errorf("%s: peak RSS %d MiB, over 64 MiB", name, peak[name]>>20)
		}
	}
}

func splitAddr(addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

func writeBig(t *testing.T, path string, size int64) {
	t.Helper()
	block := make([]byte, 1<<20)
	rand.Read(block)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for n := int64(0); n < size; n += int64(len(block)) {
		w.Write(block[:min(int64(len(block)), size-n)])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// timeCmd times a download tool and the fsync of what it wrote: otklik
// fsyncs every spooled file before it enters the ledger, so the tools
// are timed to the same point, the data on disk.
func timeCmd(t *testing.T, written, name string, args ...string) (time.Duration, int64) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(name, args...)
	cmd.Stdin = nil
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	f, err := os.Open(written)
	if err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	return time.Since(start), 0
}

// runChild downloads in a child process and returns the time and the
// child's peak RSS.
func runChild(t *testing.T, kind, addr, key, knownHosts, dir string, size int64) (time.Duration, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDownloadBenchmark$")
	cmd.Env = append(os.Environ(), "OTKLIK_BENCH_CHILD="+kind, "B_ADDR="+addr, "B_KEY="+key, "B_KH="+knownHosts,
		"B_DIR="+dir, "B_SIZE="+strconv.FormatInt(size, 10), "B_SPOOL="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", kind, err, out)
	}
	var nanos, rss int64
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "RESULT ") {
			fmt.Sscanf(line, "RESULT %d %d", &nanos, &rss)
		}
	}
	if nanos == 0 {
		t.Fatalf("child %s printed no result:\n%s", kind, out)
	}
	return time.Duration(nanos), rss
}

// benchChild is the child: one Fetch into a spool, as ingest does it.
func benchChild(t *testing.T, kind string) {
	var src etl.Source
	switch kind {
	case "sftp":
		src = etl.NewSFTP(etl.SFTPConfig{Address: os.Getenv("B_ADDR"), User: "root", KeyFile: os.Getenv("B_KEY"),
			KeyPassphrase: "пароль ключа", KnownHosts: os.Getenv("B_KH"), Dir: os.Getenv("B_DIR")})
	case "ftp":
		src = etl.NewFTP(etl.FTPConfig{Address: os.Getenv("B_ADDR"), User: "anonymous", Password: "otklik@", Dir: os.Getenv("B_DIR")})
	}
	defer src.Close()
	size, _ := strconv.ParseInt(os.Getenv("B_SIZE"), 10, 64)
	in := &etl.Ingester{Spool: os.Getenv("B_SPOOL")}
	ctx := context.Background()
	entries, err := src.List(ctx) // connects, as a run does before downloading
	if err != nil {
		t.Fatal(err)
	}
	var e etl.Entry
	for _, x := range entries {
		if x.Name == "big.bin" {
			e = x
		}
	}
	if e.Size != size {
		t.Fatalf("listed %+v, want %d bytes", e, size)
	}
	start := time.Now()
	path, _, err := in.Fetch(ctx, etl.SourceSpec{Name: "bench", Source: src}, e)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	os.Remove(path)
	fmt.Printf("RESULT %d %d\n", d.Nanoseconds(), peakRSS())
}

// peakRSS reads this process's peak resident set size.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
