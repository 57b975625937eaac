package framing_test

import (
	"fmt"

	"github.com/bondtun/bondtun/framing"
)

// A receiver validates a control payload, then acts on each frame it knows.
func ExampleFrameReader() {
	payload := framing.Probe{ID: 7}.Append(nil)
	payload = append(payload, 0xc8, 1, 0) // a frame type from the future: skipped
	payload = framing.ProbeAck{ID: 6, EchoTime: 100, Delay: 20}.Append(payload)

	if err := framing.ValidateFrames(payload); err != nil {
		fmt.Println("drop:", err)
		return
	}
	r := framing.NewFrameReader(payload)
	for t, body, ok := r.Next(); ok; t, body, ok = r.Next() {
		switch t {
		case framing.FrameProbe:
			p, _ := framing.ParseProbe(body)
			fmt.Println(t, p.ID)
		case framing.FrameProbeAck:
			a, _ := framing.ParseProbeAck(body)
			fmt.Println(t, a.ID, framing.DurationOf16(a.Delay))
		default:
			fmt.Println("skip", t)
		}
	}
	// Output:
	// PROBE 7
	// skip UNKNOWN
	// PROBE_ACK 6 2ms
}

// A sender writes the header and inner header in place, in front of the payload it
// will seal from framing.HeaderLen on.
func ExampleHeader_Put() {
	buf := make([]byte, framing.PayloadOffset, 1500)
	h := framing.Header{Type: framing.TypeData, PathID: framing.PathID(2, 1), Receiver: 0xbeef, PacketNumber: 5}
	h.Put(buf)
	in := framing.InnerHeader{Lane: 3, LaneSeq: 9, SendTime: 0x1234}
	in.Put(buf[framing.HeaderLen:])
	fmt.Printf("% x\n", buf)
	// Output: 01 21 be ef 00 00 00 00 00 05 03 00 00 09 12 34
}
