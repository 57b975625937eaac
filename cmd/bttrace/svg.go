package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// Chart geometry, in pixels.
const (
	chartW  = 1000
	marginL = 64
	marginR = 16
	chartT  = 36  // space for the chart title
	headH   = 40  // panel title and legend rows
	plotH   = 120 // plot area of a panel
	panelH  = headH + plotH + 24
	chartB  = 24 // space below the last panel
)

// series is one line of a panel; values are already in the panel's unit.
type series struct {
	color  string
	dashed bool
	t, v   []float64
}

// legendItem is one entry of a panel's legend.
type legendItem struct {
	label, color string
	dashed       bool
}

// shade is a lightly filled time span.
type shade struct {
	color string
	span
}

// marks are short vertical ticks at the bottom of a panel.
type marks struct {
	color  string
	height float64
	t      []float64
}

type panel struct {
	title  string
	series []series
	legend []legendItem
	shades []shade
	marks  []marks
}

// frame maps data coordinates to the pixels of one plot area.
type frame struct {
	x0, x1, y0, y1 float64 // pixel box; y0 is the top
	t0, t1, lo, hi float64 // data ranges
}

func (f frame) x(t float64) float64 { return f.x0 + (t-f.t0)/(f.t1-f.t0)*(f.x1-f.x0) }
func (f frame) y(v float64) float64 { return f.y1 - (v-f.lo)/(f.hi-f.lo)*(f.y1-f.y0) }

func pathColor(i int) string {
	palette := [...]string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
		"#ff7f0e", "#8c564b", "#e377c2", "#17becf"}
	return palette[i%len(palette)]
}

func buildPanels(tr *trace) []panel {
	rate := pathPanel(tr, "Delivery rate (solid) and pacing rate (dashed), Mbit/s; shaded: path not up",
		1e-6, "rate_bps", "pacing_bps")
	for i, pd := range tr.paths {
		for _, s := range pd.notUp {
			rate.shades = append(rate.shades, shade{pathColor(i), s})
		}
	}
	return []panel{
		rate,
		pathPanel(tr, "In flight (solid) and window (dashed), KB", 1e-3, "inflight_bytes", "window_bytes"),
		pathPanel(tr, "Local queue delay (head sojourn), ms", 1, "queue_delay_ms", ""),
		pathPanel(tr, "Smoothed RTT, ms", 1, "srtt_ms", ""),
		sessionPanel(tr),
	}
}

// pathPanel plots column solid (and dashed, if not "") of every path,
// multiplied by scale.
func pathPanel(tr *trace, title string, scale float64, solid, dashed string) panel {
	p := panel{title: title}
	for i, pd := range tr.paths {
		c := pathColor(i)
		p.series = append(p.series, series{c, false, pd.t, scaled(pd.v[solid], scale)})
		if dashed != "" {
			p.series = append(p.series, series{c, true, pd.t, scaled(pd.v[dashed], scale)})
		}
		p.legend = append(p.legend, legendItem{pd.name, c, false})
	}
	return p
}

func sessionPanel(tr *trace) panel {
	const holdC, heldC, retxC, lateC = "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e"
	return panel{
		title: "Session: reorder hold and packets held; ticks: inner retransmissions, late packets",
		series: []series{
			{holdC, false, tr.sessT, tr.hold},
			{heldC, false, tr.sessT, tr.held},
		},
		legend: []legendItem{
			{"hold_ms (ms)", holdC, false},
			{"reorder_held (packets)", heldC, false},
			{"inner_retx rose (tall tick)", retxC, false},
			{"reorder_late rose (short tick)", lateC, false},
		},
		marks: []marks{{retxC, 12, tr.retx}, {lateC, 6, tr.late}},
	}
}

func scaled(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * k
	}
	return out
}

// niceStep returns the 1, 2 or 5 × 10^k at or above x (x > 0).
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5} {
		if x <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// niceRange widens [lo, hi] (which includes 0) to multiples of a nice step
// giving about n intervals.
func niceRange(lo, hi float64, n int) (float64, float64, float64) {
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi-lo <= 0 {
		hi = 1
	}
	step := niceStep((hi - lo) / float64(n))
	return math.Floor(lo/step+1e-9) * step, math.Ceil(hi/step-1e-9) * step, step
}

// tickLabel formats v with as many decimals as step needs.
func tickLabel(v, step float64) string {
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	return fmt.Sprintf("%.*f", dec, v)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// textWidth estimates the width of s at font-size 11.
func textWidth(s string) float64 { return 6.5 * float64(len([]rune(s))) }

func render(w *bytes.Buffer, tr *trace, title string) {
	panels := buildPanels(tr)
	height := chartT + len(panels)*panelH + chartB
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		chartW, height, chartW, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, esc(title))
	t0, t1 := tr.t0, tr.t1
	if t1 <= t0 {
		t1 = t0 + 1
	}
	for i, p := range panels {
		top := float64(chartT + i*panelH)
		drawPanel(w, p, top, t0, t1)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="11" text-anchor="middle">time, s</text>`+"\n",
		(marginL+chartW-marginR)/2, height-6)
	fmt.Fprintln(w, "</svg>")
}

func drawPanel(w *bytes.Buffer, p panel, top, t0, t1 float64) {
	lo, hi := 0.0, 0.0
	for _, s := range p.series {
		for _, v := range s.v {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	lo, hi, step := niceRange(lo, hi, 4)
	f := frame{marginL, chartW - marginR, top + headH, top + headH + plotH, t0, t1, lo, hi}
	fmt.Fprintf(w, `<g><text x="%d" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n",
		marginL, top+14, esc(p.title))
	drawLegend(w, p.legend, top+31)
	drawYAxis(w, f, step)
	drawXAxis(w, f)
	for _, s := range p.shades {
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.12"/>`+"\n",
			f.x(s.from), f.y0, math.Max(f.x(s.to)-f.x(s.from), 1), f.y1-f.y0, s.color)
	}
	for _, s := range p.series {
		drawSeries(w, f, s)
	}
	for _, m := range p.marks {
		for _, t := range m.t {
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n",
				f.x(t), f.y1, f.x(t), f.y1-m.height, m.color)
		}
	}
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/></g>`+"\n",
		f.x0, f.y0, f.x1-f.x0, f.y1-f.y0)
}

func drawLegend(w *bytes.Buffer, items []legendItem, y float64) {
	x := float64(marginL)
	for _, it := range items {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n",
			x, y-4, x+18, y-4, it.color, dash(it.dashed))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n", x+22, y, esc(it.label))
		x += 22 + textWidth(it.label) + 16
	}
}

func drawYAxis(w *bytes.Buffer, f frame, step float64) {
	n := int(math.Round((f.hi - f.lo) / step))
	for k := 0; k <= n; k++ {
		v := f.lo + float64(k)*step
		y := f.y(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", f.x0, y, f.x1, y)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`+"\n",
			f.x0-6, y+4, tickLabel(v, step))
	}
}

func drawXAxis(w *bytes.Buffer, f frame) {
	step := niceStep((f.t1 - f.t0) / 10)
	first := math.Ceil(f.t0/step - 1e-9)
	for k := 0.0; (first+k)*step <= f.t1+step*1e-9; k++ {
		t := (first + k) * step
		x := f.x(t)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`+"\n", x, f.y1, x, f.y1+4)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`+"\n",
			x, f.y1+16, tickLabel(t, step))
	}
}

func drawSeries(w *bytes.Buffer, f frame, s series) {
	if len(s.t) == 0 {
		return
	}
	fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.3" stroke-linejoin="round"%s points="`,
		s.color, dash(s.dashed))
	for i := range s.t {
		fmt.Fprintf(w, "%.1f,%.1f ", f.x(s.t[i]), f.y(s.v[i]))
	}
	fmt.Fprintln(w, `"/>`)
}

func dash(dashed bool) string {
	if dashed {
		return ` stroke-dasharray="6,3"`
	}
	return ""
}
