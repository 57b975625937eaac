package perf

import (
	"encoding/binary"
	"errors"
	"time"
)

// Wire layout of the report a receiving server writes back on the data
// connection once the client has half-closed it (send mode). Big-endian.
//
//	off size field
//	0   1    magic 0xB9
//	1   1    status: 0 ok, 1 verify failed
//	2   2    reserved, zero
//	4   4    sample count (1..MaxSamples)
//	8   8    verify failure offset (bytes), 0 when status is ok
//	16  8    elapsed, nanoseconds
//	24  8    total bytes received
//	32  16*n samples: offset nanoseconds, cumulative bytes
const (
	ReportMagic     = 0xB9
	ReportHeaderLen = 32
	reportSampleLen = 16
	// MaxReportLen is the largest valid report.
	MaxReportLen = ReportHeaderLen + MaxSamples*reportSampleLen
)

// ErrReport reports a malformed report.
var ErrReport = errors.New("perf: malformed report")

// Report is what the receiving server tells the client about one flow.
type Report struct {
	VerifyFailed bool
	FailAt       uint64 // stream offset of the first bad byte, if VerifyFailed
	Timeline     Timeline
}

// Append appends the encoded report to b.
func (r *Report) Append(b []byte) []byte {
	var h [ReportHeaderLen]byte
	h[0] = ReportMagic
	if r.VerifyFailed {
		h[1] = 1
		binary.BigEndian.PutUint64(h[8:], r.FailAt)
	}
	s := r.Timeline.Samples
	if len(s) > MaxSamples {
		s = s[len(s)-MaxSamples:]
	}
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	binary.BigEndian.PutUint64(h[16:], uint64(r.Timeline.Elapsed))
	binary.BigEndian.PutUint64(h[24:], r.Timeline.Total)
	b = append(b, h[:]...)
	for _, x := range s {
		b = binary.BigEndian.AppendUint64(b, uint64(x.At))
		b = binary.BigEndian.AppendUint64(b, x.Bytes)
	}
	return b
}

// ParseReport decodes a report that fills b exactly. Samples must be in
// increasing time and byte order and end at or before Elapsed and Total,
// so that rates computed from them are never negative.
func ParseReport(b []byte) (Report, error) {
	if len(b) < ReportHeaderLen {
		return Report{}, ErrShort
	}
	if b[0] != ReportMagic || b[1] > 1 || b[2] != 0 || b[3] != 0 {
		return Report{}, ErrReport
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n == 0 || n > MaxSamples || len(b) != ReportHeaderLen+int(n)*reportSampleLen {
		return Report{}, ErrReport
	}
	r := Report{VerifyFailed: b[1] == 1, FailAt: binary.BigEndian.Uint64(b[8:])}
	elapsed := binary.BigEndian.Uint64(b[16:])
	if elapsed > uint64(2*MaxDuration) || (!r.VerifyFailed && r.FailAt != 0) {
		return Report{}, ErrReport
	}
	t := &r.Timeline
	t.Elapsed = time.Duration(elapsed)
	t.Total = binary.BigEndian.Uint64(b[24:])
	t.Samples = make([]Sample, n)
	var prev Sample
	for i := range t.Samples {
		p := b[ReportHeaderLen+i*reportSampleLen:]
		s := Sample{At: time.Duration(binary.BigEndian.Uint64(p)), Bytes: binary.BigEndian.Uint64(p[8:])}
		if s.At < prev.At || s.Bytes < prev.Bytes || s.At > t.Elapsed || s.Bytes > t.Total {
			return Report{}, ErrReport
		}
		t.Samples[i], prev = s, s
	}
	return r, nil
}
