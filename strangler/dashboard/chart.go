package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// The charts are small inline SVGs drawn here; the stylesheet colours
// them by class (legacy, new, track, fill). Every text in them is
// escaped.

// svg is an SVG being drawn.
type svg struct{ strings.Builder }

func newSVG(w, h int, label string) *svg {
	s := &svg{}
	fmt.Fprintf(s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		w, h, w, h, template.HTMLEscapeString(label))
	return s
}

func (s *svg) rect(class string, x, y, w, h float64, title string) {
	fmt.Fprintf(s, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f">`, class, x, y, max(w, 0), max(h, 0))
	if title != "" {
		fmt.Fprintf(s, `<title>%s</title>`, template.HTMLEscapeString(title))
	}
	s.WriteString(`</rect>`)
}

func (s *svg) text(class string, x, y float64, anchor, t string) {
	fmt.Fprintf(s, `<text class="%s" x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, class, x, y, anchor, template.HTMLEscapeString(t))
}

func (s *svg) done() template.HTML {
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) //nolint:gosec // built here; every text escaped
}

// shareBar is a bar of pct % (0..100) served by new services.
func shareBar(pct float64) template.HTML {
	s := newSVG(400, 18, fmt.Sprintf("%.1f %% of requests served by new services", pct))
	s.rect("track", 0, 0, 400, 18, "")
	s.rect("new", 0, 0, 4*clamp(pct, 0, 100), 18, fmt.Sprintf("new services: %.1f %%", pct))
	return s.done()
}

// parityMeter is a bar of a parity score (0..1).
func parityMeter(p float64) template.HTML {
	class := "fill good"
	switch {
	case p < 0.95:
		class = "fill bad"
	case p < 0.99:
		class = "fill fair"
	}
	s := newSVG(160, 12, "parity "+percent(p))
	s.rect("track", 0, 0, 160, 12, "")
	s.rect(class, 0, 0, 160*clamp(p, 0, 1), 12, "parity "+percent(p))
	return s.done()
}

// healthChart draws a route's two sides next to each other: the 5xx rate,
// and the latency percentiles p50, p90, p99.
func healthChart(h RouteHealth) template.HTML {
	const width, height, top, base = 330, 130, 16, 110
	s := newSVG(width, height, fmt.Sprintf("%s: 5xx rate and latency, legacy beside new", h.Route))
	plot := float64(base - top)

	// The 5xx rate: two bars on a scale of at least 1 %.
	s.text("title", 40, 11, "middle", "5xx rate")
	top5 := max(h.Legacy.ErrorRate, h.New.ErrorRate, 0.01) * 1.2
	for i, side := range []struct {
		class string
		rate  float64
	}{{"legacy", h.Legacy.ErrorRate}, {"new", h.New.ErrorRate}} {
		x := 12 + float64(i)*30
		bh := plot * clamp(side.rate/top5, 0, 1)
		s.rect(side.class, x, base-bh, 24, bh, fmt.Sprintf("%s: %s 5xx", side.class, percent(side.rate)))
		s.text("value", x+12, base-bh-3, "middle", percent(side.rate))
	}
	s.text("axis", 40, base+14, "middle", "legacy · new")

	// The latencies: three pairs of bars on a scale of at least 1 ms.
	s.text("title", 210, 11, "middle", "latency")
	peak := max(h.Legacy.P99, h.New.P99, h.Legacy.P90, h.New.P90, h.Legacy.P50, h.New.P50, time.Millisecond)
	scale := float64(peak) * 1.2
	for g, p := range []struct {
		name   string
		legacy time.Duration
		new    time.Duration
	}{{"p50", h.Legacy.P50, h.New.P50}, {"p90", h.Legacy.P90, h.New.P90}, {"p99", h.Legacy.P99, h.New.P99}} {
		x0 := 100 + float64(g)*76
		for i, side := range []struct {
			class string
			d     time.Duration
		}{{"legacy", p.legacy}, {"new", p.new}} {
			x := x0 + float64(i)*32
			bh := plot * clamp(float64(side.d)/scale, 0, 1)
			label := fmt.Sprintf("%.0f", float64(side.d)/float64(time.Millisecond))
			s.rect(side.class, x, base-bh, 28, bh, fmt.Sprintf("%s %s: %s ms", side.class, p.name, label))
			s.text("value", x+14, base-bh-3, "middle", label)
		}
		s.text("axis", x0+30, base+14, "middle", p.name+" (ms)")
	}
	return s.done()
}

func clamp(x, lo, hi float64) float64 { return min(max(x, lo), hi) }
