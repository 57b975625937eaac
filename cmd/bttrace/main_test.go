package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testHeader = "t_ms,path,state,rate_bps,pacing_bps,srtt_ms,minrtt_ms,window_bytes,inflight_bytes," +
	"queue_bytes,queue_delay_ms,codel_drops,repairs,lost,tx_packets,rx_packets," +
	"hold_ms,reorder_held,reorder_late,inner_retx,future_col"

var testPaths = []string{"cable→10.99.0.1:7350", "dsl<&>→10.99.1.1:7350"}

// testCSV returns a trace of two paths over 50 samples; the second path is
// dead from sample 20 to 29 and the session counters rise now and then.
func testCSV() string {
	var b strings.Builder
	b.WriteString("# a comment\n" + testHeader + "\n")
	for i := range 50 {
		for j, name := range testPaths {
			state := "up"
			if j == 1 && i >= 20 && i < 30 {
				state = "dead"
			}
			fmt.Fprintf(&b, "%.3f,%s,%s,%d,%d,%.3f,10.000,%d,%d,0,%.3f,0,0,0,%d,%d,%.3f,%d,%d,%d,x\n",
				float64(i)*10, name, state, 20_000_000+i*100_000, 25_000_000+i*100_000, 30+float64(j*i)/10,
				60000+j*1000, 30000+i*100, float64(i%7)/2, i*10, i*9, float64(i%11), i%5, i/17, i/13)
		}
	}
	return b.String()
}

// checkSVG checks that svg is well-formed XML and that its text holds the
// path names and the panel titles.
func checkSVG(t *testing.T, svg []byte, paths []string) {
	t.Helper()
	var text strings.Builder
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("output is not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
	want := append([]string{"Delivery rate", "In flight", "Local queue delay", "Smoothed RTT", "Session"}, paths...)
	for _, s := range want {
		if !strings.Contains(text.String(), s) {
			t.Errorf("output text lacks %q", s)
		}
	}
}

func TestRender(t *testing.T) {
	tr, err := parseTrace(strings.NewReader(testCSV()))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.paths) != 2 || len(tr.sessT) != 50 {
		t.Fatalf("got %d paths, %d sample times; want 2, 50", len(tr.paths), len(tr.sessT))
	}
	if got := tr.paths[1].notUp; len(got) != 1 || got[0] != (span{0.2, 0.3}) {
		t.Errorf("dsl not-up spans = %v, want [{0.2 0.3}]", got)
	}
	if len(tr.retx) != 3 || len(tr.late) != 2 {
		t.Errorf("got %d retx and %d late events, want 3 and 2", len(tr.retx), len(tr.late))
	}
	if n := len(buildPanels(tr)); n != 5 {
		t.Errorf("%d panels, want 5", n)
	}
	var buf bytes.Buffer
	render(&buf, tr, "test & <title>")
	checkSVG(t, buf.Bytes(), testPaths)
}

func TestSampleFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sample.svg")
	var stderr bytes.Buffer
	if rc := run([]string{"-o", out, "testdata/sample.csv"}, nil, io.Discard, &stderr); rc != 0 {
		t.Fatalf("exit %d: %s", rc, stderr.String())
	}
	svg, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg, []string{"cable→10.99.0.1:7350", "dsl→10.99.1.1:7350"})
}

func TestStdin(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if rc := run([]string{"-title", "x", "-"}, strings.NewReader(testCSV()), &stdout, &stderr); rc != 0 {
		t.Fatalf("exit %d: %s", rc, stderr.String())
	}
	checkSVG(t, stdout.Bytes(), testPaths)
}

func TestParseErrors(t *testing.T) {
	good := strings.Split(testCSV(), "\n") // line 1 comment, 2 header, 3.. rows
	tests := []struct {
		name, csv, want string
	}{
		{"missing column", strings.Join(append([]string{good[0],
			strings.Replace(good[1], "srtt_ms,", "", 1)}, good[2:]...), "\n"),
			`line 2: header lacks needed column "srtt_ms"`},
		{"bad time", strings.Join(good[:4], "\n") + "\nz" + good[4][1:] + "\n",
			`line 5: column t_ms: bad number "z0.000"`},
		{"bad rate", strings.Join(good[:5], "\n") + "\n" +
			strings.Replace(good[5], ",up,", ",up,fast", 1) + "\n", "line 6: column rate_bps"},
		{"short row", strings.Join(good[:3], "\n") + "\n1,a,up\n", "line 4: 3 fields"},
		{"no rows", good[1] + "\n", "no samples"},
	}
	for _, tc := range tests {
		_, err := parseTrace(strings.NewReader(tc.csv))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestUsage(t *testing.T) {
	var stderr bytes.Buffer
	if rc := run([]string{"-h"}, nil, io.Discard, &stderr); rc != 0 ||
		!strings.Contains(stderr.String(), "bttrace [-o out.svg] [-title TEXT] trace.csv") {
		t.Errorf("-h: exit %d, usage %q", rc, stderr.String())
	}
	if rc := run(nil, nil, io.Discard, io.Discard); rc != 2 {
		t.Errorf("no arguments: exit %d, want 2", rc)
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{0.7, 1}, {1, 1}, {1.3, 2}, {3, 5}, {7, 10}, {0.013, 0.02}, {420, 500},
	} {
		if got := niceStep(tc.in); got != tc.want {
			t.Errorf("niceStep(%g) = %g, want %g", tc.in, got, tc.want)
		}
	}
}
