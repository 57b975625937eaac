package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var docRow = regexp.MustCompile("^\\| `(bondtun_[a-z_]+)` \\| (counter|gauge) \\|\\s*([a-z_, ]*?)\\s*\\|")

// TestMetricsMatchDoc: docs/METRICS.md's tables list exactly the families the collector
// exports, with their types and labels.
func TestMetricsMatchDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ typ, labels string }
	doc := map[string]row{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := docRow.FindStringSubmatch(line); m != nil {
			doc[m[1]] = row{m[2], m[3]}
		}
	}
	c := NewCollector("v")
	c.SetSource(fakeSnapshot)
	got := map[string]row{}
	for _, mf := range gather(t, c) {
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		got[mf.GetName()] = row{strings.ToLower(mf.GetType().String()), strings.Join(labels, ", ")}
	}
	for name := range describedNames(c) {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: not exported by the fake snapshot (the test misses it)", name)
		}
	}
	for name, r := range got {
		d, ok := doc[name]
		if !ok {
			t.Errorf("%s (%s; %s) is not in docs/METRICS.md", name, r.typ, r.labels)
			continue
		}
		if d.typ != r.typ || !sameLabels(d.labels, r.labels) {
			t.Errorf("%s: docs/METRICS.md says %s with labels %q, exported as %s with %q", name, d.typ, d.labels, r.typ, r.labels)
		}
	}
	for name := range doc {
		if _, ok := got[name]; !ok {
			t.Errorf("docs/METRICS.md lists %s, which is not exported", name)
		}
	}
}

func sameLabels(a, b string) bool {
	split := func(s string) []string {
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(split(a), split(b))
}

var metricName = regexp.MustCompile(`\b(bondtun|go|process|promhttp)_[a-zA-Z0-9_]+`)

// TestDashboardUsesExportedMetrics: every metric named in the Grafana dashboard's
// queries is one the endpoint exports, so a renamed metric cannot leave a panel empty.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../configs/grafana-bondtun.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("configs/grafana-bondtun.json: %v", err)
	}
	var exprs []string
	walkJSON(dash, func(key string, v any) {
		if s, ok := v.(string); ok && (key == "expr" || key == "query" || key == "definition") {
			exprs = append(exprs, s)
		}
	})
	if len(exprs) < 10 {
		t.Fatalf("only %d queries found in the dashboard", len(exprs))
	}
	c := NewCollector("v")
	c.SetSource(fakeSnapshot)
	exported := describedNames(c)
	fams, err := NewRegistry(c).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range fams {
		exported[mf.GetName()] = true
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used[name] = true
			if !exported[name] {
				t.Errorf("the dashboard queries %s, which is not exported (in %q)", name, e)
			}
		}
	}
	for _, want := range []string{"bondtun_path_sent_bytes_total", "bondtun_path_rtt_seconds", "bondtun_path_loss_ratio", "bondtun_path_state", "bondtun_peer_received_bytes_total", "bondtun_peer_rejected_datagrams_total"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// walkJSON calls fn for every key and value in v, depth first.
func walkJSON(v any, fn func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			fn(k, e)
			walkJSON(e, fn)
		}
	case []any:
		for _, e := range x {
			walkJSON(e, fn)
		}
	}
}
