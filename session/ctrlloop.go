package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bondtun/framing"
)

// errPeerBye is returned by serveControl when the peer ended the session.
var errPeerBye = errors.New("peer ended the session")

// serveControl runs the control channel of s: it answers nothing but sends a KEEPALIVE
// every keepaliveInterval, and returns when ctx is done, the peer says BYE or ERROR, or the
// channel breaks or stays silent for controlIdleTimeout.
func (s *Session) serveControl(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		for {
			s.ctrl.SetReadDeadline(time.Now().Add(controlIdleTimeout))
			t, msg, err := s.ctrl.recv()
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
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-t.C:
			s.ctrl.SetWriteDeadline(time.Now().Add(keepaliveInterval))
			if err := s.ctrl.send(framing.CtrlKeepalive, nil); err != nil {
				return err
			}
		}
	}
}
