package etl

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/text/encoding/charmap"
)

// SFTPConfig configures an SFTP source.
type SFTPConfig struct {
	Address  string // host:port
	User     string
	Password string // password authentication, if set
	// KeyFile is a private key in OpenSSH or PEM form; KeyPassphrase
	// decrypts it if it is encrypted.
	KeyFile, KeyPassphrase string
	// KnownHosts is the known_hosts file that pins the server's key. It
	// is required: an unknown or changed key is refused.
	KnownHosts string
	Dir        string        // the drop folder; "" is the login folder
	Timeout    time.Duration // connect, handshake and keepalive reply; 0 means 30s
	Keepalive  time.Duration // interval of keepalive@openssh.com; 0 means 15s
	// SequentialReads turns off pkg/sftp's concurrent reads, for servers
	// that lock or delete a file when it is stat'ed (pkg/sftp#345).
	SequentialReads bool
}

// SFTP is a Source on an SFTP server, through github.com/pkg/sftp over
// golang.org/x/crypto/ssh. It connects on first use and again after a
// lost connection; a keepalive closes a connection whose server stopped
// answering, so no call hangs.
type SFTP struct {
	cfg   SFTPConfig
	ssh   *ssh.Client
	c     *sftp.Client
	conns conns
	done  chan struct{} // stops the keepalive
}

var (
	_ Source   = (*SFTP)(nil)
	_ Mover    = (*SFTP)(nil)
	_ Uploader = (*SFTP)(nil)
)

// NewSFTP returns an SFTP source; it connects on first use.
func NewSFTP(cfg SFTPConfig) *SFTP {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 15 * time.Second
	}
	return &SFTP{cfg: cfg}
}

// HostKeyCallback checks host keys against a known_hosts file and returns
// the algorithms of the keys pinned for addr, so that the server is asked
// for a key of the pinned type (a server offering another type than the
// recorded one otherwise fails as a mismatch; golang/go#49631).
func HostKeyCallback(knownHosts, addr string) (ssh.HostKeyCallback, []string, error) {
	if knownHosts == "" {
		return nil, nil, fmt.Errorf("%w: no known_hosts file is configured for %s", ErrHostKey, addr)
	}
	cb, err := knownhosts.New(knownHosts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read known_hosts: %v", ErrHostKey, err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp: address %q: %w", addr, err)
	}
	// Ask the callback about a key nobody has: the error lists the keys
	// pinned for this host.
	var algos []string
	_, probe, _ := ed25519.GenerateKey(rand.Reader)
	if signer, err := ssh.NewSignerFromKey(probe); err == nil {
		remote := &net.TCPAddr{IP: net.ParseIP(host)}
		if p, err := strconv.Atoi(port); err == nil {
			remote.Port = p
		}
		var ke *knownhosts.KeyError
		if errors.As(cb(addr, remote, signer.PublicKey()), &ke) {
			for _, k := range ke.Want {
				switch t := k.Key.Type(); t {
				case ssh.KeyAlgoRSA:
					algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
				default:
					algos = append(algos, t)
				}
			}
		}
	}
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		fp := ssh.FingerprintSHA256(key)
		scan := fmt.Sprintf("ssh-keyscan -p %s -t %s %s >> %s", port, key.Type(), host, knownHosts)
		if len(ke.Want) == 0 {
			return fmt.Errorf("%w: %s offered %s key %s, which %s does not list; check the fingerprint with the server's administrator, then pin it: %s",
				ErrHostKey, addr, key.Type(), fp, knownHosts, scan)
		}
		w := ke.Want[0]
		return fmt.Errorf("%w: %s offered %s key %s, but %s:%d pins %s %s; if the server was really re-keyed, check the new fingerprint with its administrator and replace that line (%s)",
			ErrHostKey, addr, key.Type(), fp, w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key), scan)
	}
	return check, algos, nil
}

func (s *SFTP) authMethods() ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if s.cfg.KeyFile != "" {
		pem, err := os.ReadFile(s.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sftp: key: %w", err)
		}
		var signer ssh.Signer
		if s.cfg.KeyPassphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(s.cfg.KeyPassphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
		}
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("sftp: key %s is encrypted: set its passphrase (key_passphrase_env)", s.cfg.KeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("sftp: key %s: %w", s.cfg.KeyFile, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if s.cfg.Password != "" {
		methods = append(methods, ssh.Password(s.cfg.Password))
	}
	if len(methods) == 0 {
		return nil, errors.New("sftp: neither a password nor a key is configured")
	}
	return methods, nil
}

// connect dials, checks the host key, authenticates and starts the SFTP
// session, all under one deadline (x/crypto's Timeout covers only the
// TCP connect; golang/go#50046).
func (s *SFTP) connect(ctx context.Context) error {
	if s.c != nil {
		return nil
	}
	check, algos, err := HostKeyCallback(s.cfg.KnownHosts, s.cfg.Address)
	if err != nil {
		return err
	}
	auth, err := s.authMethods()
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: s.cfg.Timeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("sftp: connect %s: %w", s.cfg.Address, err)
	}
	s.conns.add(conn)
	conn.SetDeadline(time.Now().Add(s.cfg.Timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, s.cfg.Address, &ssh.ClientConfig{
		// AES-GCM first: AES-NI makes it several times faster than
		// x/crypto's ChaCha20-Poly1305 on servers' CPUs.
		Config: ssh.Config{Ciphers: []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
			"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"}},
		User: s.cfg.User, Auth: auth, HostKeyCallback: check, HostKeyAlgorithms: algos, Timeout: s.cfg.Timeout,
	})
	if err != nil {
		s.conns.closeAll()
		return fmt.Errorf("sftp: ssh to %s as %q: %w", s.cfg.Address, s.cfg.User, err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	opts := []sftp.ClientOption{sftp.UseConcurrentReads(!s.cfg.SequentialReads)}
	c, err := sftp.NewClient(client, opts...)
	if err != nil {
		client.Close()
		s.conns.closeAll()
		return fmt.Errorf("sftp: start session on %s: %w", s.cfg.Address, err)
	}
	conn.SetDeadline(time.Time{})
	s.ssh, s.c, s.done = client, c, make(chan struct{})
	go s.keepalive(client, s.done)
	return nil
}

// keepalive asks the server for a reply every Keepalive; a server that
// does not answer within Timeout has its connection closed, which makes
// any blocked call return (pkg/sftp#297).
func (s *SFTP) keepalive(client *ssh.Client, done chan struct{}) {
	t := time.NewTicker(s.cfg.Keepalive)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				client.Close()
				return
			}
		case <-time.After(s.cfg.Timeout):
			client.Close()
			return
		case <-done:
			return
		}
	}
}

// reset drops the session after an error; the next call reconnects.
func (s *SFTP) reset() {
	if s.done != nil {
		close(s.done)
		s.done = nil
	}
	if s.c != nil {
		s.c.Close()
	}
	if s.ssh != nil {
		s.ssh.Close()
	}
	s.conns.closeAll()
	s.c, s.ssh = nil, nil
}

// resetUnlessRefused keeps the session after the server refused one
// operation (no such file, no permission) and drops it otherwise.
func (s *SFTP) resetUnlessRefused(err error) {
	var se *sftp.StatusError
	if errors.As(err, &se) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return
	}
	s.reset()
}

func (s *SFTP) path(ref string) string {
	if s.cfg.Dir == "" {
		return ref
	}
	return path.Join(s.cfg.Dir, ref)
}

// List lists the regular files of the drop folder.
func (s *SFTP) List(ctx context.Context) ([]Entry, error) {
	defer s.conns.watch(ctx)()
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	dir := s.cfg.Dir
	if dir == "" {
		dir = "."
	}
	fis, err := s.c.ReadDir(dir)
	if err != nil {
		s.resetUnlessRefused(err)
		return nil, fmt.Errorf("sftp: list %s: %w", dir, err)
	}
	var out []Entry
	for _, fi := range fis {
		if !fi.Mode().IsRegular() {
			continue
		}
		name := fi.Name()
		if !utf8.ValidString(name) {
			if s, err := charmap.Windows1251.NewDecoder().String(name); err == nil {
				name = s
			}
		}
		out = append(out, Entry{Name: name, Ref: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// Open reads a file from offset. Its WriteTo reads with several requests
// in flight, which io.Copy uses.
func (s *SFTP) Open(ctx context.Context, ref string, offset int64) (io.ReadCloser, error) {
	stop := s.conns.watch(ctx)
	if err := s.connect(ctx); err != nil {
		stop()
		return nil, err
	}
	f, err := s.c.Open(s.path(ref))
	if err != nil {
		stop()
		s.resetUnlessRefused(err)
		return nil, fmt.Errorf("sftp: open %q: %w", ref, err)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			stop()
			return nil, fmt.Errorf("sftp: seek %q: %w", ref, err)
		}
	}
	return &sftpReader{s: s, f: f, stop: stop}, nil
}

type sftpReader struct {
	s    *SFTP
	f    *sftp.File
	stop func() bool
	err  error
}

func (r *sftpReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// WriteTo lets io.Copy use pkg/sftp's concurrent reads.
func (r *sftpReader) WriteTo(w io.Writer) (int64, error) {
	n, err := r.f.WriteTo(w)
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *sftpReader) Close() error {
	defer r.stop()
	err := r.f.Close()
	if r.err != nil {
		r.s.resetUnlessRefused(r.err)
	}
	return err
}

// rename moves a file over any existing one: posix-rename@openssh.com
// where the server has it, since a plain SFTPv3 rename fails when the
// target exists.
func (s *SFTP) rename(from, to string) error {
	if _, ok := s.c.HasExtension("posix-rename@openssh.com"); ok {
		return s.c.PosixRename(from, to)
	}
	s.c.Remove(to)
	return s.c.Rename(from, to)
}

// Move moves a file into dir, a folder below the drop folder.
func (s *SFTP) Move(ctx context.Context, ref, dir string) error {
	defer s.conns.watch(ctx)()
	if err := s.connect(ctx); err != nil {
		return err
	}
	s.c.MkdirAll(s.path(dir))
	if err := s.rename(s.path(ref), s.path(path.Join(dir, ref))); err != nil {
		s.resetUnlessRefused(err)
		return fmt.Errorf("sftp: move %q to %s: %w", ref, dir, err)
	}
	return nil
}

// Remove deletes a file.
func (s *SFTP) Remove(ctx context.Context, ref string) error {
	defer s.conns.watch(ctx)()
	if err := s.connect(ctx); err != nil {
		return err
	}
	if err := s.c.Remove(s.path(ref)); err != nil {
		s.resetUnlessRefused(err)
		return fmt.Errorf("sftp: delete %q: %w", ref, err)
	}
	return nil
}

// Put uploads name into dir under a temporary name, checks its size and
// renames it into place.
func (s *SFTP) Put(ctx context.Context, dir, name string, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	defer s.conns.watch(ctx)()
	if err := s.connect(ctx); err != nil {
		return err
	}
	if dir != "" && dir != "." {
		s.c.MkdirAll(s.path(dir))
	}
	tmp := s.path(path.Join(dir, "."+name+".part"))
	f, err := s.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		s.resetUnlessRefused(err)
		return fmt.Errorf("sftp: upload %q: %w", name, err)
	}
	n, err := f.ReadFrom(r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var fi os.FileInfo
		if fi, err = s.c.Stat(tmp); err == nil && fi.Size() != n {
			err = fmt.Errorf("wrote %d bytes, the server has %d", n, fi.Size())
		}
	}
	if err != nil {
		s.c.Remove(tmp)
		s.resetUnlessRefused(err)
		return fmt.Errorf("sftp: upload %q: %w", name, err)
	}
	if err := s.rename(tmp, s.path(path.Join(dir, name))); err != nil {
		s.resetUnlessRefused(err)
		return fmt.Errorf("sftp: rename %q into place: %w", name, err)
	}
	return nil
}

// Close ends the session.
func (s *SFTP) Close() error {
	s.reset()
	return nil
}
