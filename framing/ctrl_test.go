package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCtrlRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		typ  CtrlType
		body []byte
	}{
		{"hello", CtrlHello, []byte("BTUN\x01...")},
		{"welcome", CtrlWelcome, []byte{1, 2, 3}},
		{"error", CtrlError, []byte("no common cipher")},
		{"empty error", CtrlError, nil},
		{"bye", CtrlBye, nil},
		{"keepalive", CtrlKeepalive, nil},
		{"max body", CtrlError, bytes.Repeat([]byte{'x'}, MaxCtrlBody)},
	}
	var stream []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := AppendCtrl(nil, tt.typ, tt.body)
			if len(msg) != CtrlHeaderLen+len(tt.body) {
				t.Fatalf("len = %d, want %d", len(msg), CtrlHeaderLen+len(tt.body))
			}
			buf := make([]byte, MaxCtrlBody)
			typ, body, err := ReadCtrl(bytes.NewReader(msg), buf)
			if err != nil || typ != tt.typ || !bytes.Equal(body, tt.body) {
				t.Fatalf("ReadCtrl = %v, %d bytes, %v", typ, len(body), err)
			}
			for n := range len(msg) {
				_, _, err := ReadCtrl(bytes.NewReader(msg[:n]), buf)
				want := io.ErrUnexpectedEOF
				if n == 0 {
					want = io.EOF
				}
				if err != want {
					t.Errorf("%d-byte prefix: err = %v, want %v", n, err, want)
				}
			}
		})
		stream = AppendCtrl(stream, tt.typ, tt.body)
	}
	t.Run("stream of all", func(t *testing.T) {
		r := bytes.NewReader(stream)
		buf := make([]byte, MaxCtrlBody)
		for _, tt := range tests {
			typ, body, err := ReadCtrl(r, buf)
			if err != nil || typ != tt.typ || !bytes.Equal(body, tt.body) {
				t.Fatalf("%s: ReadCtrl = %v, %d bytes, %v", tt.name, typ, len(body), err)
			}
		}
		if _, _, err := ReadCtrl(r, buf); err != io.EOF {
			t.Errorf("at end: err = %v, want io.EOF", err)
		}
	})
}

// TestReadCtrlGrow: a stream read with ReadCtrlGrow gives ReadCtrl's messages; empty ones
// need no buffer, and the buffer grows only for a body longer than any before.
func TestReadCtrlGrow(t *testing.T) {
	var stream []byte
	stream = AppendCtrl(stream, CtrlKeepalive, nil)
	stream = AppendCtrl(stream, CtrlBye, nil)
	stream = AppendCtrl(stream, CtrlHello, bytes.Repeat([]byte{'h'}, 300))
	stream = AppendCtrl(stream, CtrlError, []byte("short"))
	stream = AppendCtrl(stream, CtrlError, bytes.Repeat([]byte{'x'}, MaxCtrlBody))
	stream = AppendCtrl(stream, CtrlKeepalive, nil)
	want := []struct {
		typ    CtrlType
		n, buf int // body length, and the buffer's length after the read
	}{
		{CtrlKeepalive, 0, 0}, {CtrlBye, 0, 0}, {CtrlHello, 300, 512}, {CtrlError, 5, 512},
		{CtrlError, MaxCtrlBody, MaxCtrlBody}, {CtrlKeepalive, 0, MaxCtrlBody},
	}
	r := bytes.NewReader(stream)
	var hdr [CtrlHeaderLen]byte
	var buf []byte
	for i, w := range want {
		typ, body, err := ReadCtrlGrow(r, &hdr, &buf)
		if err != nil || typ != w.typ || len(body) != w.n || len(buf) != w.buf {
			t.Fatalf("message %d: %v, %d bytes, %v, buffer %d bytes; want %v, %d bytes, buffer %d", i, typ, len(body), err, len(buf), w.typ, w.n, w.buf)
		}
	}
	if _, _, err := ReadCtrlGrow(r, &hdr, &buf); err != io.EOF {
		t.Errorf("at end: err = %v, want io.EOF", err)
	}
	keepalives := bytes.Repeat(AppendCtrl(nil, CtrlKeepalive, nil), 100)
	var none []byte
	allocs := testing.AllocsPerRun(10, func() {
		r.Reset(keepalives)
		for range 100 {
			if _, _, err := ReadCtrlGrow(r, &hdr, &none); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 || none != nil {
		t.Errorf("100 KEEPALIVEs: %v allocations, buffer %d bytes; want none", allocs, len(none))
	}
	if _, _, err := ReadCtrlGrow(bytes.NewReader([]byte{byte(CtrlError), 0x10, 0x01}), &hdr, &none); err != ErrTooLong || none != nil {
		t.Errorf("oversized: %v, buffer %d bytes; want ErrTooLong and no buffer", err, len(none))
	}
}

func TestReadCtrlErrors(t *testing.T) {
	tests := []struct {
		name   string
		input  []byte
		bufLen int
		want   error
	}{
		{"type 0", []byte{0, 0, 0}, MaxCtrlBody, ErrBadType},
		{"type 8", []byte{8, 0, 0}, MaxCtrlBody, ErrBadType},
		{"length over max", []byte{3, 0x10, 0x01}, 1 << 16, ErrTooLong},
		{"length over buffer", []byte{3, 0, 10}, 9, ErrTooLong},
		{"buffer below header", []byte{5, 0, 0}, 2, ErrTooLong},
		{"bye with body", []byte{4, 0, 1, 'x'}, MaxCtrlBody, ErrBody},
		{"keepalive with body", []byte{5, 0, 1, 'x'}, MaxCtrlBody, ErrBody},
		{"length exactly buffer", []byte{3, 0, 2, 'o', 'k'}, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadCtrl(bytes.NewReader(tt.input), make([]byte, tt.bufLen))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendCtrlPanicsOnOversize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AppendCtrl did not panic")
		}
	}()
	AppendCtrl(nil, CtrlError, make([]byte, MaxCtrlBody+1))
}

func TestTruncateReason(t *testing.T) {
	tests := []struct {
		name    string
		reason  string
		wantLen int
	}{
		{"short", "bad version", len("bad version")},
		{"exact", strings.Repeat("a", MaxCtrlBody), MaxCtrlBody},
		{"ascii over", strings.Repeat("a", MaxCtrlBody+10), MaxCtrlBody},
		{"cut inside a rune backs off", "aa" + strings.Repeat("€", MaxCtrlBody/3+1), MaxCtrlBody - 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TruncateReason(tt.reason)
			if len(got) != tt.wantLen || !utf8.ValidString(got) || !strings.HasPrefix(tt.reason, got) {
				t.Errorf("len = %d (valid %v), want %d", len(got), utf8.ValidString(got), tt.wantLen)
			}
		})
	}
}

func TestTypeStrings(t *testing.T) {
	tests := []struct {
		name string
		got  fmt.Stringer
		want string
	}{
		{"data", TypeData, "data"}, {"control", TypeControl, "control"}, {"msg 0", MsgType(0), "unknown"},
		{"probe", FrameProbe, "PROBE"}, {"probe ack", FrameProbeAck, "PROBE_ACK"},
		{"feedback", FrameFeedback, "FEEDBACK"}, {"frame 9", FrameType(9), "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := tt.got.String(); s != tt.want {
				t.Errorf("String() = %q, want %q", s, tt.want)
			}
		})
	}
}

func TestCtrlTypeString(t *testing.T) {
	tests := []struct {
		typ  CtrlType
		want string
	}{
		{CtrlHello, "HELLO"}, {CtrlWelcome, "WELCOME"}, {CtrlError, "ERROR"},
		{CtrlBye, "BYE"}, {CtrlKeepalive, "KEEPALIVE"}, {9, "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.typ.String(); got != tt.want {
				t.Errorf("String() = %q", got)
			}
		})
	}
}
