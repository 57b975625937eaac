package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ALPN is the application protocol both sides of the control channel
// negotiate; a peer that does not speak it fails the handshake.
const ALPN = "github.com/bondtun/bondtun/1"

// ErrUnauthorizedKey is wrapped by the errors of a handshake that met a peer
// key that is not pinned (client side) or not authorized (server side, when
// the authorize function returns it, as [AuthorizeKeys] does).
var ErrUnauthorizedKey = errors.New("peer key not authorized")

// Fixed validity bounds: nobody checks them (there is no CA and no chain
// verification), and fixed values keep the package free of clock reads.
// 9999-12-31 is RFC 5280's "no well-defined expiration date".
var (
	certNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// AuthorizeKeys returns an authorize function for [ServerTLSConfig] that
// accepts exactly the given keys. A server whose peer set changes at run
// time passes its own function instead.
func AuthorizeKeys(keys ...PublicKey) func(PublicKey) error {
	set := make(map[PublicKey]struct{}, len(keys))
	for _, k := range keys {
		set[k] = struct{}{}
	}
	return func(k PublicKey) error {
		if _, ok := set[k]; !ok {
			return ErrUnauthorizedKey
		}
		return nil
	}
}

// ServerTLSConfig returns the control channel's server configuration: TLS
// 1.3 only, ALPN [ALPN], a self-signed certificate for id, and a client
// certificate required and accepted only if authorize returns nil for its
// Ed25519 key. A rejected client fails the handshake on the server with an
// error naming its key, and receives a bad_certificate alert.
//
// Session tickets are disabled: the control connection is long-lived, and
// without resumption every connection proves possession of the key.
func ServerTLSConfig(id PrivateKey, authorize func(PublicKey) error) (*tls.Config, error) {
	if authorize == nil {
		return nil, errors.New("crypto: ServerTLSConfig: nil authorize function")
	}
	cert, err := selfSignedCert(id)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		NextProtos:             []string{ALPN},
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer, err := verifyCommon(cs)
			if err != nil {
				return err
			}
			if err := authorize(peer); err != nil {
				return fmt.Errorf("crypto: client key %s rejected: %w", peer, err)
			}
			return nil
		},
	}, nil
}

// ClientTLSConfig returns the control channel's client configuration: TLS
// 1.3 only, ALPN [ALPN], a self-signed certificate for id, and the server
// accepted only if its certificate's Ed25519 key equals server.
//
// InsecureSkipVerify is set because there is no CA to verify a chain
// against; VerifyConnection does the real check (the pinned key), and
// TLS's CertificateVerify message proves the server holds that key.
//
// In TLS 1.3 the client finishes its side of the handshake before the server
// checks the client's certificate, so a client that the server rejects sees
// the server's alert on its first read, not from Handshake.
func ClientTLSConfig(id PrivateKey, server PublicKey) (*tls.Config, error) {
	if server == (PublicKey{}) {
		return nil, errors.New("crypto: ClientTLSConfig: zero server key")
	}
	cert, err := selfSignedCert(id)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		NextProtos:         []string{ALPN},
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer, err := verifyCommon(cs)
			if err != nil {
				return err
			}
			if peer != server {
				return fmt.Errorf("crypto: server key %s is not the pinned key %s: %w",
					peer, server, ErrUnauthorizedKey)
			}
			return nil
		},
	}, nil
}

// verifyCommon checks what both sides require of a connection and returns
// the peer's key.
func verifyCommon(cs tls.ConnectionState) (PublicKey, error) {
	if cs.Version != tls.VersionTLS13 {
		return PublicKey{}, errors.New("crypto: peer did not negotiate TLS 1.3")
	}
	if cs.NegotiatedProtocol != ALPN {
		return PublicKey{}, fmt.Errorf("crypto: peer did not negotiate ALPN %q", ALPN)
	}
	return PeerPublicKey(cs)
}

// PeerPublicKey returns the Ed25519 key of the peer's leaf certificate.
// After a successful handshake with this package's configurations it is the
// authenticated identity of the peer.
func PeerPublicKey(cs tls.ConnectionState) (PublicKey, error) {
	if len(cs.PeerCertificates) == 0 {
		return PublicKey{}, errors.New("crypto: peer sent no certificate")
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != KeySize {
		return PublicKey{}, errors.New("crypto: peer certificate key is not Ed25519")
	}
	return PublicKey(pub), nil
}

// selfSignedCert builds the certificate a side presents: self-signed, its
// key being the side's identity. Only the key matters to the peer.
func selfSignedCert(id PrivateKey) (tls.Certificate, error) {
	if id.IsZero() {
		return tls.Certificate{}, errors.New("crypto: zero private key")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("crypto: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "bondtun " + id.Public().String()},
		NotBefore:    certNotBefore,
		NotAfter:     certNotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	priv := id.ed25519()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("crypto: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("crypto: parsing own certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, nil
}
