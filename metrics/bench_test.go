package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/bondtun/bondtun/session"
)

// BenchmarkScrape1000Peers: one scrape of a server with 1000 sessions of two paths each
// (a fixed snapshot: the session layer's own cost is not in it), over the HTTP handler.
func BenchmarkScrape1000Peers(b *testing.B) {
	snap := session.Snapshot{Role: "server", Node: map[string]uint64{}}
	for i := range 1000 {
		s := session.SessionSnapshot{Peer: fmt.Sprintf("peer%d", i), Cipher: "AES-256-GCM", Counters: map[string]uint64{"tx_bytes": 1e9}, Reorder: map[string]uint64{}}
		for _, u := range []string{"cable", "lte"} {
			s.Paths = append(s.Paths, session.PathInfo{Name: u + "→10.99.0.1:7350", Status: "up", Tier: "primary", TxBytes: 5e8})
		}
		snap.Sessions = append(snap.Sessions, s)
	}
	c := NewCollector("v")
	c.SetSource(func() session.Snapshot { return snap })
	h := NewHandler(NewRegistry(c), quiet)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", Path, nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		io.Discard.Write(rec.Body.Bytes())
	}
}
