package etl

import "io"

// runLimit bounds what a parser may read between two of its marks: one CSV
// record or one XML token. encoding/csv and encoding/xml keep reading until
// a record or token ends, so an unclosed quote or an endless text in a
// 2 GiB file of garbage would otherwise be held in memory whole. Past max
// bytes without a mark it reports the end of the input, which the parser
// takes as a truncated record or token; tripped tells the reader of the
// parser's output that the end was not real.
//
// The parsers read ahead through a buffer, so a mark counts from bytes
// already read ahead: max is a bound on memory, not an exact record size.
type runLimit struct {
	r       io.Reader
	n, max  int
	tripped bool
}

func newRunLimit(r io.Reader, max int) *runLimit {
	return &runLimit{r: r, max: max}
}

func (l *runLimit) Read(p []byte) (int, error) {
	if l.tripped || l.n >= l.max {
		l.tripped = true
		return 0, io.EOF
	}
	if len(p) > l.max-l.n {
		p = p[:l.max-l.n]
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

// mark starts a new run: the parser finished a record or token. Once
// tripped, the input stays ended.
func (l *runLimit) mark() { l.n = 0 }
