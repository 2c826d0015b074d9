package mailer

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
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

func TestCorkedConn_Pipelines(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec, greeting: []byte("220 ready\r\n")}
	buf := make([]byte, 64)
	if n, _ := c.Read(buf); string(buf[:n]) != "220 ready\r\n" || len(rec.writes) != 0 {
		t.Fatalf("greeting %q, %d writes", buf[:n], len(rec.writes))
	}
	c.pipeline("", []string{"a@example.ru"})
	c.Write([]byte("MAIL FROM:<n@example.ru>\r\n"))
	c.Read(buf)
	if len(rec.writes) != 1 || rec.writes[0] != "MAIL FROM:<n@example.ru>\r\nRCPT TO:<a@example.ru>\r\nDATA\r\n" {
		t.Fatalf("writes %q, want the three commands in one", rec.writes)
	}
	if !c.pending() {
		t.Fatal("nothing pending after sending ahead")
	}
	// The client's own copies, in whatever pieces, are not sent again.
	for _, s := range []string{"RCPT TO:<a@", "example.ru>\r\n", "DATA\r\n"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d %v", s, n, err)
		}
		c.Read(buf)
	}
	if len(rec.writes) != 1 || c.pending() {
		t.Fatalf("writes %q, pending %v", rec.writes, c.pending())
	}
	c.Write([]byte("Subject: x\r\n\r\n.\r\n"))
	c.Read(buf)
	if len(rec.writes) != 2 {
		t.Fatalf("writes %q", rec.writes)
	}
	// A client that writes something else is stopped.
	c.pipeline("", []string{"b@example.ru"})
	c.Write([]byte("MAIL FROM:<n@example.ru>\r\n"))
	c.Read(buf)
	if _, err := c.Write([]byte("RCPT TO:<c@example.ru>\r\n")); err != errPipeline {
		t.Fatalf("err = %v, want errPipeline", err)
	}
}

// dotWritten is msg as the client's dot-writer alone puts it on the wire.
func dotWritten(msg []byte) string {
	var b bytes.Buffer
	w := textproto.NewWriter(bufio.NewWriter(&b))
	dw := w.DotWriter()
	dw.Write(msg)
	dw.Close()
	return b.String()
}

// writeDataWire is msg as writeData puts it on the wire through a
// corked connection, as in a session.
func writeDataWire(t testing.TB, msg []byte) string {
	rec := &recordingConn{}
	conn := &corkedConn{Conn: rec}
	w := textproto.NewWriter(bufio.NewWriter(conn))
	dw := w.DotWriter()
	if err := writeData(conn, dw, msg); err != nil {
		t.Fatal(err)
	}
	dw.Close()
	conn.Read(make([]byte, 16))
	return strings.Join(rec.writes, "")
}

func TestWriteData_SameAsDotWriter(t *testing.T) {
	for _, msg := range []string{
		"",
		"\r\n",
		"Subject: x\r\n\r\nbody\r\n",
		"Subject: x\r\n\r\nno line end",
		".starts with a dot\r\nb\r\n",
		"a\r\n.\r\n..\r\nb\r\n",
		"a\r\nb\r\n.",
		"bare\nline feeds\n",
		"a\r\nbare\ncr\rhere\r\r\nc\r\n",
		"\r\r\n\r\n",
		"a\r\n\n\r\n",
		strings.Repeat("long line ", 10000) + "\r\nend\r\n",
	} {
		if got, want := writeDataWire(t, []byte(msg)), dotWritten([]byte(msg)); got != want {
			t.Errorf("%.40q: wire %.80q, want %.80q", msg, got, want)
		}
	}
}

func TestWireLines(t *testing.T) {
	for msg, want := range map[string]int{
		"":                   0,
		"a\r\n":              0, // the last line goes through the client
		"a\r\nb\r\n":         3,
		"a\r\nb":             3,
		"a\r\n.b\r\nc\r\n":   3,
		"a\nb\r\nc\r\n":      0,
		"a\r\nb\rc\r\nd\r\n": 3,
		"a\r\n\r\n\r\nlast":  7,
		".a\r\nb\r\n":        0,
	} {
		if got := wireLines([]byte(msg)); got != want {
			t.Errorf("wireLines(%q) = %d, want %d", msg, got, want)
		}
	}
}

func FuzzWriteData(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n.body\r\n"))
	f.Add([]byte("a\r\r\nb\nc"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if got, want := writeDataWire(t, msg), dotWritten(msg); got != want {
			t.Fatalf("wire %q, want %q", got, want)
		}
	})
}

func TestCorkedConn_LargeWriteHasADeadline(t *testing.T) {
	client, server := net.Pipe() // nobody reads server
	defer server.Close()
	defer client.Close()
	c := &corkedConn{Conn: client, timeout: 50 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, corkMax+1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write to a server that reads nothing did not time out")
	}
}
