package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// ProtocolVersion is the version of docs/PROTOCOL.md this package speaks.
const ProtocolVersion = 1

// ErrRejected wraps errors that retrying soon will not fix: the peer is not bondtun (it does
// not speak TLS), its key is not the pinned one, or it refused us. A one-shot caller
// (Connect) gives up on them; a client that runs unattended (Run) gives up only on the
// authenticated ones, ErrRefused.
var ErrRejected = errors.New("rejected")

// ErrRefused wraps the refusals a peer has authenticated, which end Run: the server proved
// it holds a key other than the pinned one, or the server with the pinned key refused this
// client's key (a TLS alert under the keys of the verified handshake), or answered HELLO
// with ERROR or with something this client cannot speak (protocol version, cipher).
// Nothing an on-path attacker can forge without a key leads here: a reset, a close or
// garbage during the handshake are transient. Every error wrapping ErrRefused also wraps
// ErrRejected.
var ErrRefused error = refusedError{}

type refusedError struct{}

func (refusedError) Error() string        { return "refused" }
func (refusedError) Is(target error) bool { return target == ErrRejected }

// ctrlConn is the control channel after the TLS handshake.
type ctrlConn struct {
	*tls.Conn
	rhdr [framing.CtrlHeaderLen]byte
	rbuf []byte     // grown by the first message with a body: KEEPALIVEs need none
	wmu  sync.Mutex // keepalives and BYE may be sent from different goroutines
	wbuf []byte
}

func (c *ctrlConn) send(t framing.CtrlType, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = framing.AppendCtrl(c.wbuf[:0], t, body)
	_, err := c.Write(c.wbuf)
	return err
}

func (c *ctrlConn) recv() (framing.CtrlType, []byte, error) {
	return framing.ReadCtrlGrow(c.Conn, &c.rhdr, &c.rbuf)
}

// dropHandshakeBuffers lets go of the buffers the HELLO and WELCOME grew: the messages that
// follow are rare and mostly empty.
func (c *ctrlConn) dropHandshakeBuffers() {
	c.rbuf = nil
	c.wmu.Lock()
	c.wbuf = nil
	c.wmu.Unlock()
}

// clientTLS runs the client's TLS handshake over raw, with a deadline of handshakeTimeout
// or ctx's, whichever comes first (the caller clears it).
func clientTLS(ctx context.Context, raw net.Conn, cfg *tls.Config) (*ctrlConn, error) {
	deadline := ioDeadline(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	raw.SetDeadline(deadline)
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, classifyTLSError(err)
	}
	return &ctrlConn{Conn: tc}, nil
}

// clientResume runs TLS over raw, sends RESUME and waits for the server's KEEPALIVE. An
// ERROR answer (no such session) is ErrRejected, a refusal of our key ErrRefused.
func clientResume(ctx context.Context, raw net.Conn, cfg *tls.Config, r framing.Resume) (*ctrlConn, error) {
	c, err := clientTLS(ctx, raw, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.send(framing.CtrlResume, r.Append(nil)); err != nil {
		return nil, fmt.Errorf("send RESUME: %w", err)
	}
	t, msg, err := c.recv()
	switch {
	case err != nil && isRemoteAlert(err):
		return nil, fmt.Errorf("%w: the server refused this client's key (%v): is this client's public key among the server's peers?", ErrRefused, err)
	case err != nil:
		return nil, fmt.Errorf("read RESUME answer: %w", err)
	case t == framing.CtrlError:
		return nil, fmt.Errorf("%w by server: %s", ErrRejected, printable(msg))
	case t != framing.CtrlKeepalive:
		return nil, fmt.Errorf("%w: server answered RESUME with control message %d", ErrRejected, t)
	}
	raw.SetDeadline(time.Time{})
	return c, nil
}

// clientHandshake runs TLS over raw, sends HELLO and waits for WELCOME.
func clientHandshake(ctx context.Context, raw net.Conn, cfg *tls.Config, hello *framing.Hello) (*ctrlConn, framing.Welcome, crypto.DirectionKeys, crypto.DirectionKeys, error) {
	var none crypto.DirectionKeys
	c, err := clientTLS(ctx, raw, cfg)
	if err != nil {
		return nil, framing.Welcome{}, none, none, err
	}
	tc := c.Conn
	body, err := hello.Append(nil)
	if err != nil {
		return nil, framing.Welcome{}, none, none, err
	}
	if err := c.send(framing.CtrlHello, body); err != nil {
		return nil, framing.Welcome{}, none, none, fmt.Errorf("send HELLO: %w", err)
	}
	t, msg, err := c.recv()
	if err != nil {
		// In TLS 1.3 the server checks our certificate after our side of the handshake is
		// done, so its refusal arrives here, as an alert.
		if isRemoteAlert(err) {
			return nil, framing.Welcome{}, none, none, fmt.Errorf("%w: the server refused this client's key (%v): is this client's public key among the server's peers?", ErrRefused, err)
		}
		return nil, framing.Welcome{}, none, none, fmt.Errorf("read WELCOME: %w", err)
	}
	switch t {
	case framing.CtrlWelcome:
	case framing.CtrlError:
		return nil, framing.Welcome{}, none, none, fmt.Errorf("%w by server: %s", ErrRefused, printable(msg))
	default:
		return nil, framing.Welcome{}, none, none, fmt.Errorf("%w: incompatible server: it sent control message %d instead of WELCOME", ErrRefused, t)
	}
	w, err := framing.ParseWelcome(msg)
	if err != nil || w.Version != ProtocolVersion {
		if w.Version != ProtocolVersion && (err == nil || errors.Is(err, framing.ErrVersion)) {
			// ParseWelcome reads no further than a foreign version: name both.
			return nil, framing.Welcome{}, none, none, fmt.Errorf("%w: incompatible server: it speaks protocol version %d, we speak %d", ErrRefused, w.Version, ProtocolVersion)
		}
		return nil, framing.Welcome{}, none, none, fmt.Errorf("%w: incompatible server: bad WELCOME: %v", ErrRefused, err)
	}
	if !slices.Contains(hello.Ciphers, w.Cipher) {
		return nil, framing.Welcome{}, none, none, fmt.Errorf("%w: incompatible server: it chose cipher %d, which we did not offer", ErrRefused, w.Cipher)
	}
	cs := tc.ConnectionState()
	send, recv, err := crypto.DeriveKeys(cs.ExportKeyingMaterial, true)
	if err != nil {
		return nil, framing.Welcome{}, none, none, err
	}
	raw.SetDeadline(time.Time{})
	return c, w, send, recv, nil
}

// classifyTLSError marks TLS handshake failures that are about identity or protocol as
// ErrRejected, and explains the common ones. Only a server key other than the pinned one is
// ErrRefused: the server proved it holds that key (CertificateVerify). Everything else here
// happens before the server is authenticated, so anyone on the path could cause it, and a
// bondtun server causes some of it too: it closes the connection when its handshake slots
// are full (admit.go), and a restarting one resets it. A closed connection is therefore a
// transient fault, as is a timeout.
func classifyTLSError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("TLS handshake timed out (is the peer a bondtun server?): %w", err)
	}
	if isVerifyError(err) {
		return fmt.Errorf("%w: the server's key is not the configured one (peers[0].public_key): %v", ErrRefused, err)
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) {
		return fmt.Errorf("%w: the peer does not speak TLS, so it is not a bondtun server: %v", ErrRejected, err)
	}
	var ae tls.AlertError
	if errors.As(err, &ae) || isRemoteAlert(err) {
		return fmt.Errorf("%w: TLS handshake failed: %v", ErrRejected, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("the server closed the connection during the TLS handshake (busy, restarting, or not a bondtun server): %w", err)
	}
	return fmt.Errorf("TLS handshake: %w", err)
}

func isVerifyError(err error) bool {
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ve) || errors.Is(err, crypto.ErrUnauthorizedKey)
}

// printable returns b as a short string with control characters replaced, for logs.
func printable(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	r := []rune(string(b))
	for i, c := range r {
		if c < 0x20 || c == 0x7f {
			r[i] = '?'
		}
	}
	return string(r)
}

// isRemoteAlert reports whether err is a TLS alert sent by the peer.
func isRemoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}
