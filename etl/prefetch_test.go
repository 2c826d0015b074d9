package etl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// A prefetcher passes on what it reads, in order, whatever the sizes of
// the reads on either side, and then io.EOF.
func TestPrefetch_PassesTheBytesOn(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789абвгд;\r\n"), 3*prefetchBuf/10+7)
	for _, tc := range []struct {
		name string
		src  []byte
		wrap func(io.Reader) io.Reader
		read int
	}{
		{"empty", nil, nil, 100},
		{"short", []byte("a;b\r\n"), nil, 1},
		{"long, large reads", long, nil, 1 << 20},
		{"long, odd reads", long, nil, 4093},
		{"long, a byte at a time from the source", long[:5000], iotest.OneByteReader, 7},
		{"long, the source ends with data and EOF", long, iotest.DataErrReader, 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tc.src)
			if tc.wrap != nil {
				src = tc.wrap(src)
			}
			p := prefetch(context.Background(), src)
			defer p.Close()
			var got []byte
			buf := make([]byte, tc.read)
			for {
				n, err := p.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, tc.src) {
				t.Errorf("read %d bytes, want the %d of the source", len(got), len(tc.src))
			}
			if n, err := p.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("read after the end = %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

// A read error comes after the bytes read before it; so does a context
// cancelled while reading.
func TestPrefetch_Errors(t *testing.T) {
	broken := errors.New("disk on fire")
	data := strings.Repeat("x", prefetchBuf+10)
	p := prefetch(context.Background(), io.MultiReader(strings.NewReader(data), iotest.ErrReader(broken)))
	got, err := io.ReadAll(p)
	p.Close()
	if string(got) != data || !errors.Is(err, broken) {
		t.Errorf("read %d bytes, %v; want %d, %v", len(got), err, len(data), broken)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = prefetch(ctx, strings.NewReader(strings.Repeat("y", 10*prefetchBuf)))
	_, err = io.ReadAll(p)
	p.Close()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want %v", err, context.Canceled)
	}
}

// Close stops the goroutine with pieces unread, and the source is not
// read after it.
func TestPrefetch_CloseStopsReading(t *testing.T) {
	src := &countingReader{r: strings.NewReader(strings.Repeat("z", 100*prefetchBuf))}
	p := prefetch(context.Background(), src)
	buf := make([]byte, 10)
	if _, err := p.Read(buf); err != nil {
		t.Fatal(err)
	}
	p.Close()
	n := src.reads()
	if n > 6 {
		t.Errorf("%d pieces read ahead, want at most the buffers' 5 and the one in hand", n)
	}
	if again := src.reads(); again != n {
		t.Errorf("read after Close: %d reads, then %d", n, again)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.n++
	return c.r.Read(p)
}

// reads is the number of pieces read: the goroutine reads a piece in one
// Read of a strings.Reader.
func (c *countingReader) reads() int { return c.n }
