package sim

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// chartReport is a report of a made-up run: honest edges and keepers that
// earn, two kinds of cheaters that lose, some of them caught.
func chartReport(epochs int, balances bool) *Report {
	s := Default()
	s.Epochs = epochs
	r := &Report{Scenario: s, EpochRounds: 12}
	add := func(strategy, role string, nodes int, detectedAt ...int64) {
		c := ClassReport{Strategy: strategy, Role: role, Nodes: nodes, Balance: make([]float64, epochs)}
		for e := range c.Balance {
			if balances {
				c.Balance[e] = float64(len(r.Classes)*10-15) * float64(e+1)
			}
		}
		for i := range nodes {
			n := &NodeReport{Index: len(r.Nodes) + 1, Role: role, Strategy: strategy, DetectedRound: -1}
			if i < len(detectedAt) {
				n.Detected, n.DetectedRound = true, detectedAt[i]
				c.Detected++
			}
			r.Nodes = append(r.Nodes, n)
		}
		r.Classes = append(r.Classes, c)
	}
	add(Honest, "edge", 20)
	add(Honest, "keeper", 4)
	add("offline", "edge", 3, 2, 5, 5)
	add("lazy-storage", "edge", 3, 30)
	add("bandwidth-liar", "edge", 2)
	return r
}

func checkCharts(t *testing.T, r *Report) {
	t.Helper()
	dir := t.TempDir()
	names, err := r.WriteCharts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{BalanceChart, DetectionChart}; !slices.Equal(names, want) {
		t.Fatalf("WriteCharts wrote %v, want %v", names, want)
	}
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Width < 600 || cfg.Width > 1600 || cfg.Height < 400 || cfg.Height > 1000 {
			t.Errorf("%s is %dx%d pixels", name, cfg.Width, cfg.Height)
		}
	}
}

// TestCharts: both charts are written as PNG images of a readable size,
// and report.md links them once they are.
func TestCharts(t *testing.T) {
	r := chartReport(3, true)
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), ".png") {
		t.Error("report.md links charts that were not written")
	}
	checkCharts(t, r)
	r.Charts = []string{BalanceChart, DetectionChart}
	md.Reset()
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"![Mean balance by strategy](balance.png)", "![Cumulative detection by round](detection.png)"} {
		if !strings.Contains(md.String(), link) {
			t.Errorf("report.md lacks %s", link)
		}
	}
}

// TestChartsOneEpochAllZero: one epoch and nothing earned or caught still
// draws.
func TestChartsOneEpochAllZero(t *testing.T) {
	r := chartReport(1, false)
	for _, n := range r.Nodes {
		n.Detected, n.DetectedRound = false, -1
	}
	for i := range r.Classes {
		r.Classes[i].Detected = 0
	}
	checkCharts(t, r)
}
