package perf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestReportRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
	}{
		{"ok", Report{Timeline: *steadyFlow(time.Second, 1000)}},
		{"verify failed", Report{VerifyFailed: true, FailAt: 12345, Timeline: *steadyFlow(50*ms, 7)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.rep.Append(nil)
			got, err := ParseReport(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.VerifyFailed != tc.rep.VerifyFailed || got.FailAt != tc.rep.FailAt ||
				got.Timeline.Total != tc.rep.Timeline.Total || got.Timeline.Elapsed != tc.rep.Timeline.Elapsed ||
				len(got.Timeline.Samples) != len(tc.rep.Timeline.Samples) {
				t.Fatalf("round trip = %+v", got)
			}
			for i, s := range got.Timeline.Samples {
				if s != tc.rep.Timeline.Samples[i] {
					t.Fatalf("sample %d = %+v, want %+v", i, s, tc.rep.Timeline.Samples[i])
				}
			}
			for n := range len(b) {
				if _, err := ParseReport(b[:n]); err == nil {
					t.Fatalf("%d-byte prefix parsed", n)
				}
			}
		})
	}
}

func TestParseReportRejects(t *testing.T) {
	good := (&Report{Timeline: *steadyFlow(100*ms, 10)}).Append(nil)
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"magic", func(b []byte) []byte { b[0] = 0; return b }},
		{"status", func(b []byte) []byte { b[1] = 2; return b }},
		{"reserved", func(b []byte) []byte { b[3] = 1; return b }},
		{"fail offset without failure", func(b []byte) []byte { b[15] = 1; return b }},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }},
		{"zero samples", func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 0); return b[:ReportHeaderLen] }},
		{"sample beyond total", func(b []byte) []byte { binary.BigEndian.PutUint64(b[24:], 1); return b }},
		{"time goes back", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[ReportHeaderLen+reportSampleLen:], 0)
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseReport(tc.mutate(bytes.Clone(good))); !errors.Is(err, ErrReport) {
				t.Fatalf("err = %v, want ErrReport", err)
			}
		})
	}
}

func FuzzReport(f *testing.F) {
	f.Add((&Report{Timeline: *steadyFlow(100*ms, 10)}).Append(nil))
	f.Add((&Report{VerifyFailed: true, FailAt: 9, Timeline: *steadyFlow(10*ms, 1)}).Append(nil))
	f.Add([]byte{ReportMagic})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		if out := r.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip differs:\n% x\n% x", out, b)
		}
		// Rates from an accepted report are never negative.
		tl := &r.Timeline
		if s := Summarize([]*Timeline{tl}, tl.Elapsed/2); s.Mbps < 0 {
			t.Fatalf("negative goodput %v", s.Mbps)
		}
	})
}
