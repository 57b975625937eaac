// Package path owns bondtun's UDP sockets: one per client uplink (bound to the uplink's device
// and source address, so its datagrams really leave through that uplink) and one per server
// address. Sockets move batches of datagrams with recvmmsg/sendmmsg in reused buffers and
// allocate nothing per packet.
//
// The socket layer knows nothing about sessions or crypto; package session decides what to
// send where.
package path
