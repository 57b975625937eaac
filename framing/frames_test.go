package framing

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func randFeedback(r *rand.Rand) Feedback {
	return Feedback{
		PathID:    uint8(r.Uint32()),
		HighestPN: r.Uint64() & MaxPacketNumber,
		Packets:   r.Uint32(),
		Bytes:     r.Uint64(),
		EchoTime:  uint16(r.Uint32()),
		Delay:     uint16(r.Uint32()),
	}
}

func randPathData(r *rand.Rand) (d [PathDataLen]byte) {
	for i := range d {
		d[i] = byte(r.Uint32())
	}
	return d
}

// frameCodec adapts one frame type to a common shape for table-driven round trips.
type frameCodec struct {
	name   string
	typ    FrameType
	random func(*rand.Rand) (encoded []byte, length int, value any)
	parse  func([]byte) (any, error)
}

var frameCodecs = []frameCodec{
	{
		name: "probe", typ: FrameProbe,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := Probe{ID: r.Uint32()}
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParseProbe(b) },
	},
	{
		name: "probe ack", typ: FrameProbeAck,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := ProbeAck{ID: r.Uint32(), EchoTime: uint16(r.Uint32()), Delay: uint16(r.Uint32())}
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParseProbeAck(b) },
	},
	{
		name: "feedback", typ: FrameFeedback,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := randFeedback(r)
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParseFeedback(b) },
	},
	{
		name: "nack", typ: FrameNack,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := Nack{PathID: uint8(r.Uint32()), First: r.Uint64() & MaxPacketNumber, Count: uint16(r.Uint32())}
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParseNack(b) },
	},
	{
		name: "path status", typ: FramePathStatus,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := PathStatus{PathID: uint8(r.Uint32()), Tier: uint8(r.IntN(3))}
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParsePathStatus(b) },
	},
	{
		name: "path challenge", typ: FramePathChallenge,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := PathChallenge{Data: randPathData(r)}
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParsePathChallenge(b) },
	},
	{
		name: "path response", typ: FramePathResponse,
		random: func(r *rand.Rand) ([]byte, int, any) {
			f := PathResponse{Data: randPathData(r)}
			return f.Append(nil), f.Len(), f
		},
		parse: func(b []byte) (any, error) { return ParsePathResponse(b) },
	},
}

func TestFrameRoundTrip(t *testing.T) {
	for _, c := range frameCodecs {
		t.Run(c.name, func(t *testing.T) {
			r := newRand(t)
			for range 1000 {
				enc, n, want := c.random(r)
				if len(enc) != n {
					t.Fatalf("Append wrote %d bytes, Len() = %d", len(enc), n)
				}
				fr := NewFrameReader(enc)
				typ, body, ok := fr.Next()
				if !ok || typ != c.typ {
					t.Fatalf("Next = %d, %v; err %v", typ, ok, fr.Err())
				}
				got, err := c.parse(body)
				if err != nil || got != want {
					t.Fatalf("parse = %+v, %v; want %+v", got, err, want)
				}
				if _, _, ok := fr.Next(); ok || fr.Err() != nil {
					t.Fatalf("after the only frame: ok %v err %v", ok, fr.Err())
				}
			}
		})
	}
}

// TestFrameEveryPrefixFails checks both layers: every strict prefix of an encoded frame
// is a truncated frame for the reader, and every strict prefix of a body is rejected by
// the frame's parser.
func TestFrameEveryPrefixFails(t *testing.T) {
	for _, c := range frameCodecs {
		t.Run(c.name, func(t *testing.T) {
			enc, _, _ := c.random(newRand(t))
			for n := 1; n < len(enc); n++ {
				if err := ValidateFrames(enc[:n]); !errors.Is(err, ErrShort) {
					t.Errorf("%d-byte prefix: ValidateFrames = %v, want ErrShort", n, err)
				}
			}
			body := enc[FrameHeaderLen:]
			for n := range len(body) {
				if _, err := c.parse(body[:n]); !errors.Is(err, ErrFrameLen) {
					t.Errorf("%d-byte body: err = %v, want ErrFrameLen", n, err)
				}
			}
			if _, err := c.parse(append(body, 0)); !errors.Is(err, ErrFrameLen) {
				t.Errorf("body with an extra byte: err = %v, want ErrFrameLen", err)
			}
		})
	}
}

func TestFrameReader(t *testing.T) {
	probe := Probe{ID: 7}.Append(nil)
	ack := ProbeAck{ID: 7, EchoTime: 1, Delay: 2}.Append(nil)
	unknown := []byte{200, 3, 'a', 'b', 'c'}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name      string
		payload   []byte
		wantTypes []FrameType
		wantErr   error
		validErr  error // from ValidateFrames
	}{
		{"empty payload", nil, nil, nil, nil},
		{"one probe", probe, []FrameType{FrameProbe}, nil, nil},
		{"probe then ack", cat(probe, ack), []FrameType{FrameProbe, FrameProbeAck}, nil, nil},
		{"unknown frame is returned and skippable", cat(unknown, probe), []FrameType{200, FrameProbe}, nil, nil},
		{"zero-length unknown frame", []byte{0, 0}, []FrameType{0}, nil, nil},
		{"lone type byte", cat(probe, []byte{1}), []FrameType{FrameProbe}, ErrShort, ErrShort},
		{"body cut", cat(probe, ack[:5]), []FrameType{FrameProbe}, ErrShort, ErrShort},
		{"known frame with wrong length", []byte{byte(FrameProbe), 2, 0, 0}, []FrameType{FrameProbe}, nil, ErrFrameLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewFrameReader(tt.payload)
			var got []FrameType
			for typ, _, ok := r.Next(); ok; typ, _, ok = r.Next() {
				got = append(got, typ)
			}
			if !slices.Equal(got, tt.wantTypes) {
				t.Errorf("types = %v, want %v", got, tt.wantTypes)
			}
			if r.Err() != tt.wantErr {
				t.Errorf("Err = %v, want %v", r.Err(), tt.wantErr)
			}
			if _, _, ok := r.Next(); ok {
				t.Error("Next after the end returned a frame")
			}
			if err := ValidateFrames(tt.payload); err != tt.validErr {
				t.Errorf("ValidateFrames = %v, want %v", err, tt.validErr)
			}
		})
	}
}

// TestFrameBodyAliasesPayload guards the zero-copy contract and that a body's capacity
// ends at the body, so appending to it cannot overwrite the next frame.
func TestFrameBodyAliasesPayload(t *testing.T) {
	payload := append(Probe{ID: 1}.Append(nil), Probe{ID: 2}.Append(nil)...)
	r := NewFrameReader(payload)
	_, body, _ := r.Next()
	if &body[0] != &payload[FrameHeaderLen] {
		t.Error("body does not alias the payload")
	}
	if cap(body) != ProbeBodyLen {
		t.Errorf("cap(body) = %d, want %d", cap(body), ProbeBodyLen)
	}
}

func TestFeedbackAppendPanicsOnWidePN(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Append did not panic")
		}
	}()
	Feedback{HighestPN: MaxPacketNumber + 1}.Append(nil)
}
