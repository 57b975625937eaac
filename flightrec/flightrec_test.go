package flightrec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRingKeepsNewestInOrder(t *testing.T) {
	for _, tc := range []struct{ size, adds int }{{4, 0}, {4, 3}, {4, 4}, {4, 9}, {1, 5}} {
		r := New(tc.size)
		for i := 0; i < tc.adds; i++ {
			r.Add(Sample{At: time.Duration(i)})
		}
		got := r.Samples(nil)
		want := min(tc.adds, tc.size)
		if len(got) != want || r.Len() != want {
			t.Fatalf("size %d, %d adds: %d samples (Len %d), want %d", tc.size, tc.adds, len(got), r.Len(), want)
		}
		for i, s := range got {
			if wantAt := time.Duration(tc.adds - want + i); s.At != wantAt {
				t.Errorf("size %d, %d adds: sample %d At = %d, want %d", tc.size, tc.adds, i, s.At, wantAt)
			}
		}
	}
}

func TestRingAllocatesOnlyOnce(t *testing.T) {
	r := New(64)
	r.Add(Sample{})
	if n := testing.AllocsPerRun(1000, func() { r.Add(Sample{At: 1}) }); n != 0 {
		t.Errorf("Add allocates %.1f times per call after the first", n)
	}
}

func TestWriteCSV(t *testing.T) {
	samples := []Sample{
		{At: 10 * time.Millisecond, Path: 0x10, State: 1, RateBps: 50e6, PacingBps: 62.5e6, SRTT: 20500 * time.Microsecond,
			MinRTT: 20 * time.Millisecond, Jitter: 1500 * time.Microsecond, Window: 150000, Inflight: 120000, Queue: 3000, QueueDelay: 2 * time.Millisecond,
			CodelDrops: 1, Repairs: 2, Lost: 3, TxPackets: 400, RxPackets: 50, Hold: 30 * time.Millisecond, ReorderHeld: 7,
			ReorderLate: 1, InnerRetx: 4},
		{At: 20 * time.Millisecond, Path: 0x20, State: 2},
	}
	names := Names{
		Path:  func(id uint8) string { return fmt.Sprintf("p%x", id) },
		State: func(s uint8) string { return []string{"a", "up", "suspect"}[s] },
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, []string{"peer server"}, samples, names); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || lines[0] != "# peer server" || lines[1] != Header {
		t.Fatalf("CSV = %q", b.String())
	}
	want := "10.000,p10,up,50000000,62500000,20.500,20.000,1.500,150000,120000,3000,2.000,1,2,3,400,50,30.000,7,1,4"
	if lines[2] != want {
		t.Errorf("row = %q\nwant  %q", lines[2], want)
	}
	if cols, hdr := strings.Count(lines[3], ","), strings.Count(Header, ","); cols != hdr {
		t.Errorf("row has %d commas, header %d", cols, hdr)
	}
	if !strings.HasPrefix(lines[3], "20.000,p20,suspect,") {
		t.Errorf("second row = %q", lines[3])
	}
}

func TestNewAllocatesNothingUntilAdd(t *testing.T) {
	r := New(1 << 16)
	if r.buf != nil || r.Len() != 0 || len(r.Samples(nil)) != 0 {
		t.Fatal("an unused ring holds a buffer or samples")
	}
}
