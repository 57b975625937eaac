package perf

import (
	"errors"
	"testing"
)

func TestResultLine(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		line string
	}{
		{"plain", Result{Mbps: 48.25, Bytes: 1000, Secs: 1.5, Flows: 2},
			"RESULT mbps=48.250 bytes=1000 secs=1.500 flows=2"},
		{"verified", Result{Mbps: 1, Bytes: 7, Secs: 0.25, Flows: 1, Verified: true},
			"RESULT mbps=1.000 bytes=7 secs=0.250 flows=1 verified=yes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.String(); got != tc.line {
				t.Fatalf("String = %q, want %q", got, tc.line)
			}
			back, err := ParseResult(tc.line)
			if err != nil || back.Mbps != tc.r.Mbps || back.Bytes != tc.r.Bytes || back.Secs != tc.r.Secs ||
				back.Flows != tc.r.Flows || back.Verified != tc.r.Verified {
				t.Fatalf("ParseResult = %+v, %v; want %+v", back, err, tc.r)
			}
		})
	}
}

func TestUDPResultLine(t *testing.T) {
	r := UDPResult{PPS: 1000, Mbps: 1.6, Loss: 0.01, Reordered: 3}
	line := r.String()
	if want := "RESULT pps=1000.0 mbps=1.600 loss=0.010000 reordered=3"; line != want {
		t.Fatalf("String = %q, want %q", line, want)
	}
	back, err := ParseUDPResult(line)
	if err != nil || back != r {
		t.Fatalf("ParseUDPResult = %+v, %v", back, err)
	}
}

func TestParseResultRejects(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"empty", ""},
		{"no prefix", "mbps=1 bytes=2 secs=3 flows=1"},
		{"missing field", "RESULT mbps=1 bytes=2 secs=3"},
		{"bad number", "RESULT mbps=x bytes=2 secs=3 flows=1"},
		{"not key=value", "RESULT mbps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseResult(tc.line); !errors.Is(err, ErrResult) {
				t.Fatalf("err = %v, want ErrResult", err)
			}
		})
	}
}
