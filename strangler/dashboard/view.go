package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler"
)

// The states a route is shown in.
const (
	// StateLegacy: everything goes to the monolith.
	StateLegacy = "legacy"
	// StateShadow: everything goes to the monolith and a share is copied
	// to a new service for comparison.
	StateShadow = "shadow"
	// StateCanary: a share goes to the new service.
	StateCanary = "canary"
	// StateMigrated: everything goes to the new service.
	StateMigrated = "migrated"
	// StateCustom: a split the states do not describe (three ways, or two
	// new services).
	StateCustom = "custom"
)

// maxBody bounds what the page shows of a sample's body.
const maxBody = 4 << 10

// maxSampleBytes bounds the sample bodies one page shows in all; the
// samples beyond it are only counted.
const maxSampleBytes = 1 << 20

// view is what the page template renders.
type view struct {
	Generated time.Time
	// RulesName names the live rule set ("revision 7" or a file path);
	// empty before the first one loads.
	RulesName string
	Monolith  string
	// States counts the routes by state, in the order of the migration.
	States []stateCount
	Share  share
	Routes []routeView
	// Breakers are the upstreams in name order.
	Breakers []breakerView
	// Shadows are the shadowed routes' comparisons; NoShadowData when the
	// shadow engine reports nothing.
	Shadows      []shadowView
	NoShadowData bool
	NoHealthData bool
	// Store is whether the rules come from the route store: the revisions
	// and the buttons are shown.
	Store        bool
	Live         *revisions.Revision
	Revisions    []revisionView
	Instances    []revisions.InstanceStatus
	HistoryError string
	// Behind is set when this instance does not serve the live revision
	// yet (it follows within its poll interval).
	Behind    bool
	AdminPath string
	// Paging: the page shown (1-based) of Pages, its routes From..To
	// (1-based) of Total, and the neighbouring pages (0: none).
	Page, Pages, From, To, Total int
	Prev, Next                   int
}

type stateCount struct {
	State string
	Count int
}

// share is how much of the traffic new services served.
type share struct {
	New, All uint64
	Percent  float64
	Text     string
	Bar      template.HTML
}

type routeView struct {
	Name, Match string
	State       string
	// Label says the state in words: "canary 25 %".
	Label string
	// NewUpstream is the route's new service; empty when it has none.
	NewUpstream string
	// Percent is the new service's share of the split.
	Percent int
	Traffic strangler.RouteTraffic
	// ShareNew is the new side's share of what the route served, in words.
	ShareNew string
	// Breaker is the state of the new service's breaker ("" without one).
	Breaker  string
	Health   *RouteHealth
	Chart    template.HTML
	Analysis *AnalysisStatus
	// Parity is the shadow parity in words; empty without a report.
	Parity string
	// Flip is the flip form; nil when the route cannot be flipped from
	// the page.
	Flip *flipForm
}

// flipForm is a route's flip button: its states, and the new upstreams
// to choose from when it has none yet.
type flipForm struct {
	Route   string
	Current string
	Targets []string
	Target  string
	Percent int
}

type breakerView struct{ Upstream, State string }

type shadowView struct {
	ShadowReport
	ParityText string
	Meter      template.HTML
	Kinds      []kindCount
	Samples    []sampleView
	// Hidden counts the samples left out: the page showed enough.
	Hidden int
}

type kindCount struct {
	Kind  string
	Count uint64
}

type sampleView struct {
	ShadowSample
	PrimaryBody, ShadowBody string
}

type revisionView struct {
	revisions.Revision
	Live bool
}

// build reads the sources and lays out the page.
func (d *Dashboard) build(ctx context.Context, page int) *view {
	v := &view{Generated: d.o.Now().UTC(), AdminPath: d.o.AdminPath, Store: d.o.History != nil}
	f := d.o.Source.Rules()
	traffic := map[string]strangler.RouteTraffic{}
	for _, t := range d.o.Source.Traffic() {
		traffic[t.Route] = t
		v.Share.New += t.New.Requests
		v.Share.All += t.New.Requests + t.Legacy.Requests
	}
	if v.Share.All > 0 {
		v.Share.Percent = 100 * float64(v.Share.New) / float64(v.Share.All)
	}
	v.Share.Text, v.Share.Bar = percent(v.Share.Percent/100), shareBar(v.Share.Percent)
	breakers := d.o.Source.Breakers()
	for _, name := range slices.Sorted(maps.Keys(breakers)) {
		v.Breakers = append(v.Breakers, breakerView{name, breakers[name]})
	}
	health := byRoute(d.o.Source.Health(), func(h RouteHealth) string { return h.Route })
	v.NoHealthData = len(health) == 0
	analysis := byRoute(d.o.Source.Analysis(), func(a AnalysisStatus) string { return a.Route })
	// Only the routes of the page are laid out, with their charts and
	// shadow reports; the others are only counted.
	var onPage map[string]bool
	if f != nil {
		per := d.o.RoutesPerPage
		v.Total = len(f.Routes)
		v.Pages = max(1, (v.Total+per-1)/per)
		v.Page = min(page, v.Pages)
		first := (v.Page - 1) * per
		v.From, v.To = min(first+1, v.Total), min(first+per, v.Total)
		onPage = make(map[string]bool, per)
		for _, r := range f.Routes[first:v.To] {
			onPage[r.Name] = true
		}
		if v.Page > 1 {
			v.Prev = v.Page - 1
		}
		if v.Page < v.Pages {
			v.Next = v.Page + 1
		}
	}
	shadows := d.o.Source.Shadow()
	v.NoShadowData = len(shadows) == 0
	parity := map[string]string{}
	sampleBytes := 0
	for _, s := range shadows {
		if onPage != nil && !onPage[s.Route] {
			continue
		}
		sv := shadowView{ShadowReport: s, ParityText: percent(s.Parity), Meter: parityMeter(s.Parity)}
		for _, k := range slices.Sorted(maps.Keys(s.Mismatches)) {
			sv.Kinds = append(sv.Kinds, kindCount{k, s.Mismatches[k]})
		}
		for _, smp := range s.Samples {
			smv := sampleView{ShadowSample: smp, PrimaryBody: clip(smp.Primary.Body), ShadowBody: clip(smp.Shadow.Body)}
			if sampleBytes += len(smv.PrimaryBody) + len(smv.ShadowBody); sampleBytes > maxSampleBytes {
				sv.Hidden++
				continue
			}
			sv.Samples = append(sv.Samples, smv)
		}
		v.Shadows = append(v.Shadows, sv)
		parity[s.Route] = sv.ParityText
	}

	counts := map[string]int{}
	if f != nil {
		v.RulesName, v.Monolith = f.Name, f.Monolith
		for i, r := range f.Routes {
			if i+1 < v.From || i >= v.To {
				st, _, _, _ := stateOf(f, r)
				counts[st]++
				continue
			}
			rv := routeView{Name: r.Name, Match: matchText(r.Match), Traffic: traffic[r.Name], Parity: parity[r.Name]}
			rv.State, rv.Label, rv.NewUpstream, rv.Percent = stateOf(f, r)
			counts[rv.State]++
			if t := rv.Traffic; t.New.Requests+t.Legacy.Requests > 0 {
				rv.ShareNew = percent(float64(t.New.Requests) / float64(t.New.Requests+t.Legacy.Requests))
			}
			if rv.NewUpstream != "" {
				rv.Breaker = breakers[rv.NewUpstream]
			}
			if h, ok := health[r.Name]; ok {
				rv.Health, rv.Chart = &h, healthChart(h)
			}
			if a, ok := analysis[r.Name]; ok {
				rv.Analysis = &a
			}
			if v.Store {
				rv.Flip = flipFor(f, rv)
			}
			v.Routes = append(v.Routes, rv)
		}
	}
	for _, st := range []string{StateLegacy, StateShadow, StateCanary, StateMigrated, StateCustom} {
		if counts[st] > 0 || st != StateCustom {
			v.States = append(v.States, stateCount{st, counts[st]})
		}
	}
	if d.o.History != nil {
		d.history(ctx, v)
	}
	return v
}

// history adds the route store's revisions and instances to v; when the
// store does not answer, the page says so (the cause is logged).
func (d *Dashboard) history(ctx context.Context, v *view) {
	st, err := d.o.History.Status(ctx, d.o.SilentAfter)
	var revs []revisions.Revision
	if err == nil {
		revs, err = d.o.History.History(ctx, d.o.Revisions)
	}
	if err != nil {
		d.o.Logger.Error("dashboard: reading the route store", "err", err)
		v.HistoryError = "the route store did not answer: the revisions cannot be shown"
		return
	}
	v.Live, v.Instances = st.Live, st.Instances
	v.Behind = st.Live != nil && v.RulesName != st.Live.Name()
	for _, r := range revs {
		v.Revisions = append(v.Revisions, revisionView{Revision: r, Live: st.Live != nil && r.Number == st.Live.Number})
	}
}

func byRoute[T any](list []T, route func(T) string) map[string]T {
	m := make(map[string]T, len(list))
	for _, x := range list {
		m[route(x)] = x
	}
	return m
}

// stateOf says where route r of f stands: its state, the state in words,
// its new upstream and that upstream's share.
func stateOf(f *routes.File, r *routes.Route) (state, label, newUpstream string, pct int) {
	weights := map[string]int{}
	if r.To != "" {
		weights[r.To] = 100
	}
	for _, s := range r.Split {
		weights[s.To] = s.Weight
	}
	st, up, ok := routes.RouteState(f, r)
	if !ok {
		parts := make([]string, 0, len(r.Split))
		for _, s := range r.Split {
			parts = append(parts, fmt.Sprintf("%s %d %%", s.To, s.Weight))
		}
		return StateCustom, "split " + strings.Join(parts, " / "), "", 0
	}
	pct = weights[up]
	switch {
	case st == routes.StateLegacy && r.Shadow != nil && r.Shadow.Percent > 0:
		if up == "" {
			up = r.Shadow.To
		}
		return StateShadow, fmt.Sprintf("shadow %d %% to %s", r.Shadow.Percent, r.Shadow.To), up, pct
	case st == routes.StateCanary:
		return StateCanary, fmt.Sprintf("canary %d %%", pct), up, pct
	}
	return string(st), string(st), up, pct
}

// flipFor is rv's flip form: any route in a state can be flipped; one
// without a new upstream yet chooses among the upstreams other than the
// monolith.
func flipFor(f *routes.File, rv routeView) *flipForm {
	if rv.State == StateCustom {
		return nil
	}
	ff := &flipForm{Route: rv.Name, Current: rv.State, Target: rv.NewUpstream, Percent: rv.Percent}
	if ff.Current == StateShadow {
		ff.Current = StateLegacy
	}
	if ff.Percent <= 0 || ff.Percent >= 100 {
		ff.Percent = 10
	}
	if ff.Target == "" {
		for _, name := range slices.Sorted(maps.Keys(f.Upstreams)) {
			if name != f.Monolith {
				ff.Targets = append(ff.Targets, name)
			}
		}
		if len(ff.Targets) == 0 {
			return nil
		}
	}
	return ff
}

func matchText(m routes.Match) string {
	p := m.Path
	if p == "" {
		p = m.Prefix + " (prefix)"
	}
	if m.Host != "" {
		p = m.Host + " " + p
	}
	if len(m.Methods) > 0 {
		p = strings.Join(m.Methods, ",") + " " + p
	}
	return p
}

// percent writes a share of 0..1 as a percentage.
func percent(x float64) string {
	switch {
	case x <= 0:
		return "0 %"
	case x >= 1:
		return "100 %"
	case x < 0.001:
		return "< 0.1 %"
	}
	return fmt.Sprintf("%.1f %%", 100*x)
}

// clip bounds a sample body.
func clip(s string) string {
	if len(s) <= maxBody {
		return s
	}
	return strings.ToValidUTF8(s[:maxBody], "") + " …"
}

var funcs = template.FuncMap{
	"percent": percent,
	"ms": func(d time.Duration) string {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"states": func() []routes.State {
		return []routes.State{routes.StateLegacy, routes.StateCanary, routes.StateMigrated}
	},
	// short clips a revision's detail (an apply lists every change).
	"short": func(s string) string {
		if r := []rune(s); len(r) > 140 {
			return string(r[:140]) + " …"
		}
		return s
	},
	"ago": func(d time.Duration) string { return d.Round(time.Second).String() },
}
