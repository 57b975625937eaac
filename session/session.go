package session

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bondtun/bondtun/aqm"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/timerq"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/pathstat"
	"github.com/bondtun/bondtun/reorder"
	"github.com/bondtun/bondtun/sched"
)

// Deliverer receives the inner packets a session releases in order: pkts[i] is one packet.
// It must not keep the slices after it returns. A session calls it outside its locks, one
// call at a time; the sessions of a node share theirs, so it must be safe for concurrent
// use.
type Deliverer interface {
	Deliver(pkts [][]byte)
}

// sessionParams is what both sides know once the HELLO exchange is done.
type sessionParams struct {
	log         *slog.Logger
	peerName    string
	localIndex  uint16
	remoteIndex uint16
	cipher      crypto.CipherID
	send, recv  crypto.DirectionKeys
	allowed     []netip.Prefix // inner source prefixes accepted from the peer
	scheduler   string
	deliver     Deliverer
	isServer    bool
	clock       func() time.Time
	messages    bool            // opaque messages in one lane, not IP packets (the library)
	timers      *timerq.Queue   // nil: the process's queue
	limits      crypto.Limits   // key usage limits; zero fields: the cipher's (tests set small ones)
	keyUpdate   bool            // both ends announced framing.CapKeyUpdate (rekey.go)
	exporter    crypto.Exporter // the TLS session's, for the key update secrets
	rekey       rekeyConfig     // tests: key update interval and overlap (zero: the defaults)
}

// Session is one established session with a peer: keys, paths, scheduler, reorder buffer.
type Session struct {
	log        *slog.Logger
	peerName   string
	isServer   bool
	messages   bool // opaque messages in lane 0, not IP packets: no flow lanes, no allowed_ips
	cipherName string
	local      uint16                         // receiver index the peer puts in datagrams to us
	remote     uint16                         // receiver index we put in datagrams to the peer
	keys       keyState                       // the data keys and their update (rekey.go)
	allowed    atomic.Pointer[[]netip.Prefix] // a server's reload may change it (SetPeers)
	deliver    Deliverer
	now        func() time.Time // the node's clock (clock.go)
	epoch      time.Time
	scheduler  sched.Scheduler

	pathsMu sync.Mutex
	paths   atomic.Pointer[[]*Path] // copy on write; indexed lookups go through byID
	byID    atomic.Pointer[[]*Path] // copy on write: index = path id, length = highest id + 1

	// Outbound state, owned by the one goroutine that calls SendBatch.
	txLanes       *txLanes // allocated by the first SendBatch: an idle session holds none
	txOrder       uint64   // next packetBuf.order
	schedPaths    []sched.Path
	schedIdx      []*Path
	schedFallback []bool         // per schedPaths entry: may carry data when no path is usable
	schedTimes    [][2]time.Time // per schedPaths entry: its Path's usableAt and measuredAt
	pending       [][]*packetBuf // packets of this batch per schedPaths entry

	// Inbound state.
	rxMu      sync.Mutex
	reorder   *reorder.Buffer[*packetBuf]
	rxLanes   *rxLanes // allocated by the first data packet received
	rxTS      uint64   // latest extended sender timestamp (100 µs units)
	rxTSValid bool
	rxBase    time.Time
	nacks     *[maxNacks]framing.Nack // allocated by the first loss
	nackN     int
	nackAgain []byte               // NACK frames the timer sends a second time (sendReports)
	dq        outQueue[*packetBuf] // released by the reorder buffer, for deliverOut (receive.go)
	pkts      [][]byte             // the delivering goroutine's views
	lastAuth  atomic.Int64         // unix nanos of the last authenticated datagram
	lastData  atomic.Int64         // unix nanos of the last data packet sent or received (idle probing)
	// keepCopies is how long a reported packet's copy is kept for a NACK still on its way
	// (forgetUpToLocked), in ns: twice the slowest usable path's SRTT, and repairMargin. A
	// path's SRTT is its forward delay and the fastest path's return; a NACK's spare copy
	// comes back on a slower path, after the lost packet's own forward delay.
	keepCopies atomic.Int64

	ctrl       atomic.Pointer[ctrlConn] // the control channel (a RESUME replaces it)
	ctrlUplink atomic.Int32             // client: the uplink carrying ctrl; -1 on the server
	sendsTiers bool                     // the client tells the server its paths' tiers (PATH_STATUS)
	// Uplinks that change during the session (uplinkset.go): both ends announced
	// framing.CapUplinks; the paths of a new uplink id (nil: none can be added); and
	// (client) the uplink ids removed, whose paths stay, disabled, and are not shown.
	uplinksCap     bool
	newUplinkPaths func(id uint8, name string) []*Path
	retired        atomic.Uint32
	// serving is the control connection serveControl reads now (nil: none); ctrlStopErr
	// is why it must return (stopControl), guarded by ctrlMu.
	serving     atomic.Pointer[ctrlConn]
	ctrlMu      sync.Mutex
	ctrlStopErr error
	idleWatch   atomic.Pointer[idleWatch] // server: armed while the control channel is lost
	// Client: ups counts the paths' transitions to Up; onAllFailed, if set, is called by
	// the timer when every path has just failed (follow.go).
	ups         atomic.Uint32
	onAllFailed func()

	// The timer (timers.go): its entry in the process's queue, the callback's own state,
	// whether a path's liveness changed since the live set was updated, and (under rxMu)
	// whether the receive path has something for it.
	timer     atomic.Pointer[timerq.Entry]
	tq        *timerq.Queue // the queue the timer is in; nil: the process's (timers)
	tm        timerState
	liveDirty atomic.Bool
	rxPending bool

	recMu sync.Mutex // guards rec; taken before rxMu and Path.mu
	rec   recorder   // the flight recorder (recorder.go)

	counters Counters
	moveLog  rateLimit // path moves are logged at most once a second
	closed   atomic.Bool

	// keysDone is closed when a key of the session may not be used any more (packet
	// numbers, confidentiality or integrity limit): serveControl (or the idle watch) then ends the session,
	// and the client opens a new one with new keys. keysErr says why.
	keysDone chan struct{}
	keysOnce sync.Once
	keysErr  error
}

// txLanes is the sender's state per lane: the next lane sequence, and the last inner TCP
// flow seen (isRetransmission).
type txLanes struct {
	seq [256]uint32
	tcp [256]tcpLane
}

// rxLanes is the receiver's state per lane: the largest lane sequence received, extended
// to 64 bits, once one was.
type rxLanes struct {
	largest [256]uint64
	seen    [256]bool
}

// tcpLane is how far the last inner TCP flow seen on a lane has sent (isRetransmission).
type tcpLane struct {
	flow  uint64 // classify.FlowHash
	next  uint32 // the sequence number after the highest byte sent
	valid bool
}

// Counters are a session's running totals; read them with Session.Counters.
type Counters struct {
	TxPackets, TxBytes, TxDropped              atomic.Uint64
	TxQueueDropped, TxRepaired                 atomic.Uint64
	TxInnerRetx                                atomic.Uint64 // inner TCP retransmissions sent
	TxRebalanced                               atomic.Uint64 // queued packets moved to another path (rebalance)
	RxPackets, RxBytes                         atomic.Uint64
	RxLost                                     atomic.Uint64
	RxReplay, RxAuthFail, RxBadInner, RxNoPath atomic.Uint64
	RxNotAllowed, RxReorderDropped             atomic.Uint64
	// Key update (rekey.go): generations switched to (started here or by the peer), and
	// datagrams opened with the previous generation's key during the overlap.
	KeyUpdates, RxPrevKey atomic.Uint64
	// Path migration (server, migrate.go): validations started, paths moved, validations
	// that got no answer, new addresses ignored because a validation started too recently,
	// and PATH_CHALLENGEs not sent because of the anti-amplification cap.
	PathChallenges, PathMoves, PathValidationsFailed atomic.Uint64
	PathValidationsLimited, PathAmplificationLimited atomic.Uint64
}

func newSession(p sessionParams) (*Session, error) {
	mk, err := sched.ByName(p.scheduler)
	if err != nil {
		return nil, err
	}
	if p.clock == nil {
		p.clock = wallClock
	}
	now := p.clock()
	s := &Session{
		log:        p.log,
		peerName:   p.peerName,
		isServer:   p.isServer,
		messages:   p.messages,
		tq:         p.timers,
		local:      p.localIndex,
		remote:     p.remoteIndex,
		deliver:    p.deliver,
		now:        p.clock,
		epoch:      now,
		scheduler:  mk(),
		cipherName: p.cipher.String(),
		reorder: reorder.New[*packetBuf](reorder.Config{
			MaxPackets: reorderMaxPackets,
			MaxHold:    reorderMaxHold,
			// Lane sequences start at 0 in every session (laneSeq): the first packets of a
			// lane that took the slower path are waited for, not dropped as late.
			StartAtZero: true,
		}),
		rxBase: now,
		// Both grow to what a drain releases, and keep that: an idle session holds none.
		keysDone: make(chan struct{}),
	}
	// The sender's local queues mean lane order is not send order across paths, so the
	// reorder buffer's rule (b) (every path delivered past the gap) does not hold: gaps wait
	// for their deadline, which includes the time a re-sent copy takes (SetRepair, kept up
	// to date by the timer).
	s.reorder.SetRepair(now, initialRepairAllowance)
	s.keepCopies.Store(int64(2*pathstat.DefaultInitialRTT + repairMargin))
	if err := s.keys.init(p); err != nil {
		return nil, err
	}
	empty := []*Path{}
	s.paths.Store(&empty)
	s.setAllowed(p.allowed)
	s.lastAuth.Store(now.UnixNano())
	s.lastData.Store(now.UnixNano())
	return s, nil
}

// addPath adds a path; id must be new.
func (s *Session) addPath(p *Path) error {
	s.pathsMu.Lock()
	defer s.pathsMu.Unlock()
	if s.pathByID(p.id) != nil {
		return fmt.Errorf("path %d exists", p.id)
	}
	now := s.now()
	if p.stats == nil {
		p.stats = pathstat.New(now)
	}
	p.live = liveness.New(liveness.Config{SuspectFloor: suspectFloor}, now)
	p.codel = aqm.New(codelTarget, codelInterval)
	old := *s.paths.Load()
	next := make([]*Path, len(old), len(old)+1)
	copy(next, old)
	next = append(next, p)
	s.paths.Store(&next)
	var ids []*Path
	if b := s.byID.Load(); b != nil {
		ids = *b
	}
	byID := make([]*Path, max(len(ids), int(p.id)+1))
	copy(byID, ids)
	byID[p.id] = p
	s.byID.Store(&byID)
	return nil
}

func (s *Session) pathList() []*Path { return *s.paths.Load() }

// pathByID returns the path with id, or nil. An array of every possible id would cost an
// idle session 2 KiB; the paths' ids are small and dense.
func (s *Session) pathByID(id uint8) *Path {
	b := s.byID.Load()
	if b == nil || int(id) >= len(*b) {
		return nil
	}
	return (*b)[id]
}

// Name is the peer's name from the configuration.
func (s *Session) Name() string { return s.peerName }

// Counters returns the session's counters.
func (s *Session) Counters() *Counters { return &s.counters }

// Close stops the session's timer and releases its buffers. It is idempotent. It must not
// be called from the timer's callback.
func (s *Session) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.stopTimer()
	s.keys.wipe()
	s.rxMu.Lock()
	s.dq.q = s.reorder.Drain(s.now().Add(time.Hour), s.dq.q) // what waits is not delivered
	for _, b := range s.dq.q {
		putBuf(b)
	}
	clear(s.dq.q)
	s.dq.q = s.dq.q[:0]
	s.dq.pending.Store(false)
	s.rxMu.Unlock()
	for _, p := range s.pathList() {
		p.mu.Lock()
		p.releaseQueuesLocked()
		p.mu.Unlock()
	}
}

// errKeysUsedUp is what serveControl returns when the session's keys reached a limit.
var errKeysUsedUp = errors.New("the session's keys reached their usage limit")

// keysUsedUp records that a key of s reached a limit (err, from crypto): s must end. It
// is safe to call from any goroutine, with any lock held, any number of times.
func (s *Session) keysUsedUp(err error) {
	s.keysOnce.Do(func() {
		s.keysErr = fmt.Errorf("%w: %w", errKeysUsedUp, err)
		s.log.Warn("session keys used up; ending the session (a new one gets new keys)", "peer", s.peerName, "err", err)
		close(s.keysDone)
		if c := s.serving.Load(); c != nil {
			c.SetReadDeadline(longAgo) // serveControl returns keysErr
		}
		s.wakeTimer(time.Time{}) // the idle watch, if armed, ends the session
	})
}

// setAllowed sets the inner source prefixes accepted from the peer. The slice must not
// change afterwards.
func (s *Session) setAllowed(allowed []netip.Prefix) { s.allowed.Store(&allowed) }

// isAllowed reports whether an inner packet from src may come from this peer.
func (s *Session) isAllowed(src netip.Addr) bool {
	for _, p := range *s.allowed.Load() {
		if p.Contains(src) {
			return true
		}
	}
	return false
}
