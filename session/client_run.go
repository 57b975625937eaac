package session

import (
	"context"
	"errors"
	"time"
)

// The client's run loop: Run serves the current session, resumes its control channel when it
// breaks, or opens a new one, retrying on the backoff schedule until ctx ends.

// ErrPeerClosed is what a message client's Run returns when the server ended the session
// (BYE): the library's connection is over. A TUN client opens a new session instead.
var ErrPeerClosed = errors.New("the peer closed the session")

// Run moves packets until ctx is done, opening a session when there is none (first, if
// Connect was not called) and re-establishing it whenever the control channel breaks.
// Unreachable servers, closed connections and uplinks that are not there yet are waited
// out, retrying on the schedule of backoff.go; only an authenticated refusal (an error
// wrapping ErrRefused: wrong server key, our key refused, incompatible server) ends Run,
// which returns it. A server named by DNS name (ResolveEndpoint) is resolved again while
// every path has failed, and followed to a new address (follow.go). It closes the sockets
// when it returns but not the TUN device, which belongs to the caller.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	c.started = true
	for _, conn := range c.uplinks {
		c.receiveLocked(conn)
	}
	c.mu.Unlock()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{}, 2)
	go func() {
		defer func() { watchDone <- struct{}{} }()
		c.watchUplinks(watchCtx)
	}()
	go func() {
		defer func() { watchDone <- struct{}{} }()
		c.followName(watchCtx)
	}()
	if c.dev != nil {
		go routineReadTUN(c.dev, c.log, c.Send) // ends when the caller closes the device
	}
	result := c.runSessions(ctx)
	if s := c.Session(); s != nil {
		// ctx ended before runSessions served s (a Close right after Connect): say BYE, or
		// the server keeps s until the client's silence times out.
		c.endSession(s, true)
	}
	stopWatch()
	<-watchDone
	<-watchDone
	c.closeSockets()
	c.wg.Wait()
	return result
}

// runSessions is Run's loop: serve the session, resume or replace it, retry until ctx ends.
func (c *Client) runSessions(ctx context.Context) error {
	bo := newBackoff(c.cfg.jitter)
	sleep := c.cfg.sleep
	if sleep == nil {
		sleep = c.sleepOrWake
	}
	up := c.Session() != nil // as last told OnSessionChange (Connect's session counts)
	tell := func(now bool) {
		if now != up && c.cfg.OnSessionChange != nil {
			c.cfg.OnSessionChange(now)
		}
		up = now
	}
	for ctx.Err() == nil {
		if s := c.Session(); s != nil {
			reconnect, err := c.serveSession(ctx, s, &bo, sleep)
			if err != nil {
				tell(false)
				return err
			}
			if !reconnect {
				continue
			}
		}
		err := c.connect(ctx)
		if err == nil {
			bo.reset()
			tell(true)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errServerChanged) {
			continue // connect again at once, to the new server
		}
		if errors.Is(err, ErrRefused) {
			tell(false)
			return err
		}
		tell(false)
		d := bo.wait()
		c.log.Warn("no session; retrying", "err", err, "retry_in", d.Round(time.Millisecond))
		sleep(ctx, d)
	}
	return nil
}

// serveSession serves s's control channel until it breaks, then resumes the channel or ends
// s. It reports whether runSessions must open a new session now (false: look at the current
// session again, or ctx ended), and the error that ends Run, if one does.
func (c *Client) serveSession(ctx context.Context, s *Session, bo *backoff, sleep func(context.Context, time.Duration) bool) (reconnect bool, end error) {
	err := s.serveControl(ctx)
	if c.Session() != s {
		return false, nil // SetServer ended it: open a session with the new server
	}
	if errors.Is(err, errServerMoved) {
		// Every path failed and the name points elsewhere: no BYE (the old address does
		// not answer); the new session's connect resolves the name again.
		c.endSession(s, false)
		return ctx.Err() == nil, nil
	}
	if errors.Is(err, errKeysUsedUp) {
		// Resuming would keep the keys: end the session (BYE) and open a new one.
		// The host's routes stay; packets meanwhile count as TxNoSession.
		c.endSession(s, true)
		return false, nil
	}
	if ctx.Err() == nil && !errors.Is(err, errPeerBye) {
		// The data paths may be fine: keep the session, move its control channel.
		c.log.Warn("control channel lost; resuming it", "err", err)
		rerr := c.resumeRetrying(ctx, s, bo, sleep)
		if rerr == nil {
			return false, nil
		}
		if errors.Is(rerr, ErrRefused) {
			c.endSession(s, false)
			return false, rerr
		}
		if ctx.Err() == nil {
			c.log.Warn("resume failed; opening a new session", "err", rerr)
		}
	}
	c.endSession(s, ctx.Err() != nil)
	if ctx.Err() != nil {
		return false, nil // runSessions' loop ends on ctx
	}
	if c.messages && errors.Is(err, errPeerBye) {
		return false, ErrPeerClosed
	}
	return true, nil
}

// resumeRetrying resumes s's control channel, retrying transient failures on bo's schedule
// while s still has a usable path (its data flows without the channel) and for at most
// controlIdleTimeout. It gives up at once on a rejection: the server has no such session
// (it restarted), or refuses us.
func (c *Client) resumeRetrying(ctx context.Context, s *Session, bo *backoff, sleep func(context.Context, time.Duration) bool) error {
	giveUp := c.now().Add(controlIdleTimeout)
	for {
		err := c.resume(ctx, s)
		if err == nil || errors.Is(err, ErrRejected) || ctx.Err() != nil {
			if err == nil {
				bo.reset()
			}
			return err
		}
		if !c.hasUsablePath(s) || c.now().After(giveUp) {
			return err
		}
		d := bo.wait()
		c.log.Warn("resume failed; the paths still carry data, retrying", "err", err, "retry_in", d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// sleepOrWake waits d, until ctx is done, or until an uplink comes up (wakeUp), and reports
// whether it was not cut short by ctx.
func (c *Client) sleepOrWake(ctx context.Context, d time.Duration) bool {
	select {
	case <-c.wake: // an uplink that came up before this wait, while a session ran
	default:
	}
	return sleepCtx(ctx, d, c.wake)
}

// wakeUp cuts the current retry wait short.
func (c *Client) wakeUp() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// hasUsablePath reports whether one of s's paths is usable now.
func (c *Client) hasUsablePath(s *Session) bool {
	now := c.now()
	for _, p := range s.pathList() {
		p.mu.Lock()
		ok := p.usableLocked(now)
		p.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}
