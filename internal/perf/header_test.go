package perf

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func validHeader() Header {
	return Header{Flags: FlagReverse | FlagVerify | FlagBytes, CC: 3, Flows: 4, Flow: 2,
		Seed: 0xABCD, Duration: 1500 * time.Millisecond, Bytes: 1 << 20}
}

func TestHeaderGolden(t *testing.T) {
	h := validHeader()
	got, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xB7, 1, 7, 3, 4, 2, 0xAB, 0xCD, 0, 0, 0x05, 0xDC, 0, 0x10, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("Append = % x\nwant     % x", got, want)
	}
	back, err := ParseHeader(got)
	if err != nil || back != h {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", back, err, h)
	}
	for n := range HeaderLen {
		if _, err := ParseHeader(got[:n]); !errors.Is(err, ErrShort) {
			t.Fatalf("ParseHeader of %d-byte prefix: err = %v, want ErrShort", n, err)
		}
	}
}

func TestHeaderInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *Header)
		want   error
	}{
		{"unknown flag", func(h *Header) { h.Flags |= 0x80 }, ErrFlags},
		{"unknown cc", func(h *Header) { h.CC = 200 }, ErrCC},
		{"zero flows", func(h *Header) { h.Flows, h.Flow = 0, 0 }, ErrFlows},
		{"flow out of range", func(h *Header) { h.Flow = h.Flows }, ErrFlows},
		{"zero duration", func(h *Header) { h.Duration = 0 }, ErrDuration},
		{"duration too long", func(h *Header) { h.Duration = MaxDuration + time.Second }, ErrDuration},
		{"bytes without bytes mode", func(h *Header) { h.Flags &^= FlagBytes }, ErrBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := validHeader()
			tc.mutate(&h)
			if _, err := h.Append(nil); !errors.Is(err, tc.want) {
				t.Fatalf("Append err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseHeaderRejects(t *testing.T) {
	h := validHeader()
	good, _ := h.Append(nil)
	tests := []struct {
		name string
		off  int
		val  byte
		want error
	}{
		{"magic", 0, 0x00, ErrMagic},
		{"version", 1, 2, ErrVersion},
		{"flags", 2, 0x08, ErrFlags},
		{"cc", 3, 0xFF, ErrCC},
		{"flows", 4, 0, ErrFlows},
		{"flow index", 5, 4, ErrFlows},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			b[tc.off] = tc.val
			if _, err := ParseHeader(b); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCC(t *testing.T) {
	tests := []struct {
		name    string
		cc      string
		wantErr bool
	}{
		{"kernel default", "", false},
		{"cubic", "cubic", false},
		{"bbr", "bbr", false},
		{"unknown", "fastest", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := CCID(tc.cc)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CCID(%q) err = %v", tc.cc, err)
			}
			if err != nil {
				return
			}
			if name, ok := CCName(id); !ok || name != tc.cc {
				t.Fatalf("CCName(%d) = %q, %v; want %q", id, name, ok, tc.cc)
			}
		})
	}
}

func TestFlowBytes(t *testing.T) {
	tests := []struct {
		name  string
		total uint64
		flows int
		want  []uint64
	}{
		{"even", 9, 3, []uint64{3, 3, 3}},
		{"remainder to first flows", 11, 3, []uint64{4, 4, 3}},
		{"fewer bytes than flows", 2, 3, []uint64{1, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sum uint64
			for i, w := range tc.want {
				if got := FlowBytes(tc.total, tc.flows, i); got != w {
					t.Fatalf("flow %d: %d, want %d", i, got, w)
				}
				sum += w
			}
			if sum != tc.total {
				t.Fatalf("flows sum to %d, want %d", sum, tc.total)
			}
		})
	}
}

func FuzzHeader(f *testing.F) {
	h := validHeader()
	good, _ := h.Append(nil)
	f.Add(good)
	f.Add(good[:7])
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same 16 bytes.
		out, err := h.Append(nil)
		if err != nil {
			t.Fatalf("parsed header does not encode: %v", err)
		}
		if !bytes.Equal(out, b[:HeaderLen]) {
			t.Fatalf("round trip: % x != % x", out, b[:HeaderLen])
		}
	})
}
