package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws one line on a terminal, redrawn at most ten times a
// second; on anything else (a pipe, journald) it draws nothing and the
// log lines tell the story.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	width int
}

// newProgress returns a progress line on w if w is a terminal, else nil
// (whose methods do nothing).
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{w: w}
}

// show redraws the line; force draws even within the rate limit.
func (p *progress) show(force bool, format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	line := fmt.Sprintf(format, args...)
	pad := max(0, p.width-len([]rune(line)))
	p.width = len([]rune(line))
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
}

// bar renders done of total as [#####-----] 42%.
func bar(done, total int) string {
	if total <= 0 {
		return ""
	}
	const n = 24
	filled := min(n, done*n/total)
	b := make([]rune, n)
	for i := range b {
		b[i] = '-'
		if i < filled {
			b[i] = '#'
		}
	}
	return fmt.Sprintf("[%s] %3d%%", string(b), done*100/total)
}

// done ends the line.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintln(p.w)
	}
}
