package sched

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// pathsFromBytes decodes a fuzzer input into a path table, 8 bytes a path:
// flags (bit 0 usable, bit 1 backup, bit 2 zero rate, bit 3 startup, bit 4 joining), rate (uint16,
// ×1000 B/s), OWD ms, MinRTT ms, Inflight (uint16, ×16 B), id.
func pathsFromBytes(data []byte) []Path {
	var paths []Path
	for len(data) >= 8 && len(paths) < 32 {
		p := Path{
			ID:       data[7],
			Usable:   data[0]&1 != 0,
			Backup:   data[0]&2 != 0,
			Startup:  data[0]&8 != 0,
			Joining:  data[0]&16 != 0,
			Rate:     float64(binary.BigEndian.Uint16(data[1:3])) * 1000,
			OWD:      time.Duration(data[3]) * ms,
			MinRTT:   time.Duration(data[4]) * ms,
			Inflight: int(binary.BigEndian.Uint16(data[5:7])) * 16,
		}
		if data[0]&4 != 0 {
			p.Rate = 0
		}
		paths = append(paths, p)
		data = data[8:]
	}
	return paths
}

// checkPick verifies the rules every scheduler shares: -1 iff nothing is
// usable, never an unusable path, backups only without a usable primary,
// and the window rule unless every candidate is over its window.
func checkPick(t *testing.T, name string, got int, paths []Path) {
	t.Helper()
	anyUsable, anyPrimary := false, false
	for _, p := range paths {
		anyUsable = anyUsable || p.Usable
		anyPrimary = anyPrimary || (p.Usable && !p.Backup)
	}
	if got < 0 {
		if anyUsable {
			t.Fatalf("%s: Pick = -1 with a usable path in %+v", name, paths)
		}
		return
	}
	if got >= len(paths) {
		t.Fatalf("%s: Pick = %d, out of range %d", name, got, len(paths))
	}
	p := paths[got]
	if !p.Usable {
		t.Fatalf("%s: picked unusable path %d in %+v", name, got, paths)
	}
	if p.Backup && anyPrimary {
		t.Fatalf("%s: picked backup path %d while a primary is usable", name, got)
	}
	if p.Inflight > Window(&p) && name != "eat" { // EAT ignores windows (eat.go)
		for i := range paths {
			q := &paths[i]
			if q.Usable && q.Backup == p.Backup && q.Inflight <= Window(q) {
				t.Fatalf("%s: picked full path %d while path %d has room", name, got, i)
			}
		}
	}
}

func FuzzEAT(f *testing.F) {
	f.Add([]byte{}, uint16(1400))
	f.Add([]byte{1, 0x18, 0x6a, 10, 20, 0, 0, 0x00, 1, 0x09, 0xc4, 30, 60, 0, 0, 0x10}, uint16(1250))
	f.Fuzz(func(t *testing.T, data []byte, size uint16) {
		paths := pathsFromBytes(data)
		got := NewEAT().Pick(t0, int(size), paths)
		checkPick(t, "eat", got, paths)
		if got < 0 {
			return
		}
		// EAT's pick is the candidate on which the packet arrives first (it ignores
		// windows), or a joining path with room tried in the stead of that one, a
		// measured path, because the packet waits less on it (untried in eat.go).
		useBackup, _, _ := candidates(paths)
		e, eT := -1, math.Inf(1)
		for i := range paths {
			if t := arrival(&paths[i], int(size)); isCandidate(&paths[i], useBackup) && (e < 0 || t < eT) {
				e, eT = i, t
			}
		}
		best := arrival(&paths[got], int(size))
		if p, q := &paths[got], &paths[e]; best > eT {
			if !p.Joining || p.Inflight >= Window(p) || q.Startup {
				t.Fatalf("eat: picked %d (%.6f s) but %d arrives earlier (%.6f s)", got, best, e, eT)
			}
			if pw, qw := best-p.OWD.Seconds(), eT-q.OWD.Seconds(); pw >= qw {
				t.Fatalf("eat: tried %d (wait %.6f s) in the stead of %d (wait %.6f s)", got, pw, e, qw)
			}
		}
		if math.IsNaN(best) {
			t.Fatalf("eat: NaN arrival for %+v", paths[got])
		}
	})
}

// FuzzPick runs every scheduler over a sequence of picks on one table,
// adding each packet to the picked path's Inflight as the caller would.
func FuzzPick(f *testing.F) {
	f.Add([]byte{}, uint16(1400), uint8(1))
	f.Add([]byte{1, 0x18, 0x6a, 10, 20, 0, 0, 0x00, 3, 0x03, 0xe8, 40, 80, 0, 0, 0x20}, uint16(60000), uint8(50))
	f.Fuzz(func(t *testing.T, data []byte, size uint16, rounds uint8) {
		for _, mk := range []func() Scheduler{NewEAT, NewDRR, NewLowLatency} {
			s := mk()
			paths := pathsFromBytes(data)
			for range int(rounds) {
				got := s.Pick(t0, int(size), paths)
				checkPick(t, s.Name(), got, paths)
				if got < 0 {
					break
				}
				paths[got].Inflight += int(size)
			}
		}
	})
}
