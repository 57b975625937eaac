// Package bond is bondtun's session layer as a Go library: a message connection striped
// over several local addresses or interfaces to one peer, without a TUN device or root.
//
// Dial connects from a set of uplinks (local addresses, interfaces, or both) to a Listener;
// Listen and Accept take connections from the peers whose keys it knows. Both ends run the
// daemon's own session engine (package session): TLS 1.3 with both public keys pinned, the
// HELLO/WELCOME exchange, the wire format of docs/PROTOCOL.md, AEAD sealing, the
// scheduler that picks a path per message by its measured delivery rate and delay, loss
// repair on another path, and the reorder buffer that restores the order. Every
// (uplink × listener address) pair is a path, and a path that fails is left within about
// a tenth of a second while the others carry on.
//
// A Conn carries messages: it keeps their boundaries and their order, and may lose some
// (a message whose paths failed, or one that arrives when the reader is too far behind),
// like the tunnel's default class of traffic. WriteMessage waits while the paths' local
// queues are full, so a writer cannot outrun the links. Messages are at most
// Config.MaxMessageSize bytes (DefaultMaxMessageSize fits a 1500-byte path MTU).
//
// Who owns what: package session is the engine (one session per peer: lanes, scheduling,
// queues, repair, feedback, liveness, reorder) and its two shells' common node code;
// bondtun's daemon (cmd/bondtun) puts a TUN device on its inner side, this package a
// message queue. docs/ARCHITECTURE.md follows one message through both.
package bond
