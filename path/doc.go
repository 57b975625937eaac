// Package path owns bondtun's UDP sockets: one per client uplink (bound to the uplink's device
// and source address, so its datagrams really leave through that uplink) and one per server
// address. Sockets move batches of datagrams with recvmmsg/sendmmsg in reused buffers and
// allocate nothing per packet.
//
// Offloads: WriteBatch sends each run of equal-size datagrams as one UDP GSO train
// (UDP_SEGMENT) when the kernel supports it (Conn.GSO), so the stack is walked once per train
// instead of once per datagram. Receivers may turn on UDP GRO (Conn.EnableGRO) and read with
// Conn.ReadBatchGRO into GROBufferSize buffers; each message then holds up to 64 datagrams,
// which NextSegment cuts apart.
//
// The socket layer knows nothing about sessions or crypto; package session decides what to
// send where.
package path
