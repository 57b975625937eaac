// Package netmon reports network changes — links going up or down, addresses
// appearing or disappearing — as they happen, from netlink, so that bondtun
// can mark a path down without waiting for a timeout and add, drop or rebind
// paths when uplinks come, go or are renumbered, without a restart.
//
// # Monitor
//
// [New] subscribes to link and IPv4/IPv6 address notifications in the network
// namespace of the calling thread and keeps a view of every interface: whether
// it is usable (administratively up and operationally running, so a lost
// carrier counts as down) and its addresses (tentative and DAD-failed IPv6
// addresses excluded, because a socket cannot bind them yet). [Monitor.IsUp]
// and [Monitor.Addrs] read that view; it is complete when New returns.
//
// [Monitor.Events] first reports the state at New (LinkUp for every usable
// interface, AddrAdded for every address), then every change. One goroutine
// reads netlink and never waits for the consumer: instead of queueing every
// notification, it queues the names of the interfaces and addresses that
// changed (each at most once) and, when the consumer is ready, sends the
// difference between what the consumer has been told and the current view.
// A slow consumer therefore sees intermediate states collapsed (an address
// added and removed again, or a link that went down and up again, while it
// was not reading produces no event) but never misses the latest state, and
// the memory used is bounded by the number of interfaces and addresses.
// Events are never redundant: each one changes what the consumer was told,
// and a consumer that applies every event to its own copy ends with the
// monitor's view. If the kernel drops notifications because the socket
// buffer overflowed (ENOBUFS), the monitor subscribes again and re-reads the
// full state, so the view converges again.
//
// # Uplinks
//
// [Resolve] is the pure part the session needs: from the configured uplinks
// and the view it decides which uplinks are usable and which source address
// each one binds.
//
// The monitor is Linux only; [Resolve] is portable.
package netmon
