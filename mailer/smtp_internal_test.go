package mailer

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

// recordingConn records each write it gets and answers reads with "250".
type recordingConn struct {
	net.Conn
	writes []string
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *recordingConn) Read(p []byte) (int, error) { return copy(p, "250 ok\r\n"), nil }

func TestCorkedConn_WritesOnRead(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec}
	for _, s := range []string{"DATA", strings.Repeat("x", 4096), strings.Repeat("y", 4096), "\r\n.\r\n"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if len(rec.writes) != 0 {
		t.Fatalf("%d writes before a read", len(rec.writes))
	}
	if _, err := c.Read(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 1 || len(rec.writes[0]) != 4+8192+5 {
		t.Fatalf("writes %d, want one of everything", len(rec.writes))
	}
	// More than corkMax goes out without waiting for a read, in order.
	big := bytes.Repeat([]byte("z"), corkMax+1)
	c.Write([]byte("a"))
	c.Write(big)
	if len(rec.writes) != 3 || rec.writes[1] != "a" || len(rec.writes[2]) != len(big) {
		t.Fatalf("writes after a large one: %d", len(rec.writes))
	}
	c.Read(make([]byte, 16))
	if len(rec.writes) != 3 {
		t.Fatal("an empty hold was written")
	}
}
