package session

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// TestControlChannelResumed: when the control connection breaks, the client moves it to a
// new connection and keeps its session (same keys, same paths) instead of opening another.
func TestControlChannelResumed(t *testing.T) {
	tp := newTestPair(t)
	s := tp.client.Session()
	old := s.ctrl.Load()
	before := tp.server.Snapshot()
	old.Close() // the connection breaks
	waitFor(t, "a resumed control channel", func() bool {
		c := s.ctrl.Load()
		return c != old && tp.client.Session() == s
	})
	if tp.client.Session() != s {
		t.Fatal("the client replaced its session")
	}
	after := tp.server.Snapshot()
	if len(after.Sessions) != 1 || len(before.Sessions) != 1 {
		t.Fatalf("server has %d sessions (had %d)", len(after.Sessions), len(before.Sessions))
	}
	ping := tuntest.Ping(serverInner, clientInner)
	tp.clientTUN.Outbound <- ping
	if got := recvPacket(t, tp.fromServerTUN); !bytes.Equal(got, ping) {
		t.Fatalf("server got % x, want % x", got, ping)
	}
	// The new channel works: the server hears the client's BYE on it at shutdown, and a
	// keepalive now does not fail.
	if err := s.ctrl.Load().send(framing.CtrlKeepalive, nil); err != nil {
		t.Fatalf("keepalive on the resumed channel: %v", err)
	}
}

// TestResumeUnknownSessionRejected: a RESUME naming another session (even by the right peer)
// is refused, and the peer's session stays as it was.
func TestResumeUnknownSessionRejected(t *testing.T) {
	tp := newTestPair(t)
	s := tp.client.Session()
	tlsCfg, err := crypto.ClientTLSConfig(tp.clientKey, tp.serverKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.server.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = clientResume(ctx, raw, tlsCfg, framing.Resume{ServerIndex: s.remote + 1, ClientIndex: s.local})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("resume of a wrong session: err = %v, want ErrRejected", err)
	}
	if tp.client.Session() != s || s.closed.Load() {
		t.Fatal("the session changed")
	}
	ping := tuntest.Ping(serverInner, clientInner)
	tp.clientTUN.Outbound <- ping
	if got := recvPacket(t, tp.fromServerTUN); !bytes.Equal(got, ping) {
		t.Fatalf("server got % x, want % x", got, ping)
	}
}

// TestRunCanceledSaysBye: a client whose Run begins with its context already done (a
// library Conn closed right after Dial, before Run's goroutine got to its loop; a daemon
// stopped right after connecting) still ends its session with BYE, so the server does not
// keep it until the peer's silence times out.
func TestRunCanceledSaysBye(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tp := &testPair{cancel: cancel}
	defer tp.stop()
	tp.clientKey = newKey(t)
	startServer(t, ctx, tp, tp.clientKey.Public())
	newClient(t, tp, tp.serverKey.Public())
	if err := tp.client.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// The server may register the session just after its WELCOME reaches the client.
	waitFor(t, "the server to hold the session", func() bool { return len(tp.server.Snapshot().Sessions) == 1 })
	done, stop := context.WithCancel(context.Background())
	stop()
	if err := tp.client.Run(done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFor(t, "the server to end the session after the client's Run", func() bool { return len(tp.server.Snapshot().Sessions) == 0 })
}
