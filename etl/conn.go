package etl

import (
	"context"
	"net"
	"sync"
	"time"
)

// idleConn is a net.Conn whose every Read and Write must make progress
// within timeout: a server that goes silent fails the call instead of
// hanging the daemon (jlaffaye/ftp has no deadlines of its own,
// jlaffaye/ftp#70; x/crypto/ssh neither, golang/go#50046).
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

// conns tracks the open connections of a source so that a cancelled
// context or a watchdog can close them all, unblocking any call.
type conns struct {
	mu  sync.Mutex
	set map[net.Conn]struct{}
}

func (cs *conns) add(c net.Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.set == nil {
		cs.set = map[net.Conn]struct{}{}
	}
	cs.set[c] = struct{}{}
}

func (cs *conns) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.set {
		c.Close()
	}
	cs.set = nil
}

// dial opens a TCP connection with a connect timeout, wrapped with an idle
// timeout and tracked.
func (cs *conns) dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cs.add(c)
	return &idleConn{Conn: c, timeout: timeout}, nil
}

// watch closes every connection if ctx ends before the returned stop is
// called, so that a blocked library call returns.
func (cs *conns) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, cs.closeAll)
}
