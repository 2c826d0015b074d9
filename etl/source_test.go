package etl_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/pkg/sftp"
	"goftp.io/server/v2"
	"goftp.io/server/v2/driver/file"
	"golang.org/x/crypto/ssh"
)

// harness is a Source under test and the folder its server serves, so
// that a test can drop files the way 1C does and look at what is there.
type harness struct {
	src  etl.Source
	drop string // the drop folder on the server's disk
}

func (h harness) put(tb testing.TB, name string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(h.drop, name), data, 0o644); err != nil {
		tb.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(h.drop, name), old, old)
}

// testSource is the conformance suite every Source passes.
func testSource(t *testing.T, newHarness func(t *testing.T) harness) {
	ctx := context.Background()
	t.Run("ListOpenOffset", func(t *testing.T) {
		h := newHarness(t)
		defer h.src.Close()
		if es, err := h.src.List(ctx); err != nil || len(es) != 0 {
			t.Fatalf("empty folder: %v %v", es, err)
		}
		body := bytes.Repeat([]byte("Код;Наименование\r\n"), 5000)
		h.put(t, "stores_1.csv", body)
		h.put(t, "Покупки.csv", []byte("x"))
		os.Mkdir(filepath.Join(h.drop, "sub"), 0o755)
		es, err := h.src.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
		if len(es) != 2 || es[0].Name != "stores_1.csv" || es[0].Size != int64(len(body)) || es[1].Name != "Покупки.csv" {
			t.Fatalf("list = %+v", es)
		}
		if age := time.Since(es[0].ModTime); age < 50*time.Minute || age > 70*time.Minute {
			t.Errorf("mtime is %v old, want about an hour", age)
		}
		for _, off := range []int64{0, 12345} {
			ref := es[0].Ref
			if ref == "" {
				ref = es[0].Name
			}
			rc, err := h.src.Open(ctx, ref, off)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil || !bytes.Equal(got, body[off:]) {
				t.Fatalf("read from %d: %d bytes, err %v", off, len(got), err)
			}
		}
		// The connection is reused for a second listing.
		if _, err := h.src.List(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PutMoveRemove", func(t *testing.T) {
		h := newHarness(t)
		defer h.src.Close()
		if err := h.src.(etl.Uploader).Put(ctx, "outbound", "answers.csv", strings.NewReader("ответы")); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(h.drop, "outbound", "answers.csv")); err != nil || string(got) != "ответы" {
			t.Fatalf("uploaded %q, %v", got, err)
		}
		if parts, _ := filepath.Glob(filepath.Join(h.drop, "outbound", "*.part")); len(parts) > 0 {
			t.Fatalf("temporary files left: %v", parts)
		}
		// Uploading again replaces the file.
		if err := h.src.(etl.Uploader).Put(ctx, "outbound", "answers.csv", strings.NewReader("v2")); err != nil {
			t.Fatal(err)
		}
		h.put(t, "a.csv", []byte("a"))
		h.put(t, "b.csv", []byte("b"))
		m := h.src.(etl.Mover)
		if err := m.Move(ctx, "a.csv", "processed"); err != nil {
			t.Fatal(err)
		}
		if err := m.Remove(ctx, "b.csv"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(h.drop, "processed", "a.csv")); err != nil {
			t.Fatalf("moved file: %v", err)
		}
		es, err := h.src.List(ctx)
		if err != nil || len(es) != 0 {
			t.Fatalf("after move and delete: %+v %v", es, err)
		}
		if err := m.Remove(ctx, "missing.csv"); err == nil {
			t.Fatal("removing a missing file gave no error")
		}
		// The session survives a refused operation.
		if _, err := h.src.List(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("IngestOnce", func(t *testing.T) {
		h := newHarness(t)
		defer h.src.Close()
		in, db := newIngester(t)
		h.put(t, "stores.csv", []byte("Код;Наименование;ЧасовойПояс\r\n1;Один;Europe/Moscow\r\n2;Два;Asia/Omsk\r\n"))
		spec := etl.SourceSpec{Name: "remote", Source: h.src, After: etl.Move, ProcessedDir: "done"}
		for range 2 {
			res, err := in.Run(ctx, []etl.SourceSpec{spec})
			if err != nil || res.SourceErrors != 0 {
				t.Fatalf("run: %+v %v", res, err)
			}
		}
		if s := status(t, db); s.Stores != 2 || s.Files.Ingested != 1 {
			t.Fatalf("status = %+v", s.Files)
		}
		if _, err := os.Stat(filepath.Join(h.drop, "done", "stores.csv")); err != nil {
			t.Fatalf("loaded file not moved: %v", err)
		}
	})
}

func TestLocal_Conformance(t *testing.T) {
	testSource(t, func(t *testing.T) harness {
		dir := t.TempDir()
		return harness{src: &etl.Local{Dir: dir}, drop: dir}
	})
}

// startFTP serves root over FTP on loopback (goftp.io/server/v2), with
// explicit TLS when tlsCfg is set. wrap, if set, wraps the file driver.
func startFTP(t *testing.T, root string, tlsCfg *tls.Config, wrap func(server.Driver) server.Driver) string {
	return startFTPMode(t, root, tlsCfg, true, wrap)
}

// startFTPMode is startFTP with the choice of explicit (AUTH TLS) or
// implicit TLS when tlsCfg is set.
func startFTPMode(t *testing.T, root string, tlsCfg *tls.Config, explicit bool, wrap func(server.Driver) server.Driver) string {
	t.Helper()
	drv, err := file.NewDriver(root)
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		drv = wrap(drv)
	}
	opts := &server.Options{
		Driver: drv, Auth: &server.SimpleAuth{Name: "onec", Password: "секрет"},
		Perm: server.NewSimplePerm("root", "root"), Logger: &server.DiscardLogger{},
		Hostname: "127.0.0.1",
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if tlsCfg != nil {
		// The server takes its TLS configuration only in ListenAndServe,
		// so it listens itself, on the port just freed.
		ln.Close()
		opts.TLS, opts.ExplicitFTPS, opts.TLSConfig = true, explicit, tlsCfg
		opts.Port = ln.Addr().(*net.TCPAddr).Port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	if tlsCfg == nil {
		go srv.Serve(ln)
		return addr
	}
	go srv.ListenAndServe()
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("FTPS server did not start on %s", addr)
	return ""
}

func TestFTP_Conformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		epsv bool
		tls  string
	}{{"EPSV", true, ""}, {"PASV", false, ""}, {"ExplicitTLS", true, etl.FTPExplicit}} {
		// Implicit TLS is tested against vsftpd: goftp.io refuses PROT P
		// on an implicit session.
		t.Run(tc.name, func(t *testing.T) {
			testSource(t, func(t *testing.T) harness {
				root := t.TempDir()
				os.Mkdir(filepath.Join(root, "drop"), 0o755)
				cfg := etl.FTPConfig{User: "onec", Password: "секрет", Dir: "/drop", DisableEPSV: !tc.epsv, Timeout: 5 * time.Second}
				var srvTLS *tls.Config
				if tc.tls != "" {
					srvTLS, cfg.TLSConfig = selfSigned(t)
					cfg.TLS = tc.tls
				}
				cfg.Address = startFTPMode(t, root, srvTLS, tc.tls != etl.FTPImplicit, nil)
				return harness{src: etl.NewFTP(cfg), drop: filepath.Join(root, "drop")}
			})
		})
	}
}

func TestFTP_WrongPassword(t *testing.T) {
	root := t.TempDir()
	src := etl.NewFTP(etl.FTPConfig{Address: startFTP(t, root, nil, nil), User: "onec", Password: "wrong", Timeout: 5 * time.Second})
	_, err := src.List(context.Background())
	if err == nil || !strings.Contains(err.Error(), `login to`) {
		t.Fatalf("err = %v", err)
	}
}

// faultyDriver breaks the first download of each file: it cuts the
// transfer after half the file, or stalls there.
type faultyDriver struct {
	server.Driver
	stall bool
	mu    sync.Mutex
	seen  map[string]bool
}

func (d *faultyDriver) GetFile(ctx *server.Context, path string, offset int64) (int64, io.ReadCloser, error) {
	n, rc, err := d.Driver.GetFile(ctx, path, offset)
	if err != nil {
		return n, rc, err
	}
	d.mu.Lock()
	first := !d.seen[path]
	d.seen[path] = true
	d.mu.Unlock()
	if !first {
		return n, rc, nil
	}
	return n, &brokenReader{rc: rc, left: n / 2, stall: d.stall}, nil
}

type brokenReader struct {
	rc    io.ReadCloser
	left  int64
	stall bool
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		if r.stall {
			time.Sleep(time.Hour) // a server that stops sending
		}
		return 0, errors.New("connection reset")
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *brokenReader) Close() error { return r.rc.Close() }

func TestFTP_BrokenTransferResumedOnce(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			root := t.TempDir()
			os.Mkdir(filepath.Join(root, "drop"), 0o755)
			addr := startFTP(t, root, nil, func(d server.Driver) server.Driver {
				return &faultyDriver{Driver: d, stall: stall, seen: map[string]bool{}}
			})
			src := etl.NewFTP(etl.FTPConfig{Address: addr, User: "onec", Password: "секрет", Dir: "/drop", Timeout: time.Second})
			defer src.Close()
			h := harness{src: src, drop: filepath.Join(root, "drop")}
			var body bytes.Buffer
			body.WriteString("Код;Наименование\r\n")
			for i := range 20000 {
				fmt.Fprintf(&body, "%d;Магазин %d\r\n", i, i)
			}
			h.put(t, "stores.csv", body.Bytes())
			in, db := newIngester(t)
			in.RetryWait = 10 * time.Millisecond
			start := time.Now()
			res, err := in.Run(context.Background(), []etl.SourceSpec{{Name: "ftp", Source: src}})
			if err != nil || res.Ingested != 1 || res.SourceErrors != 0 {
				t.Fatalf("run: %+v %v", res, err)
			}
			if s := status(t, db); s.Stores != 20000 || s.Files.Ingested != 1 {
				t.Fatalf("stores = %d, files = %+v", s.Stores, s.Files)
			}
			if stall && time.Since(start) > 30*time.Second {
				t.Fatalf("a stalled transfer took %v", time.Since(start))
			}
		})
	}
}

// startSFTP serves the real file system over SFTP (pkg/sftp's server
// over x/crypto/ssh) on loopback, with password "секрет" for any user.
// It returns the address and a known_hosts file that pins its key.
func startSFTP(t *testing.T) (addr, knownHosts string) {
	t.Helper()
	_, hostKey, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
		if string(pass) == "секрет" {
			return nil, nil
		}
		return nil, errors.New("denied")
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSFTP(conn, cfg)
		}
	}()
	addr = ln.Addr().String()
	knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("%s %s", knownhostsAddr(addr), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))))
	os.WriteFile(knownHosts, []byte(line+"\n"), 0o644)
	return addr, knownHosts
}

func knownhostsAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("[%s]:%s", host, port)
}

func serveSFTP(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, in, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range in {
				ok := req.Type == "subsystem" && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
				if ok {
					srv, err := sftp.NewServer(ch, sftp.WithDebug(io.Discard))
					if err == nil {
						srv.Serve()
						srv.Close()
					}
					ch.Close()
				}
			}
		}()
	}
}

func TestSFTP_Conformance(t *testing.T) {
	testSource(t, func(t *testing.T) harness {
		addr, kh := startSFTP(t)
		drop := t.TempDir()
		return harness{src: etl.NewSFTP(etl.SFTPConfig{Address: addr, User: "onec", Password: "секрет", KnownHosts: kh,
			Dir: drop, Timeout: 5 * time.Second}), drop: drop}
	})
}

func TestSFTP_HostKeyRefused(t *testing.T) {
	addr, kh := startSFTP(t)
	ctx := context.Background()
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o644)
	_, err := etl.NewSFTP(etl.SFTPConfig{Address: addr, User: "u", Password: "секрет", KnownHosts: empty}).List(ctx)
	if !errors.Is(err, etl.ErrHostKey) || !strings.Contains(err.Error(), "ssh-keyscan -p") || !strings.Contains(err.Error(), "SHA256:") {
		t.Fatalf("unknown key: err = %v, want a refusal saying how to pin", err)
	}
	// A changed key: pin another server's key under this address.
	_, other := startSFTP(t)
	b, _ := os.ReadFile(other)
	fields := strings.Fields(string(b))
	os.WriteFile(kh, []byte(knownhostsAddr(addr)+" "+fields[1]+" "+fields[2]+"\n"), 0o644)
	_, err = etl.NewSFTP(etl.SFTPConfig{Address: addr, User: "u", Password: "секрет", KnownHosts: kh}).List(ctx)
	if !errors.Is(err, etl.ErrHostKey) || !strings.Contains(err.Error(), kh+":1 pins") {
		t.Fatalf("changed key: err = %v, want a refusal naming the pinned line", err)
	}
}

func TestSFTP_KeyAuthAndEncryptedKey(t *testing.T) {
	// The in-process server only takes passwords; a key that cannot be
	// read must fail with a clear message before any connection.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("фраза"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	os.WriteFile(keyFile, pemEncode(block), 0o600)
	addr, kh := startSFTP(t)
	_, err = etl.NewSFTP(etl.SFTPConfig{Address: addr, User: "u", KeyFile: keyFile, KnownHosts: kh}).List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("err = %v, want the passphrase to be asked for", err)
	}
}

// faultProxy forwards TCP to target and, once, cuts or stalls the
// connection after cutAfter bytes from the server.
type faultProxy struct {
	ln       net.Listener
	target   string
	cutAfter int64
	stall    bool
	mu       sync.Mutex
	tripped  bool
}

func startProxy(t *testing.T, target string, cutAfter int64, stall bool) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, cutAfter: cutAfter, stall: stall}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *faultProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	p.mu.Lock()
	fault := !p.tripped
	p.tripped = true
	p.mu.Unlock()
	go io.Copy(s, c)
	if !fault {
		io.Copy(c, s)
		return
	}
	io.CopyN(c, s, p.cutAfter)
	if p.stall {
		time.Sleep(time.Hour)
	}
}

func TestSFTP_CutAndStallThroughProxy(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			addr, kh := startSFTP(t)
			// Past the handshake and the listing, in the middle of the file.
			proxy := startProxy(t, addr, 200<<10, stall)
			paddr := proxy.ln.Addr().String()
			b, _ := os.ReadFile(kh)
			os.WriteFile(kh, append(b, []byte(knownhostsAddr(paddr)+" "+strings.SplitN(string(b), " ", 2)[1])...), 0o644)
			drop := t.TempDir()
			src := etl.NewSFTP(etl.SFTPConfig{Address: paddr, User: "u", Password: "секрет", KnownHosts: kh, Dir: drop,
				Timeout: time.Second, Keepalive: 200 * time.Millisecond})
			defer src.Close()
			h := harness{src: src, drop: drop}
			var body bytes.Buffer
			body.WriteString("Код;Наименование\r\n")
			for i := range 40000 {
				fmt.Fprintf(&body, "%d;Магазин %d\r\n", i, i)
			}
			h.put(t, "stores.csv", body.Bytes())
			in, db := newIngester(t)
			in.RetryWait = 10 * time.Millisecond
			start := time.Now()
			res, err := in.Run(context.Background(), []etl.SourceSpec{{Name: "sftp", Source: src}})
			if err != nil || res.Ingested != 1 || res.SourceErrors != 0 {
				t.Fatalf("run: %+v %v", res, err)
			}
			if s := status(t, db); s.Stores != 40000 {
				t.Fatalf("stores = %d", s.Stores)
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

// selfSigned returns a TLS server config for 127.0.0.1 and a client
// config that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM := selfSignedPEM(t)
	return selfSignedFromPEM(t, certPEM, keyPEM)
}

func selfSignedFromPEM(t *testing.T, certPEM, keyPEM []byte) (server, client *tls.Config) {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool}
}

func selfSignedPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
