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

// serveControl runs the control channel of s: it answers nothing but sends a KEEPALIVE
// every keepaliveInterval, and returns when ctx is done, the peer says BYE or ERROR, the
// channel breaks or stays silent for controlIdleTimeout, (client) its uplink died, or the
// session's keys are used up (errKeysUsedUp: the caller ends the session with BYE).
func (s *Session) serveControl(ctx context.Context) error {
	c := s.ctrl.Load()
	errc := make(chan error, 1)
	go func() {
		for {
			c.SetReadDeadline(time.Now().Add(controlIdleTimeout))
			t, msg, err := c.recv()
			if err != nil {
				errc <- err
				return
			}
			switch t {
			case framing.CtrlBye:
				errc <- errPeerBye
				return
			case framing.CtrlError:
				errc <- fmt.Errorf("peer error: %s", printable(msg))
				return
			}
		}
	}()
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	check := time.NewTicker(ctrlUplinkCheck)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.keysDone:
			return s.keysErr
		case err := <-errc:
			return err
		case <-check.C:
			if s.ctrlUplinkDead(time.Now()) {
				c.Close() // ends the reader
				return errCtrlUplinkDead
			}
		case <-t.C:
			c.SetWriteDeadline(time.Now().Add(keepaliveInterval))
			if err := c.send(framing.CtrlKeepalive, nil); err != nil {
				return err
			}
		}
	}
}

// ctrlUplinkDead reports whether every path of the control channel's uplink is dead or down
// while some path of another uplink is usable (client side only).
func (s *Session) ctrlUplinkDead(now time.Time) bool {
	u := s.ctrlUplink.Load()
	if u < 0 {
		return false
	}
	dead, otherUp := true, false
	for _, p := range s.pathList() {
		p.mu.Lock()
		st, usable := p.live.State(), p.usableLocked(now)
		p.mu.Unlock()
		if int32(p.id>>4) == u {
			dead = dead && (st == liveness.Dead || st == liveness.Down)
		} else if usable {
			otherUp = true
		}
	}
	return dead && otherUp
}
