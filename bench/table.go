package main

import (
	"fmt"
	"math"
	"strings"
	"text/tabwriter"
)

// row is one line of the results table.
type row struct {
	name        string
	unit        string
	vals        []float64 // one per server, in b.servers order; NaN = not measured
	lowerBetter bool
	need        float64                      // required pop3d speedup over Dovecot; 0 = none
	abs         func(float64) (bool, string) // absolute target for pop3d's value
	info        bool                         // no target: shown for information
	cat         float64                      // retr-all: the cat limit in MB/s (0 = none)
}

func (b *bench) addRow(r row) { b.rows = append(b.rows, r) }

// progressRow prints the rows added since the last call.
func (b *bench) progressRow() {
	for ; b.printed < len(b.rows); b.printed++ {
		r := b.rows[b.printed]
		var parts []string
		for i, s := range b.servers {
			parts = append(parts, fmt.Sprintf("%s %s", s.name, formatVal(r.vals[i], r.unit)))
		}
		b.progress("  %-34s %s", r.name, strings.Join(parts, "   "))
	}
}

func formatVal(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	var s string
	switch {
	case v == 0:
		s = "0"
	case math.Abs(v) >= 100:
		s = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func (b *bench) serverIndex(name string) int {
	for i, s := range b.servers {
		if s.name == name {
			return i
		}
	}
	return -1
}

// speedup is how many times better pop3d did than Dovecot.
func (r row) speedup(p, d int) float64 {
	if p < 0 || d < 0 || math.IsNaN(r.vals[p]) || math.IsNaN(r.vals[d]) || r.vals[p] == 0 || r.vals[d] == 0 {
		return math.NaN()
	}
	if r.lowerBetter {
		return r.vals[d] / r.vals[p]
	}
	return r.vals[p] / r.vals[d]
}

// verdict says whether pop3d met the row's targets.
func (r row) verdict(p, d int) (target, met string) {
	if r.info || p < 0 {
		return "", ""
	}
	var targets []string
	ok := true
	known := true
	if r.need > 0 {
		if r.need == 1 {
			targets = append(targets, "no slower")
		} else {
			targets = append(targets, fmt.Sprintf(">= %gx", r.need))
		}
		sp := r.speedup(p, d)
		if math.IsNaN(sp) {
			known = false
		} else if sp < r.need*0.995 {
			ok = false
		}
	}
	if r.abs != nil {
		good, text := r.abs(r.vals[p])
		targets = append(targets, text)
		if math.IsNaN(r.vals[p]) {
			known = false
		} else if !good {
			ok = false
		}
	}
	if r.cat > 0 {
		targets = append(targets, ">= 0.8x limit")
		if math.IsNaN(r.vals[p]) {
			known = false
		} else if r.vals[p] < 0.8*r.cat {
			ok = false
		}
	}
	if len(targets) == 0 {
		return "", ""
	}
	switch {
	case !ok:
		met = "NO"
	case !known:
		met = "?"
	default:
		met = "yes"
	}
	return strings.Join(targets, ", "), met
}

// table renders the results: a Markdown table, then notes and problems.
func (b *bench) table() string {
	var sb strings.Builder
	mode := "full"
	if b.cfg.quick {
		mode = "quick (BENCH_QUICK=1)"
	}
	fmt.Fprintf(&sb, "\npop3d bench, %s mode, seed %d. Medians; speedup = how many times better pop3d is than Dovecot.\n\n", mode, b.cfg.seed)
	p, d := b.serverIndex("pop3d"), b.serverIndex("Dovecot")
	tw := tabwriter.NewWriter(&sb, 0, 0, 1, ' ', 0)
	header := []string{"scenario"}
	for _, s := range b.servers {
		header = append(header, s.name)
	}
	if p >= 0 && d >= 0 {
		header = append(header, "pop3d/Dovecot", "speedup")
	}
	header = append(header, "target", "met")
	fmt.Fprintln(tw, "| "+strings.Join(header, "\t| ")+"\t|")
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintln(tw, "| "+strings.Join(seps, "\t| ")+"\t|")
	for _, r := range b.rows {
		cells := []string{r.name}
		for i := range b.servers {
			cells = append(cells, formatVal(r.vals[i], r.unit))
		}
		if p >= 0 && d >= 0 {
			ratio, sp := "", ""
			if !math.IsNaN(r.vals[p]) && !math.IsNaN(r.vals[d]) && r.vals[d] != 0 && !strings.Contains(r.name, "limit") {
				ratio = fmt.Sprintf("%.2f", r.vals[p]/r.vals[d])
			}
			if v := r.speedup(p, d); !math.IsNaN(v) && !strings.Contains(r.name, "limit") {
				sp = fmt.Sprintf("%.2fx", v)
			}
			cells = append(cells, ratio, sp)
		}
		target, met := r.verdict(p, d)
		cells = append(cells, target, met)
		fmt.Fprintln(tw, "| "+strings.Join(cells, "\t| ")+"\t|")
	}
	tw.Flush()
	for _, r := range b.rows {
		if r.cat > 0 {
			for i, s := range b.servers {
				if !math.IsNaN(r.vals[i]) {
					fmt.Fprintf(&sb, "\nretr-all %s: %.0f%% of the copy limit (%.0f MB/s, the faster of the two limits).", s.name, 100*r.vals[i]/r.cat, r.cat)
				}
			}
			sb.WriteString("\n")
		}
	}
	if len(b.notes) > 0 {
		sb.WriteString("\nNotes:\n")
		for _, n := range b.notes {
			sb.WriteString("- " + n + "\n")
		}
	}
	if len(b.problems) > 0 {
		sb.WriteString("\nPROBLEMS (the run failed):\n")
		for _, n := range b.problems {
			sb.WriteString("- " + n + "\n")
		}
	}
	return sb.String()
}
