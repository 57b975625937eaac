// Command bttrace draws a bondtun flight-recorder trace (the CSV that
// `bondtun status --trace FILE` writes, see bondtun/flightrec) as an SVG
// chart: five stacked panels over a shared time axis in seconds, showing per
// path the delivery and pacing rates, the window and bytes in flight, the
// local queue delay and the smoothed RTT, and for the session the reorder
// hold, the packets waiting in it, and marks where inner retransmissions or
// late packets occurred.
//
// Usage:
//
//	bttrace [-o out.svg] [-title TEXT] trace.csv
//
// The trace is read from stdin if its name is "-". Columns are found by
// their header name; unknown columns are ignored and lines starting with "#"
// are comments.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// numericColumns are the number columns bttrace needs; t_ms is the time.
func numericColumns() []string {
	return []string{"t_ms", "rate_bps", "pacing_bps", "window_bytes", "inflight_bytes",
		"queue_delay_ms", "srtt_ms", "hold_ms", "reorder_held", "reorder_late", "inner_retx"}
}

// span is a time interval in seconds.
type span struct{ from, to float64 }

// pathData is one path's rows: times in seconds and each numeric column.
type pathData struct {
	name    string
	t       []float64
	v       map[string][]float64
	notUp   []span  // spans whose state was not "up"
	inNotUp bool    // the state is not "up" since notUpAt
	notUpAt float64 // seconds
}

// trace is a parsed flight-recorder CSV.
type trace struct {
	paths      []*pathData // in order of first appearance
	sessT      []float64   // one entry per sample time
	hold, held []float64   // session hold_ms and reorder_held at sessT
	retx, late []float64   // times at which inner_retx / reorder_late rose
	t0, t1     float64     // first and last time, seconds
}

// parser turns CSV lines into a trace.
type parser struct {
	idx    map[string]int // column name → field index
	ncols  int
	byName map[string]*pathData
	tr     trace
}

func parseTrace(r io.Reader) (*trace, error) {
	p := &parser{byName: map[string]*pathData{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, ",")
		var err error
		if p.idx == nil {
			err = p.header(fields)
		} else {
			err = p.row(fields)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.idx == nil {
		return nil, errors.New("no header line")
	}
	if len(p.tr.paths) == 0 {
		return nil, errors.New("no samples")
	}
	p.finish()
	return &p.tr, nil
}

func (p *parser) header(fields []string) error {
	p.idx = map[string]int{}
	for i, f := range fields {
		p.idx[strings.TrimSpace(f)] = i
	}
	p.ncols = len(fields)
	for _, c := range append([]string{"path", "state"}, numericColumns()...) {
		if _, ok := p.idx[c]; !ok {
			return fmt.Errorf("header lacks needed column %q", c)
		}
	}
	return nil
}

func (p *parser) row(fields []string) error {
	if len(fields) != p.ncols {
		return fmt.Errorf("%d fields, the header has %d", len(fields), p.ncols)
	}
	vals := map[string]float64{}
	for _, c := range numericColumns() {
		s := strings.TrimSpace(fields[p.idx[c]])
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("column %s: bad number %q", c, s)
		}
		vals[c] = v
	}
	t := vals["t_ms"] / 1000
	if n := len(p.tr.sessT); n > 0 && t < p.tr.sessT[n-1] {
		return fmt.Errorf("time %g ms goes backwards", vals["t_ms"])
	}
	pd := p.path(strings.TrimSpace(fields[p.idx["path"]]))
	p.session(pd, t, vals)
	pd.add(t, strings.TrimSpace(fields[p.idx["state"]]), vals)
	return nil
}

// path returns the named path's data, adding it on first sight.
func (p *parser) path(name string) *pathData {
	pd := p.byName[name]
	if pd == nil {
		pd = &pathData{name: name, v: map[string][]float64{}}
		p.byName[name] = pd
		p.tr.paths = append(p.tr.paths, pd)
	}
	return pd
}

// session records the session-wide columns once per sample time and the
// times at which the session counters rose since pd's previous row.
func (p *parser) session(pd *pathData, t float64, vals map[string]float64) {
	tr := &p.tr
	if n := len(tr.sessT); n == 0 || tr.sessT[n-1] != t {
		tr.sessT = append(tr.sessT, t)
		tr.hold = append(tr.hold, vals["hold_ms"])
		tr.held = append(tr.held, vals["reorder_held"])
	}
	tr.retx = addEvent(tr.retx, pd.v["inner_retx"], vals["inner_retx"], t)
	tr.late = addEvent(tr.late, pd.v["reorder_late"], vals["reorder_late"], t)
}

// addEvent appends t to events if the counter rose above its last value in
// prev and t is not already the last event.
func addEvent(events, prev []float64, now, t float64) []float64 {
	if len(prev) == 0 || now <= prev[len(prev)-1] {
		return events
	}
	if n := len(events); n > 0 && events[n-1] == t {
		return events
	}
	return append(events, t)
}

func (pd *pathData) add(t float64, state string, vals map[string]float64) {
	pd.t = append(pd.t, t)
	for c, v := range vals {
		if c != "t_ms" {
			pd.v[c] = append(pd.v[c], v)
		}
	}
	switch {
	case state != "up" && !pd.inNotUp:
		pd.inNotUp, pd.notUpAt = true, t
	case state == "up" && pd.inNotUp:
		pd.notUp = append(pd.notUp, span{pd.notUpAt, t})
		pd.inNotUp = false
	}
}

// finish closes open not-up spans and sets the time range.
func (p *parser) finish() {
	tr := &p.tr
	tr.t0, tr.t1 = tr.sessT[0], tr.sessT[len(tr.sessT)-1]
	for _, pd := range tr.paths {
		if pd.inNotUp {
			pd.notUp = append(pd.notUp, span{pd.notUpAt, tr.t1})
			pd.inNotUp = false
		}
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bttrace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the SVG to `FILE` (default stdout)")
	title := fs.String("title", "", "chart title `TEXT` (default: bondtun trace and the file name)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bttrace [-o out.svg] [-title TEXT] trace.csv")
		fmt.Fprintln(fs.Output(), "Draws a bondtun flight-recorder CSV as an SVG chart; reads stdin if the file is -.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	name := fs.Arg(0)
	if *title == "" {
		*title = "bondtun trace: " + name
	}
	if err := convert(name, *out, *title, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "bttrace: %v\n", err)
		return 1
	}
	return 0
}

// convert reads the trace name ("-" for stdin) and writes its chart to out
// ("" for stdout).
func convert(name, out, title string, stdin io.Reader, stdout io.Writer) error {
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	tr, err := parseTrace(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var buf bytes.Buffer
	render(&buf, tr, title)
	if out == "" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
