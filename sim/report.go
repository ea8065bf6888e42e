package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

// Report is what a run found: per strategy, how many of its nodes the
// network caught, how fast, and what they earned; per node, the details.
type Report struct {
	Scenario Scenario `json:"scenario"`
	// FirstEpoch and FirstRound are where the scenario's epochs start on
	// the beacon; rounds in the report count from FirstRound.
	FirstEpoch  uint64 `json:"first_epoch"`
	FirstRound  uint64 `json:"first_round"`
	EpochRounds uint64 `json:"epoch_rounds"`
	// Batches is how many of the scenario's epochs settled on the ledger;
	// Missing lists those that did not.
	Batches int      `json:"batches"`
	Missing []uint64 `json:"missing_epochs,omitempty"`
	// LateRounds counts the rounds in which the machine fell behind the
	// network's clock: the round's beacon reached the run more than half
	// a round late, or more than one in a hundred goroutine wake-ups
	// waited over a tenth of a round for a core.
	LateRounds int `json:"late_rounds,omitempty"`
	// Stopped says why and when the run stopped before its last batch
	// settled, such as an interrupt; empty for a run that ran its course.
	Stopped string        `json:"stopped,omitempty"`
	Classes []ClassReport `json:"classes"`
	Nodes   []*NodeReport `json:"nodes"`
	// Charts are the files WriteCharts wrote, for report.md to show.
	Charts []string `json:"-"`
}

// ClassReport sums up the nodes of one strategy.
type ClassReport struct {
	Strategy string `json:"strategy"`
	Role     string `json:"role"`
	Nodes    int    `json:"nodes"`
	// Detected counts the cheaters whose cheating a batch shows (fails of
	// the kind they cheat on, or the faults they declared);
	// MeanRoundsToDetection is from the first round of the scenario to
	// each one's first failed receipt of that kind.
	Detected              int     `json:"detected"`
	MeanRoundsToDetection float64 `json:"mean_rounds_to_detection"`
	// ExpectedRounds is the mean rounds to detection the detection
	// formula predicts, and Rounds99 the rounds by which it catches 99 of
	// 100 such cheaters; zero for strategies not caught round by round.
	ExpectedRounds float64 `json:"expected_rounds,omitempty"`
	Rounds99       int     `json:"rounds_99,omitempty"`
	// FalsePositives counts honest nodes that were penalised; it must be
	// zero.
	FalsePositives int    `json:"false_positives"`
	Rewards        uint64 `json:"rewards"`
	Penalties      uint64 `json:"penalties"`
	// Slashed is the keepers' stake lost to disputes.
	Slashed uint64 `json:"slashed,omitempty"`
	// Balance is the class's mean balance after each epoch.
	Balance []float64 `json:"balance"`
}

// NodeReport is one keeper or edge.
type NodeReport struct {
	Index    int      `json:"index"`
	ID       string   `json:"id"`
	Role     string   `json:"role"`
	Strategy string   `json:"strategy"`
	Offers   []string `json:"offers,omitempty"`
	Reward   uint64   `json:"reward"`
	Penalty  uint64   `json:"penalty"`
	// Balance is what the node earned less its penalties and, for a
	// keeper, less the stake it lost to disputes, per epoch: the stake in
	// the epoch the ledger slashed it (after the last epoch, in the last).
	Balance []int64           `json:"balance"`
	Fails   map[string]uint64 `json:"fails,omitempty"`
	Faults  uint64            `json:"faults,omitempty"`
	// Slashed is the stake a keeper lost to disputes.
	Slashed uint64 `json:"slashed,omitempty"`
	// Shunned says that most honest nodes' gossip scored the keeper's
	// forging host below zero, and stopped taking its messages.
	Shunned bool `json:"shunned,omitempty"`
	// FirstFail is, per kind, the round (from the scenario's first) of
	// the node's first failed receipt.
	FirstFail map[string]uint64 `json:"first_fail,omitempty"`
	// FailReason is, per kind, the reason of that first failed receipt.
	FailReason map[string]string `json:"fail_reason,omitempty"`
	Detected   bool              `json:"detected"`
	// DetectedRound is the round its cheating was first shown, -1 if never.
	DetectedRound int64 `json:"detected_round"`
}

func newReport(s Scenario, firstEpoch, firstRound, epochRounds uint64) *Report {
	return &Report{Scenario: s, FirstEpoch: firstEpoch, FirstRound: firstRound, EpochRounds: epochRounds}
}

func (r *Report) addNode(m *member) *NodeReport {
	nr := &NodeReport{
		Index: m.index, ID: m.id.String(), Role: string(m.role), Strategy: m.strategy.Name,
		Balance: make([]int64, r.Scenario.Epochs), DetectedRound: -1,
	}
	if m.role == config.RoleEdge {
		nr.Offers = append([]string{"liveness"}, r.Scenario.offers(m, m.index-1-r.Scenario.Keepers)...)
	}
	r.Nodes = append(r.Nodes, nr)
	return nr
}

// addResult adds an edge's result in the batch of the scenario's epoch i.
func (n *NodeReport) addResult(i int, res proofs.EdgeResult) {
	n.Reward += res.Reward
	n.Penalty += res.Penalty
	n.Balance[i] += int64(res.Reward) - int64(res.Penalty)
	for _, k := range res.Kinds {
		if k.Fails > 0 {
			if n.Fails == nil {
				n.Fails = map[string]uint64{}
			}
			n.Fails[string(k.Kind)] += k.Fails
		}
		n.Faults += k.Faults
	}
}

// noteFail records a failed receipt of kind in round (from the first),
// with its reason.
func (n *NodeReport) noteFail(kind proofs.Kind, round uint64, reason string) {
	if n.FirstFail == nil {
		n.FirstFail, n.FailReason = map[string]uint64{}, map[string]string{}
	}
	if first, ok := n.FirstFail[string(kind)]; !ok || round < first || (round == first && reason < n.FailReason[string(kind)]) {
		n.FirstFail[string(kind)], n.FailReason[string(kind)] = round, reason
	}
}

// finish decides detections and sums up the classes.
func (r *Report) finish() {
	classes := map[string]*ClassReport{}
	var order []string
	for _, n := range r.Nodes {
		key := n.Role + "/" + n.Strategy
		c, ok := classes[key]
		if !ok {
			c = &ClassReport{Strategy: n.Strategy, Role: n.Role, Balance: make([]float64, r.Scenario.Epochs)}
			classes[key] = c
			order = append(order, key)
		}
		c.Nodes++
		c.Rewards += n.Reward
		c.Penalties += n.Penalty
		c.Slashed += n.Slashed
		var sum int64
		for i, b := range n.Balance {
			sum += b
			c.Balance[i] += float64(sum)
		}
		if n.Strategy == Honest {
			if n.Penalty > 0 || n.Slashed > 0 {
				c.FalsePositives++
			}
			continue
		}
		switch by := strategies[n.Strategy].caughtBy; by {
		case "faults":
			if n.Faults > 0 {
				n.Detected, n.DetectedRound = true, 0
			}
		case "slashed":
			// DetectedRound was set where the keeper first cheated.
			n.Detected = n.Slashed > 0
		case "shunned":
			n.Detected = n.Shunned
		default:
			if round, ok := n.FirstFail[by]; ok && n.Fails[by] > 0 {
				n.Detected, n.DetectedRound = true, int64(round)
			}
		}
		if n.Detected {
			c.Detected++
			c.MeanRoundsToDetection += float64(n.DetectedRound)
		}
	}
	slices.SortFunc(order, func(a, b string) int {
		// Honest classes first, then by role and strategy.
		ha, hb := strings.HasSuffix(a, "/"+Honest), strings.HasSuffix(b, "/"+Honest)
		if ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, key := range order {
		c := classes[key]
		if c.Detected > 0 {
			c.MeanRoundsToDetection /= float64(c.Detected)
		}
		for i := range c.Balance {
			c.Balance[i] /= float64(c.Nodes)
		}
		r.Classes = append(r.Classes, *c)
	}
}

// predict sets each class's detection figures from the formulas.
func (r *Report) predict(nw config.Network) {
	for i, c := range r.Classes {
		for _, st := range r.Scenario.Strategies {
			if st.Name != c.Strategy {
				continue
			}
			if mean, ok := r.Scenario.expectedRounds(nw, st); ok {
				r.Classes[i].ExpectedRounds = mean
				r.Classes[i].Rounds99, _ = r.Scenario.predictedRounds(nw, st, 0.99)
			}
			break
		}
	}
}

// FalsePositives is the number of honest nodes penalised.
func (r *Report) FalsePositives() int {
	n := 0
	for _, c := range r.Classes {
		n += c.FalsePositives
	}
	return n
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report for a person to read.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	s := r.Scenario
	fmt.Fprintf(&b, "# Simulation report\n\n")
	rate, latency := "unlimited", fmt.Sprint(s.Link.LatencyMS)
	if s.Link.Mbit > 0 {
		rate = fmt.Sprintf("%g", s.Link.Mbit)
		if s.Link.MbitMax > s.Link.Mbit {
			rate += fmt.Sprintf(" to %g", s.Link.MbitMax)
		}
		rate += " Mbit/s"
	}
	if s.Link.LatencyMSMax > s.Link.LatencyMS {
		latency += fmt.Sprintf(" to %d", s.Link.LatencyMSMax)
	}
	fmt.Fprintf(&b, "%d edges and %d keepers for %d epochs of %d rounds of %v (seed %d). Each node's access link runs at %s with %s ms of latency; two nodes are joined at the lower rate and the sum of the latencies. ",
		s.Edges, s.Keepers, s.Epochs, r.EpochRounds, s.Period(), s.Seed, rate, latency)
	fmt.Fprintf(&b, "Epochs %d to %d of the beacon; %d of %d settled on the ledger.\n\n",
		r.FirstEpoch, r.FirstEpoch+uint64(s.Epochs)-1, r.Batches, s.Epochs)
	if r.Stopped != "" {
		fmt.Fprintf(&b, "**The run was stopped early:** %s. This report is what the ledger and the keepers held by then.\n\n", r.Stopped)
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(&b, "**Epochs without a batch:** %v. Their verdicts are missing from the figures below.\n\n", r.Missing)
	}
	if r.LateRounds > 0 {
		fmt.Fprintf(&b, "**The machine fell behind:** in %d rounds, the network's work waited for the machine's cores (a beacon came more than half a round late, or more than one goroutine wake-up in a hundred waited over a tenth of a round to run). A network this large needs longer rounds (`round_seconds`) or fewer nodes on this machine; until then its verdicts are partly the machine's.\n\n", r.LateRounds)
	}
	if fp := r.FalsePositives(); fp > 0 {
		fmt.Fprintf(&b, "**%d honest node(s) were penalised.** See the nodes below.\n\n", fp)
	} else {
		fmt.Fprintf(&b, "No honest node was penalised.\n\n")
	}
	b.WriteString("## By strategy\n\n")
	b.WriteString("The formulas predict, from the chances of challenge and of a challenge catching the cheat, the mean rounds to detection and the rounds by which 99 of 100 such cheaters are caught.\n\n")
	b.WriteString("| strategy | role | nodes | detected | mean rounds to detection | predicted mean (99% by) | honest penalised | rewards | penalties | stake slashed | mean balance at the end |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Classes {
		detected, rounds, predicted, fp := "–", "–", "–", "–"
		if c.Strategy == Honest {
			fp = fmt.Sprint(c.FalsePositives)
		} else {
			detected = fmt.Sprintf("%d of %d", c.Detected, c.Nodes)
			if c.Detected > 0 {
				rounds = fmt.Sprintf("%.1f", c.MeanRoundsToDetection)
			}
		}
		if c.Rounds99 > 0 {
			predicted = fmt.Sprintf("%.1f (%d)", c.ExpectedRounds, c.Rounds99)
		}
		end := 0.0
		if len(c.Balance) > 0 {
			end = c.Balance[len(c.Balance)-1]
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %d | %d | %d | %.1f |\n",
			c.Strategy, c.Role, c.Nodes, detected, rounds, predicted, fp, c.Rewards, c.Penalties, c.Slashed, end)
	}
	r.chart(&b, DetectionChart, "Cumulative detection by round")
	b.WriteString("\n## Mean balance by epoch\n\nWhat each class earned, less its penalties and the stake its keepers lost to disputes, by the end of each epoch. A slash counts in the epoch the ledger took it: after the batch of the epoch it is for.\n\n| strategy | role |")
	for i := range s.Epochs {
		fmt.Fprintf(&b, " epoch %d |", i+1)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", s.Epochs) + "\n")
	for _, c := range r.Classes {
		fmt.Fprintf(&b, "| %s | %s |", c.Strategy, c.Role)
		for _, v := range c.Balance {
			fmt.Fprintf(&b, " %.1f |", v)
		}
		b.WriteString("\n")
	}
	r.chart(&b, BalanceChart, "Mean balance by strategy")
	b.WriteString("\n## Cheaters, and honest nodes penalised\n\n")
	b.WriteString("| node | strategy | offers | detected in round | fails | faults | reward | penalty | first fail |\n|---:|---|---|---:|---|---:|---:|---:|---|\n")
	for _, n := range r.Nodes {
		if n.Strategy == Honest && n.Penalty == 0 {
			continue
		}
		round := "never"
		if n.Detected {
			round = fmt.Sprint(n.DetectedRound)
		}
		var fails []string
		if n.Slashed > 0 {
			fails = append(fails, fmt.Sprintf("slashed %d of its stake", n.Slashed))
		}
		if n.Shunned {
			fails = append(fails, "its forged challenges refused, its gossip shunned")
		}
		for _, k := range proofs.Kinds() {
			if f := n.Fails[string(k)]; f > 0 {
				fails = append(fails, fmt.Sprintf("%s %d", k, f))
			}
		}
		var first []string
		for _, k := range proofs.Kinds() {
			if why, ok := n.FailReason[string(k)]; ok {
				first = append(first, fmt.Sprintf("%s, round %d: %s", k, n.FirstFail[string(k)], strings.ReplaceAll(clip(why, 120), "|", "/")))
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %d | %d | %d | %s |\n",
			n.Index, n.Strategy, strings.Join(n.Offers, ", "), round, strings.Join(fails, ", "), n.Faults, n.Reward, n.Penalty, strings.Join(first, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// chart links the chart in file if WriteCharts wrote it.
func (r *Report) chart(b *strings.Builder, file, title string) {
	if slices.Contains(r.Charts, file) {
		fmt.Fprintf(b, "\n![%s](%s)\n", title, file)
	}
}

// clip shortens a reason for a table cell.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
