package netmon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// eventBuffer is the capacity of the Events channel. Beyond it, changes
	// wait in the monitor's coalescing queue (see the package doc).
	eventBuffer = 64
	// subBuffer is the capacity of each channel the netlink library writes
	// to; the run loop drains it without waiting for the consumer.
	subBuffer = 256
	// retryEvery is how long the monitor waits before subscribing again
	// after a failed attempt.
	retryEvery = time.Second
	// dumpTries bounds the retries of a dump the kernel interrupted.
	dumpTries = 5
)

// rcvBuffer is the kernel receive buffer asked for (with CAP_NET_ADMIN) for each
// subscription socket, so bursts of notifications rarely overflow it. A
// variable so a test can make it tiny to force ENOBUFS.
var rcvBuffer = 1 << 20

// Monitor watches links and addresses of one network namespace (the calling
// thread's at [New]) through netlink. Its methods are safe for concurrent
// use. It owns one goroutine (run) plus the netlink library's reader and
// closer goroutines for its two subscriptions; [Monitor.Close] ends them all.
type Monitor struct {
	log    *slog.Logger
	ns     netns.NsHandle  // the namespace; subscriptions are opened in it
	h      *netlink.Handle // for full dumps, opened in ns
	events chan Event
	stop   chan struct{}
	resync chan struct{} // cap 1: the library reported an error
	kill   chan struct{} // test hook: break the link subscription
	wg     sync.WaitGroup
	once   sync.Once

	mu sync.RWMutex
	st *state // guarded by mu; written only by run
}

// New starts a monitor for the network namespace of the calling thread. The
// view is complete when it returns. Events starts with that state (LinkUp for
// each usable interface, AddrAdded for each address) and continues with the
// changes. log may be nil.
func New(log *slog.Logger) (*Monitor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netmon: current network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netmon: netlink handle: %w", err)
	}
	m := &Monitor{
		log:    log,
		ns:     ns,
		h:      h,
		events: make(chan Event, eventBuffer),
		stop:   make(chan struct{}),
		resync: make(chan struct{}, 1),
		kill:   make(chan struct{}),
		st:     newState(),
	}
	// Subscribe first, then dump: a change racing with the dump arrives as a
	// notification afterwards, so the view converges to the kernel's state.
	ls, err := m.subscribeLinks()
	if err != nil {
		m.closeHandles()
		return nil, err
	}
	as, err := m.subscribeAddrs()
	if err != nil {
		ls.cancel()
		drain(ls.ch)
		m.closeHandles()
		return nil, err
	}
	if err := m.resyncView(); err != nil {
		ls.cancel()
		as.cancel()
		drain(ls.ch)
		drain(as.ch)
		m.closeHandles()
		return nil, err
	}
	m.wg.Add(1)
	go m.run(ls, as)
	return m, nil
}

// Events returns the channel of changes. It is closed by Close. See the
// package doc for how a slow consumer's events are coalesced.
func (m *Monitor) Events() <-chan Event { return m.events }

// IsUp reports whether the interface exists, is administratively up and is
// running (has carrier).
func (m *Monitor) IsUp(iface string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.isUp(iface)
}

// Addrs returns the interface's usable addresses (as address/prefix length)
// in the order they appeared, or nil.
func (m *Monitor) Addrs(iface string) []netip.Prefix {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.appendAddrs(nil, iface)
}

// View returns IsUp and Addrs under one lock; it fits [Resolve].
func (m *Monitor) View(iface string) (up bool, addrs []netip.Prefix) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.isUp(iface), m.st.appendAddrs(nil, iface)
}

// Close stops the monitor and waits for its goroutines; it closes the Events
// channel. It is safe to call more than once.
func (m *Monitor) Close() error {
	m.once.Do(func() {
		close(m.stop)
		m.wg.Wait()
		m.closeHandles()
	})
	return nil
}

func (m *Monitor) closeHandles() {
	m.h.Close()
	m.ns.Close()
}

// sub is one netlink subscription: the library writes to ch until done is
// closed, then closes ch.
type sub[T any] struct {
	ch     chan T
	done   chan struct{}
	closed bool
}

func (s *sub[T]) cancel() {
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

// recv is the channel of s's notifications, or nil (never ready) when s is
// nil: a lost subscription not yet replaced.
func (s *sub[T]) recv() <-chan T {
	if s == nil {
		return nil
	}
	return s.ch
}

// closeAndDrain ends s, if it is not nil, and waits for the library to close its
// channel.
func (s *sub[T]) closeAndDrain() {
	if s != nil {
		s.cancel()
		drain(s.ch)
	}
}

// drain reads ch until the library closes it, so its goroutine can exit.
func drain[T any](ch <-chan T) {
	for range ch {
	}
}

func (m *Monitor) onError(err error) {
	select {
	case <-m.stop:
		return // the sockets are being closed
	default:
	}
	m.log.Warn("netmon: netlink subscription", "err", err)
	select {
	case m.resync <- struct{}{}:
	default:
	}
}

// rcvOptions: SO_RCVBUFFORCE needs CAP_NET_ADMIN, which `up` has whether it runs as root
// or as the service's user (configs/bondtun@.service).
func rcvOptions() (size int, force bool) {
	if hasNetAdmin() {
		return rcvBuffer, true
	}
	return 0, false
}

// hasNetAdmin reports whether the process's effective capabilities hold CAP_NET_ADMIN.
func hasNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[0].Effective&(1<<unix.CAP_NET_ADMIN) != 0
}

func (m *Monitor) subscribeLinks() (*sub[netlink.LinkUpdate], error) {
	s := &sub[netlink.LinkUpdate]{ch: make(chan netlink.LinkUpdate, subBuffer), done: make(chan struct{})}
	size, force := rcvOptions()
	err := netlink.LinkSubscribeWithOptions(s.ch, s.done, netlink.LinkSubscribeOptions{
		Namespace: &m.ns, ErrorCallback: m.onError, ListExisting: true,
		ReceiveBufferSize: size, ReceiveBufferForceSize: force,
	})
	if err != nil {
		close(s.done)
		return nil, fmt.Errorf("netmon: subscribe to links: %w", err)
	}
	return s, nil
}

func (m *Monitor) subscribeAddrs() (*sub[netlink.AddrUpdate], error) {
	s := &sub[netlink.AddrUpdate]{ch: make(chan netlink.AddrUpdate, subBuffer), done: make(chan struct{})}
	size, force := rcvOptions()
	err := netlink.AddrSubscribeWithOptions(s.ch, s.done, netlink.AddrSubscribeOptions{
		Namespace: &m.ns, ErrorCallback: m.onError, ListExisting: true,
		ReceiveBufferSize: size, ReceiveBufferForceSize: force,
	})
	if err != nil {
		close(s.done)
		return nil, fmt.Errorf("netmon: subscribe to addresses: %w", err)
	}
	return s, nil
}

// resyncView replaces the view with a full dump of links and addresses.
func (m *Monitor) resyncView() error {
	var (
		links []netlink.Link
		addrs []netlink.Addr
		err   error
	)
	for range dumpTries {
		links, err = m.h.LinkList()
		if err == nil {
			addrs, err = m.h.AddrList(nil, netlink.FAMILY_ALL)
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("netmon: dump: %w", err)
	}
	li := make([]linkInfo, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		li = append(li, linkInfo{index: a.Index, name: a.Name, up: linkUp(a.RawFlags)})
	}
	ai := make([]addrInfo, 0, len(addrs))
	for _, a := range addrs {
		if p, ok := usablePrefix(a.IPNet, a.Flags); ok {
			ai = append(ai, addrInfo{index: a.LinkIndex, addr: p})
		}
	}
	m.mu.Lock()
	m.st.replace(li, ai)
	m.mu.Unlock()
	return nil
}

// linkUp: administratively up and running (operationally up, carrier on).
func linkUp(flags uint32) bool {
	const want = unix.IFF_UP | unix.IFF_RUNNING
	return flags&want == want
}

// usablePrefix converts a netlink address; tentative (DAD in progress) and
// DAD-failed addresses are not usable.
func usablePrefix(n *net.IPNet, flags int) (netip.Prefix, bool) {
	if n == nil || flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
		return netip.Prefix{}, false
	}
	return ipNetPrefix(*n)
}

func ipNetPrefix(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		if bits == 128 && a.Is4() && ones >= 96 { // a 16-byte mask on an IPv4 address
			ones -= 96
		} else {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(a, ones), true
}

func (m *Monitor) applyLink(u netlink.LinkUpdate) {
	a := u.Attrs()
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.Header.Type == unix.RTM_DELLINK {
		m.st.delLink(int(u.Index))
		return
	}
	m.st.setLink(int(u.Index), a.Name, linkUp(u.Flags))
}

func (m *Monitor) applyAddr(u netlink.AddrUpdate) {
	p, ok := ipNetPrefix(u.LinkAddress)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.NewAddr && u.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
		m.st.addAddr(u.LinkIndex, p)
	} else {
		m.st.delAddr(u.LinkIndex, p)
	}
}

// run owns the subscriptions: it applies notifications to the view and
// hands events to the consumer when it is ready, never waiting for it.
func (m *Monitor) run(ls *sub[netlink.LinkUpdate], as *sub[netlink.AddrUpdate]) {
	defer m.wg.Done()
	defer close(m.events)
	m.log.Debug("netmon: run started")
	defer m.log.Debug("netmon: run stopped")
	var retry <-chan time.Time
	for {
		ev, out := m.pending()
		select {
		case u, open := <-ls.recv():
			if open {
				m.applyLink(u)
				continue
			}
			ls.cancel() // closes the dead socket
			ls = nil
			retry = time.After(0)
		case u, open := <-as.recv():
			if open {
				m.applyAddr(u)
				continue
			}
			as.cancel()
			as = nil
			retry = time.After(0)
		case out <- ev:
			m.mu.Lock()
			m.st.commit(ev)
			m.mu.Unlock()
		case <-m.resync:
			m.resyncOrRetry(&retry)
		case <-retry:
			retry = nil
			m.resubscribe(&ls, &as, &retry)
		case <-m.kill:
			if ls != nil {
				ls.cancel()
			}
		case <-m.stop:
			ls.closeAndDrain()
			as.closeAndDrain()
			return
		}
	}
}

// pending returns the next event for the consumer and the channel to hand it
// to, or a nil channel (never ready) when there is none.
func (m *Monitor) pending() (Event, chan<- Event) {
	m.mu.Lock()
	ev, ok := m.st.next()
	m.mu.Unlock()
	if !ok {
		return ev, nil
	}
	return ev, m.events
}

// resubscribe replaces lost subscriptions and re-reads the full state,
// since notifications may have been lost; on failure it retries later.
func (m *Monitor) resubscribe(ls **sub[netlink.LinkUpdate], as **sub[netlink.AddrUpdate], retry *<-chan time.Time) {
	var err error
	if *ls == nil {
		*ls, err = m.subscribeLinks()
	}
	if err == nil && *as == nil {
		*as, err = m.subscribeAddrs()
	}
	if err != nil {
		m.log.Warn("netmon: subscribe again", "err", err, "retry", retryEvery)
		*retry = time.After(retryEvery)
		return
	}
	m.log.Info("netmon: subscribed again; re-reading links and addresses")
	m.resyncOrRetry(retry)
}

func (m *Monitor) resyncOrRetry(retry *<-chan time.Time) {
	if err := m.resyncView(); err != nil {
		m.log.Warn("netmon: re-read links and addresses", "err", err, "retry", retryEvery)
		*retry = time.After(retryEvery)
	}
}
