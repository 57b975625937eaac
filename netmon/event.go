package netmon

import (
	"fmt"
	"net/netip"
)

// EventKind says what changed.
type EventKind uint8

// The kinds of [Event].
const (
	// LinkUp: the interface became usable (admin up and running) or
	// appeared in that state.
	LinkUp EventKind = iota + 1
	// LinkDown: the interface stopped being usable (admin down, carrier
	// lost) or disappeared.
	LinkDown
	// AddrAdded: the interface got a usable address.
	AddrAdded
	// AddrRemoved: the address went away (or its interface did).
	AddrRemoved
)

func (k EventKind) String() string {
	switch k {
	case LinkUp:
		return "LinkUp"
	case LinkDown:
		return "LinkDown"
	case AddrAdded:
		return "AddrAdded"
	case AddrRemoved:
		return "AddrRemoved"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one change of the view.
type Event struct {
	Kind      EventKind
	Interface string       // interface name
	Index     int          // interface index; 0 if the interface is gone
	Addr      netip.Prefix // for AddrAdded and AddrRemoved
}

func (e Event) String() string {
	if e.Kind == AddrAdded || e.Kind == AddrRemoved {
		return fmt.Sprintf("%v %s(%d) %v", e.Kind, e.Interface, e.Index, e.Addr)
	}
	return fmt.Sprintf("%v %s(%d)", e.Kind, e.Interface, e.Index)
}
