package main

import (
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	req := []string{"-ns-a", "c", "-dev-a", "up0", "-ns-b", "s", "-dev-b", "link0"}
	ms := time.Millisecond
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		abRate  int64
		baRate  int64
		baDelay time.Duration
		abQueue int
		baQueue int
	}{
		{"defaults", nil, false, 0, 0, 0, 32 << 10, 32 << 10},
		{"both directions", []string{"-rate", "50mbit", "-delay", "10ms"}, false, 50e6, 50e6, 10 * ms, 125000, 125000},
		{"ba override", []string{"-rate", "50mbit", "-delay", "10ms", "-rate-ba", "10mbit", "-delay-ba", "30ms"},
			false, 50e6, 10e6, 30 * ms, 125000, 75000},
		{"explicit queue", []string{"-queue", "9000", "-queue-ba", "auto"}, false, 0, 0, 0, 9000, 32 << 10},
		{"bad rate", []string{"-rate", "fast"}, true, 0, 0, 0, 0, 0},
		{"bad queue", []string{"-queue", "big"}, true, 0, 0, 0, 0, 0},
		{"bad loss", []string{"-loss-ba", "120"}, true, 0, 0, 0, 0, 0},
		{"bad addr", []string{"-addr-a", "10.0.0.1"}, true, 0, 0, 0, 0, 0},
		{"extra arg", []string{"foo"}, true, 0, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(append(append([]string{}, req...), tc.args...))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			ab, _ := c.ab.params(c.dist, c.reorder)
			ba, _ := c.ba.params(c.dist, c.reorder)
			if ab.RateBps != tc.abRate || ba.RateBps != tc.baRate || ba.Delay != tc.baDelay ||
				ab.QueueBytes != tc.abQueue || ba.QueueBytes != tc.baQueue {
				t.Errorf("ab %v, ba %v", ab, ba)
			}
		})
	}
	if _, err := parseFlags([]string{"-rate", "1mbit"}); err == nil {
		t.Error("missing device flags accepted")
	}
}
