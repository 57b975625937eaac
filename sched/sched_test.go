package sched

import (
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Scenario H (docs/BENCHMARKS.md): cable 50 Mbit/s 10 ms one way, DSL 20 Mbit/s 30 ms.
func cable() Path {
	return Path{ID: 0x00, Usable: true, Rate: 6.25e6, OWD: 10 * ms, MinRTT: 20 * ms}
}

func dsl() Path {
	return Path{ID: 0x10, Usable: true, Rate: 2.5e6, OWD: 30 * ms, MinRTT: 60 * ms}
}

// joining is a DSL just added: in startup at the initial 10 Mbit/s, its RTT known from
// its probes (40 ms: its forward 30 ms and the cable's return 10 ms), nothing in flight.
func joining() Path {
	return Path{ID: 0x10, Usable: true, Rate: 1.25e6, OWD: 30 * ms, MinRTT: 40 * ms, SRTT: 40 * ms, Startup: true, Joining: true}
}

func lte() Path {
	return Path{ID: 0x20, Usable: true, Rate: 1e6, OWD: 40 * ms, MinRTT: 80 * ms, Backup: true}
}

// with returns p changed by fn, for compact tables.
func with(p Path, fn func(*Path)) Path { fn(&p); return p }

func unusable(p *Path) { p.Usable = false }

func TestPickScenarios(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		paths []Path
		// Expected pick of each scheduler on a fresh instance.
		eat, drr, low int
	}{
		{"no paths", 1400, nil, -1, -1, -1},
		{"none usable", 1400, []Path{with(cable(), unusable), with(dsl(), unusable)}, -1, -1, -1},
		{"only backup unusable", 1400, []Path{with(cable(), unusable), with(lte(), unusable)}, -1, -1, -1},
		{"H idle: cable", 1400, []Path{cable(), dsl()}, 0, 0, 0},
		{"H idle, reversed order: cable", 1400, []Path{dsl(), cable()}, 1, 0, 1},
		// Cable in flight = 125 kB travelling (one BDP, 6.25 MB/s × 20 ms) + a
		// queue of 62.5 kB = 10 ms, at its window: cable arrives at 20.2 ms,
		// DSL at 30.6 ms.
		{"H cable queue at its window", 1400, []Path{with(cable(), func(p *Path) { p.Inflight = 187_500 }), dsl()}, 0, 0, 0},
		// With a DSL only 5 ms slower, a cable queue of 6 ms (37.5 kB) makes the
		// cable packet arrive at 16.2 ms and the DSL one at 15.6 ms.
		{"cable queue past ΔOWD: DSL", 1400, []Path{with(cable(), func(p *Path) { p.Inflight = 162_500 }), with(dsl(), func(p *Path) { p.OWD = 15 * ms })}, 1, 0, 0},
		// Window of cable = 6.25e6 × (20 ms + QueueTarget 10 ms) = 187.5 kB. DRR and
		// LowLatency skip it; EAT does not use windows: the cable packet still arrives
		// 10 ms sooner.
		{"cable over window", 100, []Path{with(cable(), func(p *Path) { p.Inflight = 187_501 }), dsl()}, 0, 1, 1},
		// 2 ms beside 60 ms: a 40 ms local queue on the fast path still beats the slow path.
		{"fast path far over window, still first", 1400, []Path{
			{ID: 0, Usable: true, Rate: 6.25e6, OWD: 2 * ms, MinRTT: 4 * ms, Inflight: 25_000 + 250_000},
			{ID: 1, Usable: true, Rate: 6.25e6, OWD: 60 * ms, MinRTT: 120 * ms}}, 0, 1, 1},
		// Two equal 60 ms paths in startup at the initial 10 Mbit/s (paced at 20): a
		// burst of the inner flow left 91 kB waiting in the first one's local queue, with
		// less in flight than its rate·travel. The pacer lets the queue go in 36 ms, so a
		// packet on the idle twin arrives first (counted as travelling, the queue kept
		// drawing the burst while the twin idled, issue 12).
		{"local queue waits for the pacer: idle twin", 1400, []Path{
			{ID: 0, Usable: true, Rate: 1.25e6, OWD: 60 * ms, MinRTT: 120 * ms, SRTT: 120 * ms, Startup: true, Inflight: 112_000, Queued: 91_000},
			{ID: 1, Usable: true, Rate: 1.25e6, OWD: 61 * ms, MinRTT: 120 * ms, SRTT: 121 * ms, Startup: true, Inflight: 24_000}}, 1, 0, 0},
		// A DSL added to a download that runs at the cable's rate: the cable, measured,
		// holds a queue (more than its rate·(travel + TryQueue) = 156 kB in flight); the
		// DSL, joining in startup at its initial 10 Mbit/s, arrives later but the packet
		// waits less there, so it is tried (untried in eat.go). With no queue on the cable
		// and nothing of the DSL's in flight, with the DSL's window full, with the DSL
		// measured, or started with the cable, arrival alone decides; once the DSL carries
		// data it goes on being tried without the cable's queue.
		{"cable queued, DSL in startup: DSL tried", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 160_000 }), joining()}, 1, 0, 0},
		{"cable without queue, DSL in startup: cable", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 150_000 }), joining()}, 0, 0, 0},
		{"cable without queue, DSL tried and carrying: DSL", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 150_000 }), with(joining(), func(p *Path) { p.Inflight = 20_000 })}, 1, 0, 0},
		{"cable idle, DSL carrying: the packet waits less on the cable", 1400, []Path{
			cable(), with(joining(), func(p *Path) { p.Inflight = 20_000 })}, 0, 0, 0},
		{"cable queued, DSL in startup and full: cable", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 187_500 }), with(joining(), func(p *Path) { p.Inflight = 100_000 })}, 0, 0, 0},
		{"cable queued, DSL measured: arrival decides", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 187_500 }), with(joining(), func(p *Path) { p.Startup, p.Joining = false, false })}, 0, 0, 0},
		{"cable queued, DSL started with it: arrival decides", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 187_500 }), with(joining(), func(p *Path) { p.Joining = false })}, 0, 0, 0},
		{"cable in startup: arrival decides", 1400, []Path{
			with(cable(), func(p *Path) { p.Startup, p.Inflight = true, 300_000 }), joining()}, 0, 1, 1},
		{"all over window: rule waived", 100, []Path{
			with(cable(), func(p *Path) { p.Inflight = 400_000 }),
			with(dsl(), func(p *Path) { p.Inflight = 400_000 })}, 0, 0, 0},
		{"primary unusable: cable down", 1400, []Path{with(cable(), unusable), dsl(), lte()}, 1, 1, 1},
		{"backup not used while a primary lives", 1400, []Path{
			with(cable(), func(p *Path) { p.Inflight = 1 << 20 }), lte()}, 0, 0, 0},
		{"backup when no primary", 1400, []Path{with(cable(), unusable), with(dsl(), unusable), lte()}, 2, 2, 2},
		{"tie goes to lowest index", 1400, []Path{with(dsl(), unusable), cable(), cable(), cable()}, 1, 1, 1},
		{"zero rate is very slow, not fatal", 1400, []Path{with(cable(), func(p *Path) { p.Rate = 0 }), dsl()}, 1, 1, 0},
		// At exactly its 64 KiB floor the slow path is still eligible (LowLatency
		// takes it); EAT and DRR prefer DSL by rate.
		{"small window floor", 1400, []Path{
			with(cable(), func(p *Path) { p.Rate, p.MinRTT, p.Inflight = 1e5, ms, MinWindow }), dsl()}, 1, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				s    Scheduler
				want int
			}{{NewEAT(), tc.eat}, {NewDRR(), tc.drr}, {NewLowLatency(), tc.low}} {
				if got := c.s.Pick(t0, tc.size, tc.paths); got != c.want {
					t.Errorf("%s: Pick = %d, want %d", c.s.Name(), got, c.want)
				}
			}
		})
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		name string
		p    Path
		want int
	}{
		{"cable", cable(), 187_500},
		{"dsl", dsl(), 175_000},
		// E's links: 12.5 MB/s, 10.5 ms: the allowance is 7 ms (two thirds of 10.5), not 10.
		{"short path", Path{Rate: 12.5e6, MinRTT: 10500 * time.Microsecond}, 218_750},
		// A LAN path: 1 ms, but never less than MinQueueAllowance (7 ms), or deliveries not
		// yet reported would starve it.
		{"very short path", Path{Rate: 12.5e6, MinRTT: time.Millisecond}, 100_000},
		// A jittery radio link: 2.5 MB/s, 35 ms, 6 ms of packet-to-packet jitter: its SRTT is
		// 18 ms above the minimum, which the window must cover.
		{"jittery path", Path{Rate: 2.5e6, MinRTT: 35 * ms, SRTT: 53 * ms, Jitter: 6 * ms}, 2_500_000 * 63 / 1000},
		// 10 × (2 ms − JitterFloor) of the 18 ms spread counts.
		{"jitter bounds it", Path{Rate: 2.5e6, MinRTT: 35 * ms, SRTT: 53 * ms, Jitter: 2 * ms}, 2_500_000 * 55 / 1000},
		{"capped", Path{Rate: 2.5e6, MinRTT: 35 * ms, SRTT: time.Second, Jitter: time.Second}, 2_500_000 * 95 / 1000},
		// A standing queue (SRTT up, no jitter) adds nothing, nor does jitter at the
		// measurement noise (≤ JitterFloor): E's 1-BDP buffers.
		{"standing queue", Path{Rate: 12.5e6, MinRTT: 10500 * time.Microsecond, SRTT: 30 * ms}, 218_750},
		{"noise", Path{Rate: 12.5e6, MinRTT: 10500 * time.Microsecond, SRTT: 30 * ms, Jitter: time.Millisecond}, 218_750},
		{"floor", Path{Rate: 1e5, MinRTT: 10 * ms}, MinWindow},
		// A link that dropped a round's datagrams: its ceiling binds, but never below the
		// bandwidth-delay product (rate · travel time) + 5 ms.
		{"ceiling", Path{Rate: 6.25e6, MinRTT: 20 * ms, Ceiling: 170_000}, 170_000},
		{"ceiling above the window", Path{Rate: 6.25e6, MinRTT: 20 * ms, Ceiling: 400_000}, 187_500},
		{"ceiling below the BDP", Path{Rate: 6.25e6, MinRTT: 20 * ms, Ceiling: 50_000}, 156_250},
		// Startup: a round trip of allowance, about twice the BDP.
		{"startup long path", Path{Rate: 2.5e6, MinRTT: 120 * ms, Startup: true}, 600_000},
		{"startup short path keeps the 7 ms floor", Path{Rate: 12.5e6, MinRTT: 2 * ms, Startup: true}, 112_499}, // float rounding,
		{"zero", Path{}, MinWindow},
		{"negative rate", Path{Rate: -5, MinRTT: 10 * ms}, MinWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Window(&tc.p); got != tc.want {
				t.Errorf("Window = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestIsSmall(t *testing.T) {
	tests := []struct {
		name string
		size int
		want bool
	}{
		{"pure ack", 52, true},
		{"limit", 256, true},
		{"above", 257, false},
		{"full", 1400, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsSmall(tc.size); got != tc.want {
				t.Errorf("IsSmall(%d) = %v, want %v", tc.size, got, tc.want)
			}
		})
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		name     string
		wantName string
		wantErr  string
	}{
		{"", "eat", ""},
		{"eat", "eat", ""},
		{"drr", "drr", ""},
		{"lowlatency", "lowlatency", ""},
		{"minrtt", "", "unknown scheduler"},
	}
	for _, tc := range tests {
		t.Run("name="+tc.name, func(t *testing.T) {
			mk, err := ByName(tc.name)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ByName(%q) error = %v, want %q", tc.name, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ByName(%q): %v", tc.name, err)
			}
			if got := mk().Name(); got != tc.wantName {
				t.Errorf("ByName(%q)().Name() = %q, want %q", tc.name, got, tc.wantName)
			}
		})
	}
}

func TestLowestDelayIgnoresWindows(t *testing.T) {
	tests := []struct {
		name  string
		paths []Path
		want  int
	}{
		{"none", nil, -1},
		{"idle: cable", []Path{cable(), dsl()}, 0},
		{"cable far over its window: still cable", []Path{with(cable(), func(p *Path) { p.Inflight = 10 << 20 }), dsl()}, 0},
		{"cable unusable: DSL", []Path{with(cable(), unusable), dsl()}, 1},
		{"backup only without a primary", []Path{lte(), dsl()}, 1},
		{"backup when no primary", []Path{with(dsl(), unusable), lte()}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LowestDelay(tt.paths); got != tt.want {
				t.Fatalf("LowestDelay = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRepairPath(t *testing.T) {
	fast := Path{ID: 1, Usable: true, Rate: 12.5e6, OWD: 5 * ms, MinRTT: 10 * ms}
	slow := Path{ID: 2, Usable: true, Rate: 2.5e6, OWD: 40 * ms, MinRTT: 80 * ms}
	busy := fast
	busy.Inflight, busy.Queued = 1_000_000, 800_000 // a long local bulk queue: repairs pass it
	clogged := fast
	clogged.Inflight = 1_000_000 // a full network queue ahead: 80 ms at its rate
	prio := fast
	prio.Inflight, prio.Queued, prio.PrioQueued = 600_000, 600_000, 600_000
	backup := fast
	backup.Backup = true
	down := fast
	down.Usable = false
	tests := []struct {
		name  string
		paths []Path
		want  int
	}{
		{"the fast path, even if it lost the original", []Path{fast, slow}, 0},
		{"its bulk queue does not count", []Path{busy, slow}, 0},
		{"its network queue does", []Path{clogged, slow}, 1},
		{"its priority queue does", []Path{prio, slow}, 1},
		{"a failed path is skipped", []Path{down, slow}, 1},
		{"backups only when no primary is usable", []Path{backup, slow}, 1},
		{"a backup when nothing else", []Path{backup, down}, 0},
		{"none", []Path{down}, -1},
	}
	for _, tc := range tests {
		if got := RepairPath(1500, tc.paths); got != tc.want {
			t.Errorf("%s: RepairPath = %d, want %d", tc.name, got, tc.want)
		}
	}
}
