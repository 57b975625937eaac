package framing

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// Every fuzz target checks: no panic, and whatever parses re-encodes to something that
// parses to the same value. Seeds live in testdata/fuzz and are written by
// `go test -run TestGolden -update` (see writeFuzzSeeds).

func FuzzParseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			return
		}
		buf := make([]byte, MinDatagramLen)
		h.Put(buf)
		if !bytes.Equal(buf[:HeaderLen], data[:HeaderLen]) {
			t.Fatalf("re-encoded %x, parsed from %x", buf[:HeaderLen], data[:HeaderLen])
		}
		if again, err := ParseHeader(buf); err != nil || again != h {
			t.Fatalf("re-parse = %+v, %v; want %+v", again, err, h)
		}
		in, err := ParseInnerHeader(data[HeaderLen:])
		if err != nil {
			t.Fatalf("inner header of a %d-byte datagram: %v", len(data), err)
		}
		in.Put(buf[HeaderLen:])
		if again, err := ParseInnerHeader(buf[HeaderLen:]); err != nil || again != in {
			t.Fatalf("inner re-parse = %+v, %v; want %+v", again, err, in)
		}
	})
}

func FuzzFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := ValidateFrames(data)
		r := NewFrameReader(data)
		var rebuilt []byte
		for typ, body, ok := r.Next(); ok; typ, body, ok = r.Next() {
			rebuilt = appendReencodedFrame(t, rebuilt, typ, body)
		}
		if r.Err() != nil && valid == nil {
			t.Fatalf("reader failed with %v but ValidateFrames passed", r.Err())
		}
		if valid == nil && !bytes.Equal(rebuilt, data) {
			t.Fatalf("re-encoded %x, parsed from %x", rebuilt, data)
		}
	})
}

// appendReencodedFrame parses a known frame and appends its re-encoding, checking that
// it parses back to the same value; it copies unknown or malformed frames verbatim.
func appendReencodedFrame(t *testing.T, b []byte, typ FrameType, body []byte) []byte {
	var enc []byte
	var v, again any
	var err error
	switch typ {
	case FrameProbe:
		var p Probe
		if p, err = ParseProbe(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParseProbe(enc[FrameHeaderLen:])
		}
	case FrameProbeAck:
		var p ProbeAck
		if p, err = ParseProbeAck(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParseProbeAck(enc[FrameHeaderLen:])
		}
	case FrameFeedback:
		var p Feedback
		if p, err = ParseFeedback(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParseFeedback(enc[FrameHeaderLen:])
		}
	case FrameNack:
		var p Nack
		if p, err = ParseNack(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParseNack(enc[FrameHeaderLen:])
		}
	case FramePathStatus:
		var p PathStatus
		if p, err = ParsePathStatus(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParsePathStatus(enc[FrameHeaderLen:])
		}
	case FramePathChallenge:
		var p PathChallenge
		if p, err = ParsePathChallenge(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParsePathChallenge(enc[FrameHeaderLen:])
		}
	case FramePathResponse:
		var p PathResponse
		if p, err = ParsePathResponse(body); err == nil {
			enc, v = p.Append(nil), p
			again, err = ParsePathResponse(enc[FrameHeaderLen:])
		}
	}
	if enc == nil {
		b = append(b, byte(typ), byte(len(body)))
		return append(b, body...)
	}
	if err != nil || again != v {
		t.Fatalf("frame %d re-parse = %+v, %v; want %+v", typ, again, err, v)
	}
	return append(b, enc...)
}

func FuzzHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHello(data)
		if err != nil {
			return
		}
		enc, err := h.Append(nil)
		if err != nil {
			t.Fatalf("parsed hello %+v does not re-encode: %v", h, err)
		}
		if again, err := ParseHello(enc); err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("re-parse = %+v, %v; want %+v", again, err, h)
		}
	})
}

func FuzzWelcome(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWelcome(data)
		if err != nil {
			return
		}
		enc, err := w.Append(nil)
		if err != nil {
			t.Fatalf("parsed welcome %+v does not re-encode: %v", w, err)
		}
		if again, err := ParseWelcome(enc); err != nil || !reflect.DeepEqual(again, w) {
			t.Fatalf("re-parse = %+v, %v; want %+v", again, err, w)
		}
	})
}

func FuzzResume(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResume(data)
		if err != nil {
			if len(data) == ResumeLen {
				t.Fatalf("a %d-byte body refused: %v", ResumeLen, err)
			}
			return
		}
		if enc := r.Append(nil); !bytes.Equal(enc, data) {
			t.Fatalf("re-encoded %x, parsed from %x", enc, data)
		}
	})
}

func FuzzUplinks(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUplinks(data)
		if err != nil {
			return
		}
		enc, err := u.Append(nil)
		if err != nil {
			t.Fatalf("parsed uplinks %+v do not re-encode: %v", u, err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoded %x, parsed from %x", enc, data)
		}
	})
}

func FuzzReadCtrl(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := make([]byte, MaxCtrlBody)
		typ, body, err := ReadCtrl(bytes.NewReader(data), buf)
		// ReadCtrlGrow reads the same, from no buffer and from a short one.
		for _, start := range [][]byte{nil, make([]byte, 1)} {
			var hdr [CtrlHeaderLen]byte
			grown := start
			gt, gb, gerr := ReadCtrlGrow(bytes.NewReader(data), &hdr, &grown)
			if gt != typ || !bytes.Equal(gb, body) || gerr != err {
				t.Fatalf("ReadCtrlGrow = %v %x, %v; ReadCtrl = %v %x, %v", gt, gb, gerr, typ, body, err)
			}
			if len(grown) > MaxCtrlBody || gerr == nil && len(gb) > 0 && &gb[0] != &grown[0] {
				t.Fatalf("ReadCtrlGrow's buffer: %d bytes, body not in it", len(grown))
			}
		}
		if err != nil {
			return
		}
		enc := AppendCtrl(nil, typ, body)
		if !bytes.Equal(enc, data[:len(enc)]) {
			t.Fatalf("re-encoded %x, read from %x", enc, data[:len(enc)])
		}
		again, againBody, err := ReadCtrl(bytes.NewReader(enc), make([]byte, MaxCtrlBody))
		if err != nil || again != typ || !bytes.Equal(againBody, body) {
			t.Fatalf("re-read = %v %x, %v; want %v %x", again, againBody, err, typ, body)
		}
	})
}

// writeFuzzSeeds writes each fuzz target's seed corpus from the golden vectors plus a
// few edge cases, in the `go test fuzz v1` format.
func writeFuzzSeeds(t *testing.T) {
	v := readGolden(t)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pad := make([]byte, TagLen)
	body := func(msg []byte) []byte { return msg[CtrlHeaderLen:] }
	seeds := map[string]map[string][]byte{
		"FuzzParseHeader": {
			"data":     cat(v["data-header"], v["data-inner-header"], []byte{0x45, 0, 0, 20}, pad),
			"control":  cat(v["control-header"], make([]byte, InnerHeaderLen), v["probe"], pad),
			"short":    cat(v["data-header"], v["data-inner-header"]),
			"reserved": cat([]byte{0x91}, v["data-header"][1:], v["data-inner-header"], pad),
		},
		"FuzzFrames": {
			"all":        cat(v["probe"], v["probe-ack"], v["feedback"]),
			"unknown":    cat([]byte{0xc8, 3, 'a', 'b', 'c'}, v["probe"]),
			"truncated":  cat(v["probe"], v["feedback"][:9]),
			"bad-len":    {byte(FrameProbe), 2, 0, 0},
			"path":       cat(v["path-challenge"], v["path-response"], v["probe"]),
			"path-short": {byte(FramePathChallenge), 7, 1, 2, 3, 4, 5, 6, 7},
		},
		"FuzzHello": {
			"golden":  body(v["hello-message"]),
			"version": []byte("BTUN\x02"),
		},
		"FuzzWelcome": {
			"golden": body(v["welcome-message"]),
		},
		"FuzzReadCtrl": {
			"hello":     v["hello-message"],
			"welcome":   v["welcome-message"],
			"bye":       {byte(CtrlBye), 0, 0},
			"error":     AppendCtrl(nil, CtrlError, []byte("no common cipher")),
			"oversized": {byte(CtrlError), 0x10, 0x01},
			"resume":    v["resume-message"],
			"uplinks":   v["uplinks-message"],
		},
		"FuzzUplinks": {
			"golden":    body(v["uplinks-message"]),
			"empty":     {0},
			"dup-id":    {2, 1, 1, 'a', 1, 1, 'b'},
			"truncated": {1, 0, 5, 'e', 't'},
		},
		"FuzzResume": {
			"golden": body(v["resume-message"]),
			"short":  {1, 2, 3},
		},
	}
	for target, files := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
