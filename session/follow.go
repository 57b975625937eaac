package session

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/liveness"
)

// A server named by DNS name (ClientConfig.ResolveEndpoint) is resolved at every connect,
// and again while every path of the session has failed: if the name then points elsewhere
// the server has moved, and the client opens a new session to the new address at once
// instead of waiting for the control channel's idle timeout (docs/DECISIONS.md).

// errServerMoved is serveControl's error when the server's name resolved to another
// address than the session's while every path was failing (followName).
var errServerMoved = errors.New("the server's name resolves to another address")

// resolveEndpoint asks resolve for the server's address, one question at a time: connect
// and followName both ask, and a resolver (cmd/bondtun's) keeps state between answers.
func (c *Client) resolveEndpoint(ctx context.Context, resolve func(context.Context) (netip.AddrPort, error)) (netip.AddrPort, error) {
	c.resolveMu.Lock()
	defer c.resolveMu.Unlock()
	return resolve(ctx)
}

// noteAllFailed wakes followName: every path of the current session has just failed
// (the session's timer calls it, from controlTimers). It never blocks.
func (c *Client) noteAllFailed() {
	select {
	case c.allFailed <- struct{}{}:
	default:
	}
}

// followName runs for Run's life. Each time every path of the session has failed, and
// while they all stay so, it resolves the server's name: at once, then on the retry
// schedule of backoff.go (1 s, 2 s, then every 4 s). An answer other than the address the
// session was opened to ends the session's control channel with errServerMoved, and Run
// opens a new session, whose connect resolves the name again. The schedule starts over
// only once a path has come up since the last resolve: a new session whose paths never
// come up (its datagrams blocked on the way) does not make the client reconnect faster
// than that.
func (c *Client) followName(ctx context.Context) {
	bo := newBackoff(c.cfg.jitter)
	var next time.Time // the schedule's next resolve
	var last *Session  // the session of the last resolve
	var lastUps uint32 // and its count of paths come up then
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.allFailed:
		}
		for {
			s := c.Session()
			if s == nil || !s.allPathsFailed(c.now()) {
				break
			}
			if ups := s.ups.Load(); ups > 0 && (s != last || ups != lastUps) {
				bo.reset() // a new outage, after a path had come up
				next = time.Time{}
				last, lastUps = s, ups
			}
			if wait := next.Sub(c.now()); wait > 0 {
				if !sleepCtx(ctx, wait, nil) {
					return
				}
				continue
			}
			next = c.now().Add(bo.wait())
			if c.checkMoved(ctx, s) {
				break
			}
		}
	}
}

// checkMoved resolves the server's name for s, whose every path failed, and ends s's
// control channel with errServerMoved if the answer is another address than s's. It
// reports whether it did.
func (c *Client) checkMoved(ctx context.Context, s *Session) bool {
	cfg := c.config()
	if cfg.ResolveEndpoint == nil {
		return false
	}
	ep, err := c.resolveEndpoint(ctx, cfg.ResolveEndpoint)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Info("every path failed; server name not re-resolved", "err", err)
		}
		return false
	}
	cur := c.config()
	if ep == cur.Endpoint || cur.serverGen != cfg.serverGen || c.Session() != s {
		return false
	}
	ctrl := s.serving.Load()
	if ctrl == nil {
		return false // being resumed: that fails without a path, and the connect resolves
	}
	c.log.Info("every path failed and the server's name resolves to another address; opening a new session",
		"endpoint", cur.Endpoint, "resolved", ep)
	s.stopControl(ctrl, errServerMoved)
	return true
}

// sleepCtx waits d, until ctx is done, or until wake (nil: never) delivers, and reports
// whether ctx did not cut it short.
func sleepCtx(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// allPathsFailed reports whether s has paths and every one has failed (pathFailedLocked).
func (s *Session) allPathsFailed(now time.Time) bool {
	paths := s.pathList()
	for _, p := range paths {
		p.mu.Lock()
		failed := p.failedLocked(now)
		p.mu.Unlock()
		if !failed {
			return false
		}
	}
	return len(paths) > 0
}

// failedLocked reports whether p has failed: dead, down, or validating without an answer
// for its dead threshold (an uplink back whose probes go unanswered). A path validating
// for less, as every path of a new session does, has not. p.mu must be held.
func (p *Path) failedLocked(now time.Time) bool {
	switch p.live.State() {
	case liveness.Dead, liveness.Down:
		return true
	case liveness.Validating:
		return now.Sub(p.live.Since()) >= p.live.Config().DeadAfter
	}
	return false
}
