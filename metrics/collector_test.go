package metrics

import (
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bondtun/bondtun/session"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// scrape gets url and parses the text exposition format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// sample returns the value of the one sample of family name whose labels include want
// ("name=value" pairs), failing unless exactly one matches.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	var vals []float64
	for _, m := range f.GetMetric() {
		if hasLabels(m, want) {
			switch {
			case m.Counter != nil:
				vals = append(vals, m.GetCounter().GetValue())
			case m.Gauge != nil:
				vals = append(vals, m.GetGauge().GetValue())
			default:
				vals = append(vals, m.GetUntyped().GetValue())
			}
		}
	}
	if len(vals) != 1 {
		t.Fatalf("%s%v: %d samples, want 1", name, want, len(vals))
	}
	return vals[0]
}

func hasLabels(m *dto.Metric, want []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		if got, ok := have[k]; !ok || (got != v && !(strings.HasSuffix(v, "*") && strings.HasPrefix(got, strings.TrimSuffix(v, "*")))) {
			return false
		}
	}
	return true
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames are the names of every family c can export.
func describedNames(c *Collector) map[string]bool {
	names := map[string]bool{}
	for _, d := range c.descs {
		names[descName.FindStringSubmatch(d.String())[1]] = true
	}
	return names
}

// TestScrapeLiveClient: a client with a live session over loopback, after traffic,
// scraped over HTTP: every family is there, with values that fit the session.
func TestScrapeLiveClient(t *testing.T) {
	p := newPair(t)
	p.pings(t, 50)
	srv, err := Listen("127.0.0.1:0", "v-test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Collector.SetSource(p.client.Snapshot)
	url := "http://" + srv.Addr().String() + Path
	fams := scrape(t, url)

	for name := range describedNames(srv.Collector) {
		if _, ok := fams[name]; !ok {
			t.Errorf("family %s missing from a live client's scrape", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "promhttp_metric_handler_requests_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	if v := sample(t, fams, "bondtun_node_info", "role=client", "version=v-test"); v != 1 {
		t.Errorf("bondtun_node_info = %v", v)
	}
	if v := sample(t, fams, "bondtun_sessions"); v != 1 {
		t.Errorf("bondtun_sessions = %v, want 1", v)
	}
	peer := "peer=server"
	if v := sample(t, fams, "bondtun_peer_sent_packets_total", peer); v < 50 {
		t.Errorf("sent packets %v after 50 pings", v)
	}
	if v := sample(t, fams, "bondtun_peer_sent_bytes_total", peer); v < 50*32 {
		t.Errorf("sent bytes %v after 50 pings of 32 bytes", v)
	}
	if v := sample(t, fams, "bondtun_peer_rejected_datagrams_total", peer, "reason=replay"); v != 0 {
		t.Errorf("replay rejections %v", v)
	}
	a, b := "path=a→*", "path=b→*"
	if v := sample(t, fams, "bondtun_path_state", peer, a, "state=up"); v != 1 {
		t.Errorf("path a state up = %v", v)
	}
	if v := sample(t, fams, "bondtun_path_state", peer, b, "state=standby"); v != 1 {
		t.Errorf("path b state standby = %v", v)
	}
	for _, path := range []string{a, b} {
		n := 0.0
		for _, st := range PathStates {
			n += sample(t, fams, "bondtun_path_state", peer, path, "state="+st)
		}
		if n != 1 {
			t.Errorf("%s is in %v states at once", path, n)
		}
		if rtt := sample(t, fams, "bondtun_path_rtt_seconds", peer, path); !(rtt > 0 && rtt < 1) {
			t.Errorf("%s RTT %v s on loopback", path, rtt)
		}
		if l := sample(t, fams, "bondtun_path_loss_ratio", peer, path); l < 0 || l > 1 {
			t.Errorf("%s loss ratio %v", path, l)
		}
	}
	if v := sample(t, fams, "bondtun_path_tier", peer, b, "tier=backup"); v != 1 {
		t.Errorf("path b tier backup = %v", v)
	}
	if v := sample(t, fams, "bondtun_path_usable", peer, a); v != 1 {
		t.Errorf("path a usable = %v", v)
	}
	if v := sample(t, fams, "bondtun_path_sent_bytes_total", peer, a); v < 50*32 {
		t.Errorf("path a sent bytes %v: the pings go on the primary", v)
	}
	if v := sample(t, fams, "bondtun_path_delivery_rate_bytes_per_second", peer, a); v <= 0 {
		t.Errorf("path a delivery rate %v", v)
	}
	share := sample(t, fams, "bondtun_path_sent_share_ratio", peer, a) + sample(t, fams, "bondtun_path_sent_share_ratio", peer, b)
	if math.Abs(share-1) > 1e-9 {
		t.Errorf("shares add up to %v", share)
	}

	resp, err := http.Get("http://" + srv.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %s, want 404 (only %s is served)", resp.Status, Path)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("the endpoint still answers after Close")
	}
}

// TestScrapeLiveServer: the server's view of the same session.
func TestScrapeLiveServer(t *testing.T) {
	p := newPair(t)
	p.pings(t, 20)
	srv, err := Listen("127.0.0.1:0", "v-test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Collector.SetSource(p.server.Snapshot)
	fams := scrape(t, "http://"+srv.Addr().String()+Path)
	sample(t, fams, "bondtun_node_info", "role=server")
	if v := sample(t, fams, "bondtun_sessions"); v != 1 {
		t.Errorf("bondtun_sessions = %v", v)
	}
	if v := sample(t, fams, "bondtun_peer_received_packets_total", "peer=client"); v < 20 {
		t.Errorf("received %v packets after 20 pings", v)
	}
	if v := sample(t, fams, "bondtun_peer_received_bytes_total", "peer=client"); v < 20*32 {
		t.Errorf("received %v bytes after 20 pings of 32 bytes", v)
	}
	if v := sample(t, fams, "bondtun_handshakes_failed_total"); v != 0 {
		t.Errorf("handshakes failed %v", v)
	}
	if v := sample(t, fams, "bondtun_node_received_datagrams_total"); v < 20 {
		t.Errorf("datagrams received %v", v)
	}
}

// TestKeysExist: every counter reads a key the session's snapshot has; a misspelt key
// would export a counter stuck at 0.
func TestKeysExist(t *testing.T) {
	p := newPair(t)
	snap := p.client.Snapshot()
	c := NewCollector("")
	check := func(what string, cs []mapCounter, m map[string]uint64) {
		for _, mc := range cs {
			if _, ok := m[mc.key]; !ok {
				t.Errorf("%s: %s reads %q, which the snapshot does not have", what, mc.desc, mc.key)
			}
		}
	}
	check("node", c.nodeCounters, snap.Node)
	check("session", c.sessionCounters, snap.Sessions[0].Counters)
	check("reorder", c.reorderCts, snap.Sessions[0].Reorder)
}

// TestLint: the families follow Prometheus's naming rules as promlint checks them.
func TestLint(t *testing.T) {
	p := newPair(t)
	c := NewCollector("v")
	c.SetSource(p.client.Snapshot)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("%s: %s", pr.Metric, pr.Text)
	}
	if n := testutil.CollectAndCount(c); n < 50 {
		t.Errorf("%d samples for a session with two paths", n)
	}
}

// TestNoSource: before the node exists, a scrape has no bondtun families and no error.
func TestNoSource(t *testing.T) {
	c := NewCollector("v")
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d samples without a source", n)
	}
	if _, err := NewRegistry(c).Gather(); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicatePeer: two sessions of one peer at once (a reconnect) keep the scrape
// valid: the first is exported.
func TestDuplicatePeer(t *testing.T) {
	s := session.SessionSnapshot{Peer: "p", Paths: []session.PathInfo{{Name: "x", Status: "up", Tier: "primary", TxBytes: 5}}}
	s2 := s
	s2.Paths = []session.PathInfo{{Name: "x", Status: "dead", Tier: "primary", TxBytes: 7}}
	c := NewCollector("v")
	c.SetSource(func() session.Snapshot {
		return session.Snapshot{Role: "server", Sessions: []session.SessionSnapshot{s, s2}}
	})
	reg := NewRegistry(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	const want = `
# HELP bondtun_path_sent_bytes_total Bytes of the datagrams sent on the path.
# TYPE bondtun_path_sent_bytes_total counter
bondtun_path_sent_bytes_total{path="x",peer="p"} 5
# HELP bondtun_sessions Sessions now established (a client has at most one).
# TYPE bondtun_sessions gauge
bondtun_sessions 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bondtun_path_sent_bytes_total", "bondtun_sessions"); err != nil {
		t.Error(err)
	}
}

// TestListenBusyPort: a port in use is an error at Listen, before anything runs.
func TestListenBusyPort(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", "v", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if s2, err := Listen(srv.Addr().String(), "v", quiet); err == nil {
		s2.Close()
		t.Fatal("a second Listen on the same port succeeded")
	} else if !strings.Contains(err.Error(), "metrics:") {
		t.Errorf("error %q does not say it is the metrics endpoint", err)
	}
}

// fakeSnapshot has one session with one path that has been heard, so that every family
// has a sample.
func fakeSnapshot() session.Snapshot {
	return session.Snapshot{
		Role: "server",
		Node: map[string]uint64{"rx_datagrams": 1},
		Sessions: []session.SessionSnapshot{{
			Peer: "p", Cipher: "AES-256-GCM",
			Counters: map[string]uint64{"tx_bytes": 1},
			Reorder:  map[string]uint64{"late": 1},
			Paths:    []session.PathInfo{{Name: "a→10.0.0.1:7350", Status: "up", Tier: "primary", LastHeard: time.Millisecond}},
		}},
	}
}

// gather collects c alone.
func gather(t *testing.T, c *Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}
