package session

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bondtun/bondtun/flightrec"
)

// TestFlightRecorder sends traffic through two real sessions over loopback and checks that
// the sending client's recorder sampled both paths while packets flowed, in time order with
// plausible values, and that the client's and the server's CSV name the paths.
func TestFlightRecorder(t *testing.T) {
	tp := newTestPair(t)
	s := tp.client.Session()
	const n = 600
	for i := uint32(0); i < n; i++ {
		tp.clientTUN.Outbound <- udpPacket(clientInner, serverInner, i, 1200)
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // spread the flow over several sample intervals
		}
	}
	for i := 0; i < n*95/100; i++ {
		recvPacket(t, tp.fromServerTUN)
	}
	var samples []flightrec.Sample
	waitFor(t, "samples of both paths with data sent", func() bool {
		samples = s.Trace()
		seen := map[uint8]bool{}
		for _, smp := range samples {
			if smp.TxPackets > 0 {
				seen[smp.Path] = true
			}
		}
		return len(seen) == 2
	})
	for i := 1; i < len(samples); i++ {
		if samples[i].At < samples[i-1].At {
			t.Fatalf("sample %d at %v before sample %d at %v", i, samples[i].At, i-1, samples[i-1].At)
		}
	}
	var maxTx uint64
	for _, smp := range samples {
		if smp.RateBps <= 0 || smp.Window <= 0 || smp.SRTT <= 0 {
			t.Fatalf("implausible sample %+v", smp)
		}
		maxTx = max(maxTx, smp.TxPackets)
	}
	if maxTx == 0 {
		t.Fatal("no sample saw a datagram sent")
	}
	var csv bytes.Buffer
	if err := tp.client.WriteTrace(&csv); err != nil {
		t.Fatal(err)
	}
	out := csv.String()
	if !strings.Contains(out, flightrec.Header) || strings.Count(out, "\n") < len(samples)+1 {
		t.Fatalf("CSV has %d lines for %d samples:\n%.400s", strings.Count(out, "\n"), len(samples), out)
	}
	for _, p := range s.Paths() {
		if !strings.Contains(out, ","+p.Name+",") {
			t.Errorf("CSV does not name path %s", p.Name)
		}
	}
	var srv bytes.Buffer
	if err := tp.server.WriteTrace(&srv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(srv.String(), flightrec.Header) || !strings.Contains(srv.String(), "/") {
		t.Errorf("server CSV lacks the header or peer-prefixed path names:\n%.400s", srv.String())
	}
}
