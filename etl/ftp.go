package etl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path"
	"time"
	"unicode/utf8"

	"github.com/jlaffaye/ftp"
	"golang.org/x/text/encoding/charmap"
)

// FTP TLS modes.
const (
	FTPPlain    = ""         // no TLS
	FTPExplicit = "explicit" // AUTH TLS on the usual port (FTPS, explicit)
	FTPImplicit = "implicit" // TLS from the first byte (FTPS, implicit, port 990)
)

// FTPConfig configures an FTP or FTPS source.
type FTPConfig struct {
	Address        string // host:port
	User, Password string
	Dir            string // the drop folder; "" is the login folder
	TLS            string // FTPPlain, FTPExplicit or FTPImplicit
	// TLSConfig holds the CA to trust (ca_file); a session cache and the
	// server name are added, since vsftpd and FileZilla require the data
	// connection to resume the control connection's TLS session
	// (jlaffaye/ftp#342).
	TLSConfig   *tls.Config
	DisableEPSV bool // for servers that announce EPSV but refuse it
	DisableMLSD bool // for servers whose MLSD is broken; LIST is used
	// NameEncoding is "windows-1251" for servers that send names in the
	// ANSI code page; otherwise names that are not UTF-8 are read as
	// Windows-1251 anyway.
	NameEncoding string
	Location     *time.Location // of the times in LIST output
	Timeout      time.Duration  // connect and per-read/write idle timeout; 0 means 60s
}

// FTP is a Source on an FTP or FTPS server, through github.com/jlaffaye/ftp.
// It connects on first use and again after any error.
type FTP struct {
	cfg   FTPConfig
	c     *ftp.ServerConn
	conns conns
	ctx   context.Context // of the operation in progress, for dialing
	// dialed counts the connections of the current session: the first
	// is the control connection, the others data connections.
	dialed int
}

var (
	_ Source   = (*FTP)(nil)
	_ Mover    = (*FTP)(nil)
	_ Uploader = (*FTP)(nil)
)

// NewFTP returns an FTP source; it connects on first use.
func NewFTP(cfg FTPConfig) *FTP {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.TLS != FTPPlain {
		tc := &tls.Config{}
		if cfg.TLSConfig != nil {
			tc = cfg.TLSConfig.Clone()
		}
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(cfg.Address)
			tc.ServerName = host
		}
		if tc.ClientSessionCache == nil {
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(8)
		}
		cfg.TLSConfig = tc
	}
	return &FTP{cfg: cfg}
}

func (f *FTP) dial(network, addr string) (net.Conn, error) {
	ctx := f.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	conn, err := f.conns.dial(ctx, addr, f.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	control := f.dialed == 0
	f.dialed++
	switch {
	case f.cfg.TLS == FTPImplicit, f.cfg.TLS == FTPExplicit && !control:
		// With a dial function the library leaves TLS on data
		// connections (and implicit control ones) to us.
		return tls.Client(conn, f.cfg.TLSConfig), nil
	}
	return conn, nil
}

// connect logs in, unless already connected.
func (f *FTP) connect(ctx context.Context) error {
	if f.c != nil {
		return nil
	}
	f.ctx, f.dialed = ctx, 0
	opts := []ftp.DialOption{
		ftp.DialWithDialFunc(f.dial),
		ftp.DialWithShutTimeout(f.cfg.Timeout),
		ftp.DialWithDisabledEPSV(f.cfg.DisableEPSV),
		ftp.DialWithDisabledMLSD(f.cfg.DisableMLSD),
		ftp.DialWithLocation(f.cfg.Location),
	}
	switch f.cfg.TLS {
	case FTPExplicit:
		opts = append(opts, ftp.DialWithExplicitTLS(f.cfg.TLSConfig))
	case FTPImplicit:
		// Only so that the library asks for protected data connections
		// (PBSZ 0, PROT P); the dial function does the TLS itself.
		opts = append(opts, ftp.DialWithTLS(f.cfg.TLSConfig))
	}
	c, err := ftp.Dial(f.cfg.Address, opts...)
	if err != nil {
		f.conns.closeAll()
		return fmt.Errorf("ftp: connect %s: %w", f.cfg.Address, err)
	}
	if err := c.Login(f.cfg.User, f.cfg.Password); err != nil {
		c.Quit()
		f.conns.closeAll()
		return fmt.Errorf("ftp: login to %s as %q: %w", f.cfg.Address, f.cfg.User, err)
	}
	f.c = c
	return nil
}

// reset drops the connection after an error; the next call redials.
func (f *FTP) reset() {
	f.conns.closeAll()
	f.c = nil
}

func (f *FTP) path(ref string) string {
	if f.cfg.Dir == "" {
		return ref
	}
	return path.Join(f.cfg.Dir, ref)
}

// List lists the regular files of the drop folder, with MLSD where the
// server has it and LIST otherwise.
func (f *FTP) List(ctx context.Context) (entries []Entry, err error) {
	defer f.conns.watch(ctx)()
	if err := f.connect(ctx); err != nil {
		return nil, err
	}
	dir := f.cfg.Dir
	if dir == "" {
		dir = "."
	}
	list, err := f.c.List(dir)
	if err != nil {
		f.reset()
		return nil, fmt.Errorf("ftp: list %s: %w", dir, err)
	}
	for _, e := range list {
		if e.Type != ftp.EntryTypeFile {
			continue
		}
		entries = append(entries, Entry{Name: f.decodeName(e.Name), Ref: e.Name, Size: int64(e.Size), ModTime: e.Time})
	}
	return entries, nil
}

func (f *FTP) decodeName(raw string) string {
	if f.cfg.NameEncoding == EncodingCP1251 || !utf8.ValidString(raw) {
		if s, err := charmap.Windows1251.NewDecoder().String(raw); err == nil {
			return s
		}
	}
	return raw
}

// Open reads a file from offset (REST). The transfer's final reply is
// read on Close, which reports a broken transfer.
func (f *FTP) Open(ctx context.Context, ref string, offset int64) (io.ReadCloser, error) {
	stop := f.conns.watch(ctx)
	if err := f.connect(ctx); err != nil {
		stop()
		return nil, err
	}
	resp, err := f.c.RetrFrom(f.path(ref), uint64(offset))
	if err != nil {
		stop()
		f.reset()
		return nil, fmt.Errorf("ftp: retrieve %q: %w", ref, err)
	}
	return &ftpReader{f: f, resp: resp, stop: stop}, nil
}

type ftpReader struct {
	f    *FTP
	resp *ftp.Response
	stop func() bool
	err  error
}

func (r *ftpReader) Read(p []byte) (int, error) {
	n, err := r.resp.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

func (r *ftpReader) Close() error {
	defer r.stop()
	err := r.resp.Close()
	if err != nil || r.err != nil {
		r.f.reset()
	}
	if err != nil {
		return fmt.Errorf("ftp: end of transfer: %w", err)
	}
	return nil
}

// Move renames a file into dir, a folder below the drop folder.
func (f *FTP) Move(ctx context.Context, ref, dir string) error {
	defer f.conns.watch(ctx)()
	if err := f.connect(ctx); err != nil {
		return err
	}
	f.c.MakeDir(f.path(dir)) // it may exist already
	if err := f.c.Rename(f.path(ref), f.path(path.Join(dir, ref))); err != nil {
		f.resetOnNetError(err)
		return fmt.Errorf("ftp: move %q to %s: %w", ref, dir, err)
	}
	return nil
}

// Remove deletes a file.
func (f *FTP) Remove(ctx context.Context, ref string) error {
	defer f.conns.watch(ctx)()
	if err := f.connect(ctx); err != nil {
		return err
	}
	if err := f.c.Delete(f.path(ref)); err != nil {
		f.resetOnNetError(err)
		return fmt.Errorf("ftp: delete %q: %w", ref, err)
	}
	return nil
}

// Put uploads name into dir under a temporary name, then renames it.
func (f *FTP) Put(ctx context.Context, dir, name string, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	defer f.conns.watch(ctx)()
	if err := f.connect(ctx); err != nil {
		return err
	}
	if dir != "" && dir != "." {
		f.c.MakeDir(f.path(dir))
	}
	final := f.path(path.Join(dir, name))
	tmp := f.path(path.Join(dir, "."+name+".part"))
	if err := f.c.Stor(tmp, r); err != nil {
		f.reset()
		return fmt.Errorf("ftp: upload %q: %w", name, err)
	}
	if err := f.c.Rename(tmp, final); err != nil {
		// Some servers refuse to rename over an existing file.
		f.c.Delete(final)
		if err := f.c.Rename(tmp, final); err != nil {
			f.resetOnNetError(err)
			return fmt.Errorf("ftp: rename %q into place: %w", name, err)
		}
	}
	return nil
}

// resetOnNetError keeps the session after a plain refusal (a 5xx reply)
// and drops it after anything else.
func (f *FTP) resetOnNetError(err error) {
	var reply *textproto.Error
	if !errors.As(err, &reply) {
		f.reset()
	}
}

// Close logs out.
func (f *FTP) Close() error {
	if f.c == nil {
		return nil
	}
	err := f.c.Quit()
	f.reset()
	return err
}
