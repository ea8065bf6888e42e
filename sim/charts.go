package sim

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The charts' files, as WriteCharts writes them and report.md links them.
const (
	BalanceChart   = "balance.png"
	DetectionChart = "detection.png"
)

// chartW and chartH make an 800 by 500 pixel image at vgimg's 96 dpi.
const chartW, chartH vg.Length = 600, 375

// WriteCharts draws the mean balance of each class by epoch and the
// cumulative detection of each cheating class by round as PNG files in
// dir, and returns their names.
func (r *Report) WriteCharts(dir string) ([]string, error) {
	charts := []struct {
		name string
		draw func() (*plot.Plot, plot.Legend)
	}{{BalanceChart, r.balanceChart}, {DetectionChart, r.detectionChart}}
	var names []string
	for _, c := range charts {
		p, leg := c.draw()
		if err := savePNG(p, leg, filepath.Join(dir, c.name)); err != nil {
			return names, fmt.Errorf("sim: chart %s: %w", c.name, err)
		}
		names = append(names, c.name)
	}
	return names, nil
}

// balanceChart has a line per class: its mean balance after each epoch.
func (r *Report) balanceChart() (*plot.Plot, plot.Legend) {
	p := newChart("Mean balance by strategy", "epoch", "mean balance (rewards less penalties and stake slashed)")
	leg := newLegend()
	epochs := r.Scenario.Epochs
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color, zero.Dashes = color.Gray{Y: 100}, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(zero)
	for i, c := range r.Classes {
		pts := make(plotter.XYs, len(c.Balance))
		for e, v := range c.Balance {
			pts[e] = plotter.XY{X: float64(e + 1), Y: v}
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			continue // a NaN or infinite balance: leave the class out
		}
		l.Color, l.Width, l.Dashes = classColor(i), vg.Points(2), plotutil.Dashes(i/len(palette))
		s.Color, s.Shape = classColor(i), plotutil.Shape(i)
		p.Add(l, s)
		leg.Add(fmt.Sprintf("%s (%s)", c.Strategy, c.Role), l, s)
	}
	// Whole epochs only, with a margin so the first and last points show.
	p.X.Min, p.X.Max = 0.75, float64(max(epochs, 1))+0.25
	p.X.Tick.Marker = stepTicks(1)
	// Keep zero in view, and room above and below the lines.
	lo, hi := 0.0, 0.0
	for _, c := range r.Classes {
		for _, v := range c.Balance {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	pad := math.Max((hi-lo)*0.05, 1)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	p.Y.Tick.Marker = stepTicks(niceStep((hi - lo + 2*pad) / 6))
	return p, leg
}

// detectionChart has a step line per cheating class: the share of its
// nodes detected by each round of the scenario.
func (r *Report) detectionChart() (*plot.Plot, plot.Legend) {
	rounds := float64(uint64(r.Scenario.Epochs) * r.EpochRounds)
	p := newChart("Cumulative detection by round",
		fmt.Sprintf("round (from the scenario's first; %d rounds an epoch)", r.EpochRounds), "share of the class's nodes detected")
	leg := newLegend()
	end := rounds // past it only if a detection is
	for _, n := range r.Nodes {
		end = math.Max(end, float64(n.DetectedRound))
	}
	cheaters := 0
	for i, c := range r.Classes {
		if c.Strategy == Honest {
			continue
		}
		cheaters++
		var at []float64
		for _, n := range r.Nodes {
			if n.Strategy == c.Strategy && n.Role == c.Role && n.Detected {
				at = append(at, float64(n.DetectedRound))
			}
		}
		slices.Sort(at)
		pts := plotter.XYs{{X: 0, Y: 0}}
		for k, x := range at {
			pts = append(pts, plotter.XY{X: x, Y: float64(k+1) / float64(c.Nodes)})
		}
		pts = append(pts, plotter.XY{X: end, Y: pts[len(pts)-1].Y})
		l, err := plotter.NewLine(pts)
		if err != nil {
			continue
		}
		l.StepStyle = plotter.PostStep
		// The class's colour in the balance chart, and dashes to tell
		// apart the lines that coincide.
		l.Color, l.Width, l.Dashes = classColor(i), vg.Points(2), plotutil.Dashes(cheaters-1)
		p.Add(l)
		leg.Add(fmt.Sprintf("%s (%s): %d of %d", c.Strategy, c.Role, c.Detected, c.Nodes), l)
	}
	// Ticks at the epochs' ends, unless there are too few; room below
	// zero so lines on it show.
	p.X.Min, p.X.Max = 0, math.Max(end, 1)
	p.X.Tick.Marker = stepTicks(niceStep(p.X.Max / 6))
	if r.Scenario.Epochs >= 3 {
		p.X.Tick.Marker = stepTicks(math.Max(float64(r.EpochRounds), 1))
	}
	p.Y.Min, p.Y.Max = -0.02, 1.05
	p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0%"}, {Value: 0.25, Label: "25%"},
		{Value: 0.5, Label: "50%"}, {Value: 0.75, Label: "75%"}, {Value: 1, Label: "100%"}})
	return p, leg
}

func newChart(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Title.Padding = vg.Points(8)
	p.Add(plotter.NewGrid())
	return p
}

func newLegend() plot.Legend {
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = vg.Points(10)
	leg.Padding = vg.Points(4)
	return leg
}

// savePNG draws p with its legend in a column at the right, where it
// cannot hide the lines.
func savePNG(p *plot.Plot, leg plot.Legend, path string) error {
	img := vgimg.NewWith(vgimg.UseWH(chartW, chartH), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	margin := vg.Points(8)
	legW := leg.Rectangle(dc).Size().X + 2*margin
	p.Draw(draw.Crop(dc, margin, -legW, margin, -margin))
	// Level the legend's top with the plot's data area.
	leg.YOffs = -(p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding + margin)
	leg.Draw(draw.Crop(dc, chartW-legW+margin, -margin, 0, 0))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// palette is matplotlib's ten colours, distinct on white.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// classColor is the colour of the i-th class in both charts.
func classColor(i int) color.Color { return palette[i%len(palette)] }

// niceStep is 1, 2 or 5 times a power of ten, at least x.
func niceStep(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// stepTicks marks multiples of a step (of whole multiples of it when
// there would be more than ten).
type stepTicks float64

func (s stepTicks) Ticks(lo, hi float64) []plot.Tick {
	step := float64(s)
	step *= math.Max(1, math.Ceil((hi-lo)/step/10))
	var ticks []plot.Tick
	for k := math.Ceil(lo / step); k*step <= hi; k++ {
		v := k * step
		if v == 0 {
			v = 0 // not -0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', max(0, int(-math.Floor(math.Log10(step)))), 64)})
	}
	return ticks
}
