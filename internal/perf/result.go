package perf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ResultPrefix starts the final line btperf prints on stdout.
const ResultPrefix = "RESULT"

// ErrResult reports a line that is not a well-formed RESULT line.
var ErrResult = errors.New("perf: malformed RESULT line")

// Result is the outcome of a TCP test, printed as the final stdout line.
type Result struct {
	Mbps      float64    `json:"mbps"`
	Bytes     uint64     `json:"bytes"`
	Secs      float64    `json:"secs"`
	Flows     int        `json:"flows"`
	Verified  bool       `json:"verified"`
	Intervals []Interval `json:"-"`
}

// String formats r as
// "RESULT mbps=<float> bytes=<int> secs=<float> flows=<P>[ verified=yes]".
func (r Result) String() string {
	s := fmt.Sprintf("%s mbps=%.3f bytes=%d secs=%.3f flows=%d", ResultPrefix, r.Mbps, r.Bytes, r.Secs, r.Flows)
	if r.Verified {
		s += " verified=yes"
	}
	return s
}

// UDPResult is the outcome of a UDP test.
type UDPResult struct {
	PPS       float64 `json:"pps"`
	Mbps      float64 `json:"mbps"`
	Loss      float64 `json:"loss"` // fraction lost, 0..1
	Reordered uint64  `json:"reordered"`
	Sent      uint64  `json:"sent"`
	Received  uint64  `json:"received"`
}

// String formats r as "RESULT pps=<float> mbps=<float> loss=<fraction> reordered=<int>".
func (r UDPResult) String() string {
	return fmt.Sprintf("%s pps=%.1f mbps=%.3f loss=%.6f reordered=%d", ResultPrefix, r.PPS, r.Mbps, r.Loss, r.Reordered)
}

// ParseFields splits a RESULT line into its key=value fields.
func ParseFields(line string) (map[string]string, error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != ResultPrefix {
		return nil, ErrResult
	}
	m := make(map[string]string, len(f)-1)
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, ErrResult
		}
		m[k] = v
	}
	return m, nil
}

// ParseResult parses a TCP RESULT line.
func ParseResult(line string) (Result, error) {
	m, err := ParseFields(line)
	if err != nil {
		return Result{}, err
	}
	var r Result
	var errs []error
	r.Mbps, err = strconv.ParseFloat(m["mbps"], 64)
	errs = append(errs, err)
	r.Bytes, err = strconv.ParseUint(m["bytes"], 10, 64)
	errs = append(errs, err)
	r.Secs, err = strconv.ParseFloat(m["secs"], 64)
	errs = append(errs, err)
	r.Flows, err = strconv.Atoi(m["flows"])
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrResult, err)
	}
	r.Verified = m["verified"] == "yes"
	return r, nil
}

// ParseUDPResult parses a UDP RESULT line.
func ParseUDPResult(line string) (UDPResult, error) {
	m, err := ParseFields(line)
	if err != nil {
		return UDPResult{}, err
	}
	var r UDPResult
	var errs []error
	r.PPS, err = strconv.ParseFloat(m["pps"], 64)
	errs = append(errs, err)
	r.Mbps, err = strconv.ParseFloat(m["mbps"], 64)
	errs = append(errs, err)
	r.Loss, err = strconv.ParseFloat(m["loss"], 64)
	errs = append(errs, err)
	r.Reordered, err = strconv.ParseUint(m["reordered"], 10, 64)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return UDPResult{}, fmt.Errorf("%w: %v", ErrResult, err)
	}
	return r, nil
}
