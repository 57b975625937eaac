// Package session is bondtun's session engine: it establishes a session with the peer over the
// TLS control channel, then moves inner packets between the inner side and the paths'
// transports. Two shells use it: the daemon puts a TUN device on the inner side (NewClient,
// NewServer; tunio.go) and carries IP packets, a lane per flow; the library (package bond)
// puts message queues there (NewMessageClient, NewMessageServer) and carries opaque messages
// in one lane. What a shell offers goes in through Client.Send or Session.SendBatch; what is
// released in order comes out through a Deliverer. Paths' datagrams go through
// path.Transport, and a node's sockets come from a path.Network (the host's, or
// internal/memnet in tests on a fake clock).
//
// Outbound (one goroutine reads the TUN, or a library writer sends):
//
//	TUN read (batch) → lane (flow hash) + lane sequence → scheduler picks a path per packet
//	→ path's local queue → window and pacer → header + inner header, AEAD seal into the
//	path's output → one sendmmsg per path, outside every lock, at the end of the entry
//	point (txout.go).
//
// Inbound (one goroutine per socket):
//
//	recvmmsg (batch) → header → session by receiver index → replay window of the path
//	(read-only check) → AEAD open in place → replay window updated → path receive counters → control frames are handled at once; data
//	packets enter the per-lane reorder buffer → packets released in order are written to
//	the TUN in one batch, outside every lock, so the kernel can coalesce them (GRO).
//
// Each session's timer, an entry in the process's timer queue (internal/timerq) rather than
// a goroutine, releases reorder gaps whose deadline passed, sends FEEDBACK (what each path
// delivered), PROBEs (path validation and liveness) and KEEPALIVEs, moves queued packets off
// a path whose rate estimate fell far below what the scheduler assumed (sched.Rebalance),
// and returns its next deadline: a tick from now while anything is active, else its next
// probe, keepalive or other idle timer (timers.go). Besides the node's TUN reader and socket receivers, a
// session's only goroutine is the one reading its TLS control channel (serveControl).
//
// Buffers: every packet lives in a fixed-size buffer from a pool, with PayloadOffset bytes of
// headroom for the header and room for the AEAD tag behind it; nothing on the data path
// allocates per packet.
//
// Clock: the engine reads the time only through its node's clock (ClientConfig.Clock,
// ServerConfig.Clock, the wall clock by default; clock.go), once per datagram batch, per
// SendBatch, per timer run and after each write of a path's output, and hands that now down; the packages under it never read a
// clock. The timer queue runs on the same clock, so a test can drive a client and a server
// by hand (manualclock_test.go).
//
// Locks, in one sentence: each path's send side is under its Path.mu and the session's
// receive side under rxMu, taken in the order recMu, rxMu, Path.mu (keyState.mu and pathsMu
// are leaves), and no lock is held across I/O. In detail: what SendBatch's one goroutine keeps (lane sequences, the scheduler's scratch) and
// what the timer callback keeps (timerState) need none; a path's send side (its local
// queues, pathstat, liveness, packet numbers, address) is under Path.mu, which the sender,
// the receivers (FEEDBACK, NACK, probe answers) and the timer all take; the receive side
// (replay windows, each path's arrival counters, the reorder buffer, lanes, NACKs to send)
// is under Session.rxMu, which only the receivers, the timer, Close and snapshots take, always
// before a Path.mu when both are held (a receive-side decision that reads a path's liveness
// or RTT). recMu is taken before either, keyState.mu and pathsMu are leaves. No lock is held
// across a transport's write or a Deliverer's call: datagrams wait in their path's output
// (txout.go), released packets in the session's delivery queue (deliverOut), until the
// entry point that produced them (SendBatch, a receive batch, a timer run) ends.
package session
