package etl_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"golang.org/x/text/encoding/charmap"
)

// oldFTP is a canned FTP server that speaks like an old Windows IIS: no
// MLSD, no UTF8, an MS-DOS style LIST and file names in Windows-1251.
// goftp.io's clean Unix listings cannot show these.
type oldFTP struct {
	ln      net.Listener
	listing string
	files   map[string]string // raw name -> content
	retrs   []string          // raw names asked for
}

func startOldFTP(t *testing.T, listing string, files map[string]string) *oldFTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &oldFTP{ln: ln, listing: listing, files: files}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *oldFTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(format string, a ...any) { fmt.Fprintf(c, format+"\r\n", a...) }
	reply("220 Microsoft FTP Service")
	var data net.Listener
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			reply("331 Password required")
		case "PASS":
			reply("230 User logged in.")
		case "FEAT":
			reply("211-Extended features supported:\r\n SIZE\r\n211 END")
		case "TYPE":
			reply("200 Type set to I.")
		case "EPSV":
			data, _ = net.Listen("tcp", "127.0.0.1:0")
			reply("229 Entering Extended Passive Mode (|||%d|)", data.Addr().(*net.TCPAddr).Port)
		case "LIST", "RETR":
			body := s.listing
			if strings.ToUpper(cmd) == "RETR" {
				name := arg[strings.LastIndexByte(arg, '/')+1:]
				s.retrs = append(s.retrs, name)
				var ok bool
				if body, ok = s.files[name]; !ok {
					reply("550 The system cannot find the file specified.")
					continue
				}
			}
			reply("125 Data connection already open; Transfer starting.")
			dc, err := data.Accept()
			if err != nil {
				return
			}
			io.WriteString(dc, body)
			dc.Close()
			data.Close()
			reply("226 Transfer complete.")
		case "QUIT":
			reply("221 Goodbye.")
			return
		default:
			reply("500 '%s': command not understood.", cmd)
		}
	}
}

func TestFTP_IISListingWithWindows1251Names(t *testing.T) {
	cp := func(s string) string {
		b, err := charmap.Windows1251.NewEncoder().String(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	name := cp("покупки_20261123.csv")
	listing := "11-23-26  03:05AM       <DIR>          archive\r\n" +
		"11-23-26  03:05AM                   24 stores_20261123.csv\r\n" +
		"11-22-26  11:40PM                   11 " + name + "\r\n"
	srv := startOldFTP(t, listing, map[string]string{name: "содержимое"})
	src := etl.NewFTP(etl.FTPConfig{Address: srv.ln.Addr().String(), User: "onec", Password: "x", Dir: "/export",
		NameEncoding: etl.EncodingCP1251, Timeout: 5 * time.Second})
	defer src.Close()
	ctx := context.Background()
	es, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("entries = %+v, want the two files and not the folder", es)
	}
	e := es[1]
	if e.Name != "покупки_20261123.csv" || e.Ref != name || e.Size != 11 {
		t.Fatalf("entry = %+v", e)
	}
	if want := time.Date(2026, 11, 22, 23, 40, 0, 0, time.UTC); !e.ModTime.Equal(want) {
		t.Errorf("mtime = %v, want %v", e.ModTime, want)
	}
	rc, err := src.Open(ctx, e.Ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if err := rc.Close(); err != nil || string(b) != "содержимое" {
		t.Fatalf("read %q, %v", b, err)
	}
	if len(srv.retrs) != 1 || srv.retrs[0] != name {
		t.Fatalf("RETR got %q, want the raw Windows-1251 bytes", srv.retrs)
	}
}
