package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
)

// errPeerBye is returned by serveControl when the peer ended the session.
var errPeerBye = errors.New("peer ended the session")

// errCtrlUplinkDead is returned by serveControl when the uplink carrying the control channel
// died while another one still works: the TCP connection would take minutes to notice.
var errCtrlUplinkDead = errors.New("the control channel's uplink is dead")

// longAgo is a read deadline in the past: it makes a blocked control read return at once.
var longAgo = time.Unix(1, 0)

// serveControl reads the control channel of s on the calling goroutine (the session's only
// goroutine of its own) and returns when ctx is done, the peer says BYE or ERROR, the
// channel breaks or stays silent for controlIdleTimeout, or the session's timer stops it
// (stopControl): a KEEPALIVE failed, or (client) the channel's uplink died; or when the
// session's keys are used up (errKeysUsedUp: the caller ends the session with BYE). The
// timer sends the KEEPALIVEs (controlTimers) while the channel is served.
func (s *Session) serveControl(ctx context.Context) error {
	c := s.ctrl.Load()
	s.ctrlMu.Lock()
	s.ctrlStopErr = nil
	s.ctrlMu.Unlock()
	s.idleWatch.Store(nil)
	s.serving.Store(c)
	defer s.serving.CompareAndSwap(c, nil)
	stop := context.AfterFunc(ctx, func() { s.stopControl(c, ctx.Err()) })
	defer stop()
	for {
		// The deadline first, then the checks: a stopControl after them sets its own
		// deadline after this one.
		c.SetReadDeadline(ioDeadline(controlIdleTimeout))
		if err := s.controlStopped(ctx); err != nil {
			return s.endControl(c, err)
		}
		t, msg, err := c.recv()
		if err != nil {
			if serr := s.controlStopped(ctx); serr != nil {
				return s.endControl(c, serr)
			}
			if errors.Is(err, framing.ErrBadType) || errors.Is(err, framing.ErrTooLong) || errors.Is(err, framing.ErrBody) {
				refuseControl(c, err)
			}
			return err
		}
		switch t {
		case framing.CtrlBye:
			return errPeerBye
		case framing.CtrlError:
			return fmt.Errorf("peer error: %s", printable(msg))
		case framing.CtrlUplinks:
			if err := s.onUplinks(msg); err != nil {
				refuseControl(c, err)
				return err
			}
		}
	}
}

// refuseControl ends control connection c after a framing error (docs/PROTOCOL.md §1): the
// stream cannot be resynchronised, so the peer is sent ERROR and c is closed. The session
// is not ended by it: its data paths may carry on, and the client resumes the channel.
func refuseControl(c *ctrlConn, err error) {
	c.SetWriteDeadline(ioDeadline(time.Second))
	c.send(framing.CtrlError, []byte(framing.TruncateReason(err.Error())))
	c.Close()
}

// controlStopped is why serveControl must return now, or nil.
func (s *Session) controlStopped(ctx context.Context) error {
	select {
	case <-s.keysDone:
		return s.keysErr
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ctrlMu.Lock()
	defer s.ctrlMu.Unlock()
	return s.ctrlStopErr
}

// endControl is serveControl's return for a stop: a dead uplink's connection is closed.
func (s *Session) endControl(c *ctrlConn, err error) error {
	c.SetReadDeadline(time.Time{})
	if errors.Is(err, errCtrlUplinkDead) {
		c.Close()
	}
	return err
}

// stopControl makes serveControl of connection c return err (the first one given), if c is
// still served. Safe from any goroutine, with any lock held.
func (s *Session) stopControl(c *ctrlConn, err error) {
	s.ctrlMu.Lock()
	if s.serving.Load() == c && s.ctrlStopErr == nil {
		s.ctrlStopErr = err
	}
	s.ctrlMu.Unlock()
	c.SetReadDeadline(longAgo)
}

// sendKeepalive sends one KEEPALIVE on c, off the timer (a TLS write may block), and stops
// serving c if it fails.
func (s *Session) sendKeepalive(c *ctrlConn) {
	c.SetWriteDeadline(ioDeadline(keepaliveInterval))
	if err := c.send(framing.CtrlKeepalive, nil); err != nil {
		s.stopControl(c, err)
	}
}

// ctrlUplinkCheck reports whether every path of the control channel's uplink is dead or
// down while some path of another uplink is usable (ctrlDead), and whether every path of
// the session has failed (allFailed, Path.failedLocked). Client side only.
func (s *Session) ctrlUplinkCheck(now time.Time) (ctrlDead, allFailed bool) {
	u := s.ctrlUplink.Load()
	if u < 0 {
		return false, false
	}
	dead, otherUp := true, false
	paths := s.pathList()
	allFailed = len(paths) > 0
	for _, p := range paths {
		p.mu.Lock()
		st, usable, failed := p.live.State(), p.usableLocked(now), p.failedLocked(now)
		p.mu.Unlock()
		allFailed = allFailed && failed
		if int32(p.id>>4) == u {
			dead = dead && (st == liveness.Dead || st == liveness.Down)
		} else if usable {
			otherUp = true
		}
	}
	return dead && otherUp, allFailed
}
