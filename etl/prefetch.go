package etl

import (
	"context"
	"io"
)

// prefetchBuf is the size of the pieces a prefetcher reads ahead.
const prefetchBuf = 64 << 10

// prefetcher reads r ahead in a goroutine of its own: a file's decoding
// (Windows-1251 to UTF-8, a third of what reading a CSV file costs) then
// runs beside the CSV reader that takes its output, on the other core.
// Close stops the goroutine and waits for it; after Close, r is not read.
type prefetcher struct {
	full chan []byte // pieces read, in order
	free chan []byte // pieces taken, to read into again
	stop chan struct{}
	done chan struct{}
	err  error // why reading ended (io.EOF at the end), once full is closed

	buf   []byte // the piece being taken, from off
	off   int
	ended bool
}

func prefetch(ctx context.Context, r io.Reader) *prefetcher {
	const pieces = 4
	p := &prefetcher{full: make(chan []byte, pieces), free: make(chan []byte, pieces+1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range pieces + 1 {
		p.free <- make([]byte, prefetchBuf)
	}
	go func() {
		defer close(p.done)
		defer close(p.full)
		for {
			var buf []byte
			select {
			case buf = <-p.free:
			case <-p.stop:
				return
			}
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				select {
				case p.full <- buf[:n]:
				case <-p.stop:
					return
				}
			}
			switch {
			case err == io.ErrUnexpectedEOF || err == io.EOF:
				p.err = io.EOF
				return
			case err != nil:
				p.err = err
				return
			}
			if err := ctx.Err(); err != nil {
				p.err = err
				return
			}
		}
	}()
	return p
}

func (p *prefetcher) Read(b []byte) (int, error) {
	for p.off == len(p.buf) {
		if p.buf != nil {
			p.free <- p.buf[:cap(p.buf)]
			p.buf, p.off = nil, 0
		}
		if p.ended {
			return 0, p.err
		}
		buf, ok := <-p.full
		if !ok {
			p.ended = true
			continue
		}
		p.buf, p.off = buf, 0
	}
	n := copy(b, p.buf[p.off:])
	p.off += n
	return n, nil
}

// Close stops reading ahead and waits until r is no longer read.
func (p *prefetcher) Close() error {
	close(p.stop)
	<-p.done
	return nil
}
