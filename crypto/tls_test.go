package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
)

func mustKey(t testing.TB) PrivateKey {
	t.Helper()
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// handshakeResult is what one side of a test handshake saw.
type handshakeResult struct {
	conn *tls.Conn
	err  error // from Handshake, or from the first Read if Handshake passed
}

// runHandshake connects client and server configs over an in-memory
// buffered pipe (see bufPipe for why not net.Pipe). Each side handshakes; a
// side whose Handshake succeeds then writes and reads one byte, so that an
// alert sent after its handshake completed (the server rejecting the client
// certificate in TLS 1.3) is observed.
func runHandshake(t *testing.T, clientCfg, serverCfg *tls.Config) (client, server handshakeResult) {
	t.Helper()
	cRaw, sRaw := bufPipe()
	t.Cleanup(func() { cRaw.Close(); sRaw.Close() })
	side := func(conn *tls.Conn, out chan<- handshakeResult) {
		err := conn.Handshake()
		if err == nil {
			if _, err = conn.Write([]byte{1}); err == nil {
				var b [1]byte
				_, err = io.ReadFull(conn, b[:])
			}
		}
		if err != nil {
			// Unblock the peer, as a real endpoint closing its socket would.
			cRaw.Close()
		}
		out <- handshakeResult{conn, err}
	}
	cc, sc := make(chan handshakeResult, 1), make(chan handshakeResult, 1)
	go side(tls.Client(cRaw, clientCfg), cc)
	go side(tls.Server(sRaw, serverCfg), sc)
	return <-cc, <-sc
}

func TestHandshake(t *testing.T) {
	serverKey, clientKey, otherKey := mustKey(t), mustKey(t), mustKey(t)
	tests := []struct {
		name          string
		clientID      PrivateKey
		pinned        PublicKey // the server key the client pins
		authorized    []PublicKey
		wantClientErr string // substring; "" means success
		wantServerErr string
	}{
		{
			name: "pinned keys accepted", clientID: clientKey, pinned: serverKey.Public(),
			authorized: []PublicKey{otherKey.Public(), clientKey.Public()},
		},
		{
			name: "wrong server key rejected by client", clientID: clientKey, pinned: otherKey.Public(),
			authorized:    []PublicKey{clientKey.Public()},
			wantClientErr: "server key " + serverKey.Public().String() + " is not the pinned key",
			wantServerErr: "bad certificate",
		},
		{
			name: "unknown client key rejected by server", clientID: otherKey, pinned: serverKey.Public(),
			authorized:    []PublicKey{clientKey.Public()},
			wantClientErr: "bad certificate",
			wantServerErr: "client key " + otherKey.Public().String() + " rejected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scfg, err := ServerTLSConfig(serverKey, AuthorizeKeys(tt.authorized...))
			if err != nil {
				t.Fatal(err)
			}
			ccfg, err := ClientTLSConfig(tt.clientID, tt.pinned)
			if err != nil {
				t.Fatal(err)
			}
			client, server := runHandshake(t, ccfg, scfg)
			checkErr(t, "client", client.err, tt.wantClientErr)
			checkErr(t, "server", server.err, tt.wantServerErr)
			if tt.wantClientErr != "" {
				return
			}
			checkPeer(t, client.conn, serverKey.Public())
			checkPeer(t, server.conn, tt.clientID.Public())
			checkDerivedKeys(t, client.conn, server.conn)
		})
	}
}

func checkErr(t *testing.T, side string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error: %v", side, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want one containing %q", side, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not contain %q", side, err, want)
	}
}

func checkPeer(t *testing.T, c *tls.Conn, want PublicKey) {
	t.Helper()
	cs := c.ConnectionState()
	if cs.NegotiatedProtocol != ALPN || cs.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %q version %x", cs.NegotiatedProtocol, cs.Version)
	}
	got, err := PeerPublicKey(cs)
	if err != nil || got != want {
		t.Errorf("PeerPublicKey = %v, %v; want %v", got, err, want)
	}
}

func checkDerivedKeys(t *testing.T, client, server *tls.Conn) {
	t.Helper()
	ccs, scs := client.ConnectionState(), server.ConnectionState()
	cSend, cRecv, err := DeriveKeys(ccs.ExportKeyingMaterial, true)
	if err != nil {
		t.Fatal(err)
	}
	sSend, sRecv, err := DeriveKeys(scs.ExportKeyingMaterial, false)
	if err != nil {
		t.Fatal(err)
	}
	if cSend != sRecv || cRecv != sSend {
		t.Fatal("client and server derived different keys")
	}
	if cSend == cRecv || cSend.Key == cRecv.Key || cSend.IV == cRecv.IV {
		t.Fatal("the two directions share key material")
	}
	// The keys must work together: client seals, server opens.
	for _, id := range []CipherID{CipherChaCha20Poly1305, CipherAES256GCM} {
		tx, err := NewAEAD(id, cSend)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := NewAEAD(id, sRecv)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("hello over the data plane")
		ct, err := tx.Seal(nil, msg, nil, 3, 9)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := rx.Open(nil, ct, nil, 3, 9)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("%v: open with derived keys: %v", id, err)
		}
	}
}

// TestNotBondtunALPN: a client that offers another protocol fails on the
// server (ALPN mismatch); one that offers none gets no protocol back and
// rejects the connection itself.
func TestNotBondtunALPN(t *testing.T) {
	serverKey, clientKey := mustKey(t), mustKey(t)
	scfg, err := ServerTLSConfig(serverKey, AuthorizeKeys(clientKey.Public()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		protos     []string
		wantClient string
		wantServer string
	}{
		{"other protocol", []string{"h2"}, "no application protocol", "unsupported application protocols"},
		// The server selects no protocol, so the client's own check fails.
		{"no ALPN", nil, "did not negotiate ALPN", "bad certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccfg, err := ClientTLSConfig(clientKey, serverKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			ccfg.NextProtos = tt.protos
			client, server := runHandshake(t, ccfg, scfg)
			checkErr(t, "client", client.err, tt.wantClient)
			checkErr(t, "server", server.err, tt.wantServer)
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	k := mustKey(t)
	if _, err := ServerTLSConfig(PrivateKey{}, AuthorizeKeys()); err == nil {
		t.Error("ServerTLSConfig accepted a zero key")
	}
	if _, err := ServerTLSConfig(k, nil); err == nil {
		t.Error("ServerTLSConfig accepted a nil authorize function")
	}
	if _, err := ClientTLSConfig(PrivateKey{}, k.Public()); err == nil {
		t.Error("ClientTLSConfig accepted a zero key")
	}
	if _, err := ClientTLSConfig(k, PublicKey{}); err == nil {
		t.Error("ClientTLSConfig accepted a zero server key")
	}
	if _, err := PeerPublicKey(tls.ConnectionState{}); err == nil {
		t.Error("PeerPublicKey accepted a state without certificates")
	}
	if err := AuthorizeKeys(k.Public())(mustKey(t).Public()); !errors.Is(err, ErrUnauthorizedKey) {
		t.Errorf("AuthorizeKeys error = %v, want ErrUnauthorizedKey", err)
	}
}

func TestDeriveKeysExporterError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		export Exporter
	}{
		{"error", func(string, []byte, int) ([]byte, error) { return nil, boom }},
		{"short", func(string, []byte, int) ([]byte, error) { return make([]byte, 10), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := DeriveKeys(tt.export, true); err == nil {
				t.Fatal("DeriveKeys succeeded")
			}
		})
	}
}

// BenchmarkHandshake is one whole TLS handshake, both sides (what a stranger who completes
// the handshake with an unknown key costs the server is roughly half of it: an X25519
// exchange, an Ed25519 signature and an Ed25519 verification); docs/SECURITY.md cites it.
func BenchmarkHandshake(b *testing.B) {
	serverKey, clientKey := mustKey(b), mustKey(b)
	sc, err := ServerTLSConfig(serverKey, func(PublicKey) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	cc, err := ClientTLSConfig(clientKey, serverKey.Public())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cRaw, sRaw := bufPipe()
		done := make(chan error, 1)
		go func() { done <- tls.Server(sRaw, sc).Handshake() }()
		if err := tls.Client(cRaw, cc).Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cRaw.Close()
		sRaw.Close()
	}
}
