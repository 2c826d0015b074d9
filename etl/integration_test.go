package etl_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"golang.org/x/crypto/ssh"
)

// The same conformance suite against the real servers 1C administrators
// use: Debian's vsftpd and OpenSSH sshd, started by the test on free
// loopback ports with their own config files. `make test` installs them
// when run as root; elsewhere these tests are skipped (in CI, as root,
// a missing server is a failure).

func needServer(t *testing.T, bin string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("%s is missing: make test installs it (vsftpd, openssh-server)", bin)
		}
		t.Skipf("%s is not installed (make test installs it as root)", bin)
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s needs root to run", bin)
	}
}

// openDir returns a fresh folder that servers running as other users can
// enter (t.TempDir is 0700 all the way up).
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return dir
}

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// startDaemon runs a server in the foreground until the test ends, and
// waits for its port.
func startDaemon(t *testing.T, addr string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s did not start on %s:\n%s", name, addr, out.String())
}

// startVsftpd serves an anonymous, writable drop folder; with TLS, logins
// and data must use TLS and the data connection must resume the control
// connection's session (require_ssl_reuse, as in production setups).
func startVsftpd(t *testing.T, tlsMode string) (addr, drop string, client etl.FTPConfig) {
	t.Helper()
	needServer(t, "/usr/sbin/vsftpd")
	os.MkdirAll("/var/run/vsftpd/empty", 0o755)
	dir := openDir(t)
	root := filepath.Join(dir, "root")
	drop = filepath.Join(root, "drop")
	os.MkdirAll(drop, 0o755)
	os.Chmod(drop, 0o777)
	addr, port := freeAddr(t)
	conf := fmt.Sprintf(`listen=YES
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
local_enable=NO
anon_root=%s
no_anon_password=YES
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_umask=022
pasv_enable=YES
seccomp_sandbox=NO
xferlog_enable=NO
dirmessage_enable=NO
use_localtime=NO
hide_ids=YES
vsftpd_log_file=%s/vsftpd.log
`, port, root, dir)
	client = etl.FTPConfig{Address: addr, User: "anonymous", Password: "otklik@", Dir: "/drop", Timeout: 5 * time.Second}
	if tlsMode != etl.FTPPlain {
		certPEM, keyPEM := selfSignedPEM(t)
		os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
		os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
		conf += fmt.Sprintf(`ssl_enable=YES
rsa_cert_file=%[1]s/cert.pem
rsa_private_key_file=%[1]s/key.pem
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
require_ssl_reuse=YES
ssl_ciphers=HIGH
`, dir)
		if tlsMode == etl.FTPImplicit {
			conf += "implicit_ssl=YES\n"
		}
		_, client.TLSConfig = selfSignedFromPEM(t, certPEM, keyPEM)
		client.TLS = tlsMode
	}
	cfgFile := filepath.Join(dir, "vsftpd.conf")
	os.WriteFile(cfgFile, []byte(conf), 0o600)
	startDaemon(t, addr, "/usr/sbin/vsftpd", cfgFile)
	return addr, drop, client
}

func TestVsftpd_Conformance(t *testing.T) {
	for _, mode := range []string{etl.FTPPlain, etl.FTPExplicit, etl.FTPImplicit} {
		t.Run("tls="+mode, func(t *testing.T) {
			testSource(t, func(t *testing.T) harness {
				_, drop, cfg := startVsftpd(t, mode)
				return harness{src: etl.NewFTP(cfg), drop: drop}
			})
		})
	}
}

// writeKey writes an OpenSSH private key, encrypted if passphrase is set,
// and returns its public half.
func writeKey(t *testing.T, path, passphrase string) ssh.PublicKey {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var err error
	var block []byte
	if passphrase != "" {
		b, e := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
		block, err = pemEncode(b), e
	} else {
		b, e := ssh.MarshalPrivateKey(priv, "")
		block, err = pemEncode(b), e
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, block, 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// startSshd runs OpenSSH's sshd with internal-sftp only, key login for
// the current user, and returns the address, a drop folder, and a client
// config with an encrypted key and a known_hosts that pins the server.
func startSshd(t *testing.T) (addr, drop string, client etl.SFTPConfig) {
	t.Helper()
	needServer(t, "/usr/sbin/sshd")
	os.MkdirAll("/run/sshd", 0o755)
	dir := openDir(t)
	drop = filepath.Join(dir, "drop")
	os.Mkdir(drop, 0o755)
	hostPub := writeKey(t, filepath.Join(dir, "host_key"), "")
	clientPub := writeKey(t, filepath.Join(dir, "client_key"), "пароль ключа")
	os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600)
	addr, port := freeAddr(t)
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_key
PidFile %[2]s/sshd.pid
AuthorizedKeysFile %[2]s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
`, port, dir)
	cfgFile := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfgFile, []byte(conf), 0o600)
	startDaemon(t, addr, "/usr/sbin/sshd", "-D", "-e", "-f", cfgFile)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownhostsAddr(addr)+" "+string(ssh.MarshalAuthorizedKey(hostPub))), 0o644)
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	client = etl.SFTPConfig{Address: addr, User: user, KeyFile: filepath.Join(dir, "client_key"),
		KeyPassphrase: "пароль ключа", KnownHosts: kh, Dir: drop, Timeout: 5 * time.Second}
	return addr, drop, client
}

func TestSshd_Conformance(t *testing.T) {
	testSource(t, func(t *testing.T) harness {
		_, drop, cfg := startSshd(t)
		return harness{src: etl.NewSFTP(cfg), drop: drop}
	})
}
