package framing

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt and the fuzz seed corpora")

const goldenPath = "testdata/golden.txt"

// field annotates the next n bytes of a golden vector.
type field struct {
	n    int
	what string
}

type goldenCase struct {
	name   string
	value  any // a header, a frame, or a whole control message
	fields []field
}

var goldenHello = Hello{
	Version: 1, Caps: 0, Ciphers: []uint8{CipherAES256GCM, CipherChaCha20Poly1305}, ReceiverIndex: 0x0102,
	Uplinks: []UplinkInfo{{ID: 0, Name: "eth0"}, {ID: 1, Name: "wwan0"}},
}

var goldenWelcome = Welcome{
	Version: 1, Caps: 0, Cipher: CipherAES256GCM, ReceiverIndex: 0x0a0b,
	Addrs: []ServerAddr{
		{ID: 0, AddrPort: netip.MustParseAddrPort("192.0.2.1:7351")},
		{ID: 1, AddrPort: netip.MustParseAddrPort("[2001:db8::1]:7351")},
	},
}

var goldenCases = []goldenCase{
	{"data-header", Header{Type: TypeData, KeyPhase: true, PathID: 0x21, Receiver: 0xbeef, PacketNumber: 0x010203040506}, []field{
		{1, "key phase 1, reserved 000, type 1 (data)"},
		{1, "path id 0x21 (uplink 2, server address 1)"},
		{2, "receiver index 0xbeef"},
		{6, "packet number 0x010203040506"},
	}},
	{"control-header", Header{Type: TypeControl, PathID: 0x00, Receiver: 0x0001, PacketNumber: 0}, []field{
		{1, "key phase 0, reserved 000, type 2 (control)"},
		{1, "path id 0x00 (uplink 0, server address 0)"},
		{2, "receiver index 1"},
		{6, "packet number 0"},
	}},
	{"data-inner-header", InnerHeader{Lane: 0x5a, LaneSeq: 0xabcdef, SendTime: 0x1234}, []field{
		{1, "lane 0x5a"},
		{3, "lane sequence 0xabcdef"},
		{2, "send time 0x1234 (466.0 ms mod 6.5536 s)"},
	}},
	{"probe", Probe{ID: 0xdeadbeef}, []field{
		{1, "frame type 1 (PROBE)"},
		{1, "body length 4"},
		{4, "probe id 0xdeadbeef"},
	}},
	{"probe-ack", ProbeAck{ID: 0xdeadbeef, EchoTime: 0x1234, Delay: 50}, []field{
		{1, "frame type 2 (PROBE_ACK)"},
		{1, "body length 8"},
		{4, "probe id 0xdeadbeef"},
		{2, "echoed send time 0x1234"},
		{2, "delay 50 (5 ms)"},
	}},
	{"feedback", Feedback{PathID: 0x21, HighestPN: 0x010203040506, Packets: 1000, Bytes: 1234567, EchoTime: 0x1234, Delay: 25}, []field{
		{1, "frame type 3 (FEEDBACK)"},
		{1, "body length 23"},
		{1, "path id 0x21"},
		{6, "highest packet number 0x010203040506"},
		{4, "packets received 1000"},
		{8, "bytes received 1234567"},
		{2, "echoed send time 0x1234"},
		{2, "delay 25 (2.5 ms)"},
	}},
	{"nack", Nack{PathID: 0x10, First: 0x0000000a0b0c, Count: 3}, []field{
		{1, "frame type 4 (NACK)"},
		{1, "body length 9"},
		{1, "path id 0x10"},
		{6, "first missing packet number 0x0000000a0b0c"},
		{2, "count 3"},
	}},
	{"path-status", PathStatus{PathID: 0x10, Tier: TierBackup}, []field{
		{1, "frame type 5 (PATH_STATUS)"},
		{1, "body length 2"},
		{1, "path id 0x10"},
		{1, "tier 1 (backup)"},
	}},
	{"path-challenge", PathChallenge{Data: [8]byte{0x5c, 0x0f, 0xfe, 0xe1, 0x2b, 0x9a, 0x47, 0x03}}, []field{
		{1, "frame type 6 (PATH_CHALLENGE)"},
		{1, "body length 8"},
		{8, "challenge data (8 random bytes)"},
	}},
	{"path-response", PathResponse{Data: [8]byte{0x5c, 0x0f, 0xfe, 0xe1, 0x2b, 0x9a, 0x47, 0x03}}, []field{
		{1, "frame type 7 (PATH_RESPONSE)"},
		{1, "body length 8"},
		{8, "the challenge's data, echoed"},
	}},
	{"hello-message", goldenHello, []field{
		{1, "control message type 1 (HELLO)"},
		{2, "body length 28"},
		{4, `magic "BTUN"`},
		{1, "version 1"},
		{4, "capabilities 0"},
		{1, "2 ciphers"},
		{2, "AES-256-GCM (2), then ChaCha20-Poly1305 (1)"},
		{2, "receiver index 0x0102"},
		{1, "2 uplinks"},
		{1, "uplink id 0"},
		{1, "name length 4"},
		{4, `name "eth0"`},
		{1, "uplink id 1"},
		{1, "name length 5"},
		{5, `name "wwan0"`},
	}},
	{"resume-message", Resume{ServerIndex: 0x0a0b, ClientIndex: 0x0102}, []field{
		{1, "control message type 6 (RESUME)"},
		{2, "body length 4"},
		{2, "server's receiver index 0x0a0b"},
		{2, "client's receiver index 0x0102"},
	}},
	{"uplinks-message", Uplinks{Uplinks: []UplinkInfo{{ID: 0, Name: "eth0"}, {ID: 2, Name: "lte"}}}, []field{
		{1, "control message type 7 (UPLINKS)"},
		{2, "body length 12"},
		{1, "2 uplinks"},
		{1, "uplink id 0"},
		{1, "name length 4"},
		{4, `name "eth0"`},
		{1, "uplink id 2"},
		{1, "name length 3"},
		{3, `name "lte"`},
	}},
	{"welcome-message", goldenWelcome, []field{
		{1, "control message type 2 (WELCOME)"},
		{2, "body length 41"},
		{4, `magic "BTUN"`},
		{1, "version 1"},
		{4, "capabilities 0"},
		{1, "cipher 2 (AES-256-GCM)"},
		{2, "receiver index 0x0a0b"},
		{1, "2 addresses"},
		{1, "address id 0"},
		{1, "family 4"},
		{4, "192.0.2.1"},
		{2, "port 7351"},
		{1, "address id 1"},
		{1, "family 6"},
		{16, "2001:db8::1"},
		{2, "port 7351"},
	}},
}

// goldenEncode encodes a golden value; HELLO and WELCOME as whole control messages.
func goldenEncode(v any) ([]byte, error) {
	switch v := v.(type) {
	case Header:
		b := make([]byte, HeaderLen)
		v.Put(b)
		return b, nil
	case InnerHeader:
		b := make([]byte, InnerHeaderLen)
		v.Put(b)
		return b, nil
	case Probe:
		return v.Append(nil), nil
	case ProbeAck:
		return v.Append(nil), nil
	case Feedback:
		return v.Append(nil), nil
	case Nack:
		return v.Append(nil), nil
	case PathStatus:
		return v.Append(nil), nil
	case PathChallenge:
		return v.Append(nil), nil
	case PathResponse:
		return v.Append(nil), nil
	case Hello:
		body, err := v.Append(nil)
		return AppendCtrl(nil, CtrlHello, body), err
	case Welcome:
		body, err := v.Append(nil)
		return AppendCtrl(nil, CtrlWelcome, body), err
	case Resume:
		return AppendCtrl(nil, CtrlResume, v.Append(nil)), nil
	case Uplinks:
		body, err := v.Append(nil)
		return AppendCtrl(nil, CtrlUplinks, body), err
	}
	return nil, fmt.Errorf("no golden encoder for %T", v)
}

// goldenDecode decodes b as the same kind of value as like.
func goldenDecode(like any, b []byte) (any, error) {
	switch like.(type) {
	case Header:
		// ParseHeader wants a whole datagram: pad to the minimum.
		return ParseHeader(append(bytes.Clone(b), make([]byte, MinDatagramLen-HeaderLen)...))
	case InnerHeader:
		return ParseInnerHeader(b)
	case Probe, ProbeAck, Feedback, Nack, PathStatus, PathChallenge, PathResponse:
		r := NewFrameReader(b)
		_, body, ok := r.Next()
		if !ok {
			return nil, fmt.Errorf("no frame: %v", r.Err())
		}
		if _, _, ok := r.Next(); ok || r.Err() != nil {
			return nil, fmt.Errorf("more than one frame")
		}
		switch like.(type) {
		case Probe:
			return ParseProbe(body)
		case ProbeAck:
			return ParseProbeAck(body)
		case Nack:
			return ParseNack(body)
		case PathStatus:
			return ParsePathStatus(body)
		case PathChallenge:
			return ParsePathChallenge(body)
		case PathResponse:
			return ParsePathResponse(body)
		}
		return ParseFeedback(body)
	case Hello, Welcome, Resume, Uplinks:
		typ, body, err := ReadCtrl(bytes.NewReader(b), make([]byte, MaxCtrlBody))
		if err != nil {
			return nil, err
		}
		switch typ {
		case CtrlHello:
			return ParseHello(body)
		case CtrlResume:
			return ParseResume(body)
		case CtrlUplinks:
			return ParseUplinks(body)
		}
		return ParseWelcome(body)
	}
	return nil, fmt.Errorf("no golden decoder for %T", like)
}

func spacedHex(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

// renderGolden produces testdata/golden.txt from goldenCases.
func renderGolden(t *testing.T) []byte {
	var out bytes.Buffer
	out.WriteString("# bondtun wire protocol v1 golden vectors (docs/PROTOCOL.md §5).\n")
	out.WriteString("# Checked both ways by framing's TestGolden; regenerate with\n")
	out.WriteString("#   go test ./framing -run TestGolden -update\n")
	out.WriteString("# Each vector: commented field-by-field breakdown, then `name: hex`.\n")
	for _, c := range goldenCases {
		enc, err := goldenEncode(c.value)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		fmt.Fprintf(&out, "\n# %s: %T%+v\n", c.name, c.value, c.value)
		rest := enc
		for _, f := range c.fields {
			if f.n > len(rest) {
				t.Fatalf("%s: fields describe more than its %d bytes", c.name, len(enc))
			}
			fmt.Fprintf(&out, "#   %-23s %s\n", spacedHex(rest[:f.n]), f.what)
			rest = rest[f.n:]
		}
		if len(rest) != 0 {
			t.Fatalf("%s: %d bytes not described by fields", c.name, len(rest))
		}
		fmt.Fprintf(&out, "%s: %s\n", c.name, spacedHex(enc))
	}
	return out.Bytes()
}

// readGolden returns the vectors of the golden file by name.
func readGolden(t *testing.T) map[string][]byte {
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vectors := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("golden line without name: %q", line)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(hx, " ", ""))
		if err != nil {
			t.Fatalf("golden %s: %v", name, err)
		}
		vectors[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vectors
}

func TestGolden(t *testing.T) {
	rendered := renderGolden(t)
	if *update {
		if err := os.WriteFile(goldenPath, rendered, 0o644); err != nil {
			t.Fatal(err)
		}
		writeFuzzSeeds(t)
	}
	vectors := readGolden(t)
	if len(vectors) != len(goldenCases) {
		t.Errorf("golden file has %d vectors, want %d", len(vectors), len(goldenCases))
	}
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			want, ok := vectors[c.name]
			if !ok {
				t.Fatal("missing from golden file")
			}
			enc, err := goldenEncode(c.value)
			if err != nil || !bytes.Equal(enc, want) {
				t.Errorf("encode = %s, %v\nwant     %s", spacedHex(enc), err, spacedHex(want))
			}
			got, err := goldenDecode(c.value, want)
			if err != nil || !reflect.DeepEqual(got, c.value) {
				t.Errorf("decode = %#v, %v\nwant %#v", got, err, c.value)
			}
		})
	}
	if !*update {
		if old, err := os.ReadFile(goldenPath); err == nil && !bytes.Equal(old, rendered) {
			t.Error("golden file annotations are stale; run with -update and review the diff")
		}
	}
}

// TestProtocolDocQuotesGolden keeps docs/PROTOCOL.md §5 in step with the vectors.
func TestProtocolDocQuotesGolden(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Skipf("no protocol document: %v", err)
	}
	for _, c := range goldenCases {
		enc, err := goldenEncode(c.value)
		if err != nil {
			t.Fatal(err)
		}
		if line := c.name + ": " + spacedHex(enc); !bytes.Contains(doc, []byte(line+"\n")) {
			t.Errorf("docs/PROTOCOL.md does not quote %q", line)
		}
	}
}
