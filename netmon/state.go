package netmon

import (
	"net/netip"
	"slices"
)

// linkState is one interface as the kernel last described it.
type linkState struct {
	name  string // "" until a link message names it
	up    bool
	addrs []netip.Prefix // in the order they appeared
}

// key names one thing the consumer is told about: a link (addr invalid) or
// an address on a link, both by interface name.
type key struct {
	name string
	addr netip.Prefix
}

// state is the pure core of [Monitor]: the current view of the kernel's
// interfaces, what the consumer has been told so far, and the queue of keys
// that may differ between the two. It has no goroutines, clocks or I/O and is
// not safe for concurrent use; Monitor guards it with its mutex.
//
// Updates never block and never drop anything: they change the view and
// enqueue the affected keys (each at most once). [state.next] computes the
// event for the first key whose told state differs from the view, so a key
// that changed and changed back produces nothing, and the queue never holds
// more than about twice the number of keys in the view and the told state.
type state struct {
	links map[int]*linkState // by interface index
	names map[string]int     // interface name → index

	sentUp    map[string]struct{} // links the consumer was told are up
	sentAddrs map[key]struct{}    // addresses the consumer was told about

	queue     []key // pending keys are queue[head:]
	head      int
	queued    map[key]struct{}
	compactAt int
}

func newState() *state {
	return &state{
		links:     map[int]*linkState{},
		names:     map[string]int{},
		sentUp:    map[string]struct{}{},
		sentAddrs: map[key]struct{}{},
		queued:    map[key]struct{}{},
		compactAt: 64,
	}
}

// enqueue adds k to the queue unless it is already there.
func (s *state) enqueue(k key) {
	if k.name == "" {
		return
	}
	if _, ok := s.queued[k]; ok {
		return
	}
	s.queued[k] = struct{}{}
	if s.head > 32 && s.head > len(s.queue)/2 { // reuse the consumed front
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	s.queue = append(s.queue, k)
	if len(s.queue)-s.head > s.compactAt {
		s.compact()
	}
}

// enqueueLink enqueues l's link key and all its address keys.
func (s *state) enqueueLink(l *linkState) {
	s.enqueue(key{name: l.name})
	for _, p := range l.addrs {
		s.enqueue(key{name: l.name, addr: p})
	}
}

// compact drops queued keys whose told state already equals the view.
func (s *state) compact() {
	q := s.queue[:0]
	for _, k := range s.queue[s.head:] {
		if _, differs := s.eventFor(k); differs {
			q = append(q, k)
		} else {
			delete(s.queued, k)
		}
	}
	clear(s.queue[len(q):])
	s.queue, s.head = q, 0
	s.compactAt = 2*len(q) + 64
}

// setLink records that interface index is called name and is up or not.
func (s *state) setLink(index int, name string, up bool) {
	l := s.links[index]
	if l == nil {
		l = &linkState{}
		s.links[index] = l
	}
	if l.name != name {
		if l.name != "" { // renamed: the old name goes away
			s.enqueueLink(l)
			delete(s.names, l.name)
		}
		if old, ok := s.names[name]; ok && old != index {
			// The name belonged to another index whose removal we missed.
			if ol := s.links[old]; ol != nil {
				s.enqueueLink(ol)
				delete(s.links, old)
			}
		}
		l.name = name
		s.names[name] = index
		s.enqueueLink(l)
	}
	if l.up != up {
		l.up = up
		s.enqueue(key{name: name})
	}
}

// delLink records that interface index is gone, with its addresses.
func (s *state) delLink(index int) {
	l := s.links[index]
	if l == nil {
		return
	}
	s.enqueueLink(l)
	delete(s.links, index)
	if l.name != "" && s.names[l.name] == index {
		delete(s.names, l.name)
	}
}

// addAddr records address p on interface index.
func (s *state) addAddr(index int, p netip.Prefix) {
	l := s.links[index]
	if l == nil { // address seen before its link: the name comes later
		l = &linkState{}
		s.links[index] = l
	}
	if !slices.Contains(l.addrs, p) {
		l.addrs = append(l.addrs, p)
		s.enqueue(key{name: l.name, addr: p})
	}
}

// delAddr records that address p left interface index.
func (s *state) delAddr(index int, p netip.Prefix) {
	l := s.links[index]
	if l == nil {
		return
	}
	if i := slices.Index(l.addrs, p); i >= 0 {
		l.addrs = slices.Delete(l.addrs, i, i+1)
		s.enqueue(key{name: l.name, addr: p})
	}
}

// linkInfo and addrInfo are one entry of a full dump.
type linkInfo struct {
	index int
	name  string
	up    bool
}

type addrInfo struct {
	index int
	addr  netip.Prefix
}

// replace makes the view exactly the given dump, enqueueing every key that
// may have changed. It is how the monitor resynchronises after the kernel
// dropped notifications.
func (s *state) replace(links []linkInfo, addrs []addrInfo) {
	for _, l := range s.links {
		s.enqueueLink(l)
	}
	clear(s.links)
	clear(s.names)
	for _, li := range links {
		s.setLink(li.index, li.name, li.up)
	}
	for _, a := range addrs {
		s.addAddr(a.index, a.addr)
	}
	for _, l := range s.links {
		s.enqueueLink(l)
	}
}

// byName returns the named interface and its index, or nil.
func (s *state) byName(name string) (*linkState, int) {
	i, ok := s.names[name]
	if !ok {
		return nil, 0
	}
	return s.links[i], i
}

// eventFor returns the event that brings the consumer's told state for k to
// the view, and whether there is one.
func (s *state) eventFor(k key) (Event, bool) {
	l, index := s.byName(k.name)
	ev := Event{Interface: k.name, Index: index, Addr: k.addr}
	if !k.addr.IsValid() {
		up := l != nil && l.up
		_, told := s.sentUp[k.name]
		if up == told {
			return Event{}, false
		}
		ev.Kind = LinkDown
		if up {
			ev.Kind = LinkUp
		}
		return ev, true
	}
	has := l != nil && slices.Contains(l.addrs, k.addr)
	_, told := s.sentAddrs[k]
	if has == told {
		return Event{}, false
	}
	ev.Kind = AddrRemoved
	if has {
		ev.Kind = AddrAdded
	}
	return ev, true
}

// next returns the next event for the consumer without consuming it; call
// [state.commit] once it was delivered. Keys with nothing to tell are dropped
// on the way.
func (s *state) next() (Event, bool) {
	for s.head < len(s.queue) {
		if ev, ok := s.eventFor(s.queue[s.head]); ok {
			return ev, true
		}
		s.pop()
	}
	return Event{}, false
}

// commit records ev, the event last returned by next, as told.
func (s *state) commit(ev Event) {
	k := key{name: ev.Interface, addr: ev.Addr}
	switch ev.Kind {
	case LinkUp:
		s.sentUp[k.name] = struct{}{}
	case LinkDown:
		delete(s.sentUp, k.name)
	case AddrAdded:
		s.sentAddrs[k] = struct{}{}
	case AddrRemoved:
		delete(s.sentAddrs, k)
	}
	if s.head < len(s.queue) && s.queue[s.head] == k {
		s.pop()
	}
}

func (s *state) pop() {
	delete(s.queued, s.queue[s.head])
	s.queue[s.head] = key{}
	s.head++
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	}
}

// isUp reports whether the named interface is up.
func (s *state) isUp(name string) bool {
	l, _ := s.byName(name)
	return l != nil && l.up
}

// appendAddrs appends the named interface's addresses to dst.
func (s *state) appendAddrs(dst []netip.Prefix, name string) []netip.Prefix {
	l, _ := s.byName(name)
	if l == nil {
		return dst
	}
	return append(dst, l.addrs...)
}
