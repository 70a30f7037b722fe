package main

import (
	"fmt"
	"strings"
	"time"
)

// result is one run's measurements.
type result struct {
	n             int
	nodes         int
	installerArgs []string
	digest        string

	installed time.Duration
	// timedOut says the install phase ended at its deadline: installed is
	// the time waited, installedOf how many were Installed by then.
	timedOut    bool
	installedOf int
	installLoad string
	floor       time.Duration
	floorLoad   string
	// floorObjects lists the kinds the floor applies per namespace.
	floorObjects string

	peakRSS         int64
	requests        float64
	reconciles      float64
	snapshotFetches float64
	bundleFetches   float64
	// requestsByMethod follows requestMethods.
	requestsByMethod []float64
	// reconcileSeconds is the mean time of one Subscription reconcile.
	reconcileSeconds float64
}

// table is the markdown table docs/scale.md shows.
func (r *result) table() string {
	var b strings.Builder
	args := "as deployed"
	if len(r.installerArgs) > 0 {
		args = "as deployed + `" + strings.Join(r.installerArgs, " ") + "`"
	}
	fmt.Fprintf(&b, "installer %s; %d fake Nodes; floor per namespace: %s\n\n", args, r.nodes, orDash(r.floorObjects))
	b.WriteString("| Subscriptions | all Installed | floor | ratio | installer peak RSS | API requests / Subscription | snapshot fetches / catalog digest | bundle fetches | reconciles / Subscription | load (1 min) install / floor |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	n := float64(r.n)
	fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n",
		r.n, r.installedCell(), seconds(r.floor), ratio(r.installed, r.floor), mib(r.peakRSS),
		perSub(r.requests, n, r.installed), count(r.snapshotFetches, r.installed), count(r.bundleFetches, r.installed),
		perSub(r.reconciles, n, r.installed), orDash(r.installLoad), orDash(r.floorLoad))
	if len(r.requestsByMethod) == len(requestMethods) {
		parts := make([]string, len(requestMethods))
		for i, m := range requestMethods {
			parts[i] = fmt.Sprintf("%s %.1f", m, r.requestsByMethod[i]/n)
		}
		fmt.Fprintf(&b, "\nAPI requests / Subscription by method: %s; mean reconcile %.2f s\n", strings.Join(parts, ", "), r.reconcileSeconds)
	}
	return b.String()
}

// installedCell is the time to all Installed, or how far the installer got
// by the deadline.
func (r *result) installedCell() string {
	if r.timedOut {
		return fmt.Sprintf("> %s (%d of %d Installed)", seconds(r.installed), r.installedOf, r.n)
	}
	return seconds(r.installed)
}

func seconds(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds())
}

func mib(n int64) string {
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// perSub and count print "—" for a run that did not get as far as measuring.
func perSub(v, n float64, measured time.Duration) string {
	if measured == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", v/n)
}

func count(v float64, measured time.Duration) string {
	if measured == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
