package main

import (
	"fmt"
	"strings"
	"time"
)

// opm v1.73.0 serving the real catalog, copied from the corpus README
// (/work/shared/corpus/README.md): median of 3 on these machines, measured
// separately from this program.
var opm = struct {
	readyBuilt, readyPrebuilt     time.Duration
	rssBuilt, hwmBuilt, rss, hwm  int64 // MiB
	listBundles, listBundlesBuilt time.Duration
	listEntries                   int
	headP50, headP99              time.Duration
	gbfc, gbfcBuilt               float64
	defaultP50, defaultP50Built   time.Duration
	headP50Built, headP99Built    time.Duration
	note                          string
}{
	readyBuilt: 25300 * time.Millisecond, readyPrebuilt: 6600 * time.Millisecond,
	rssBuilt: 628, hwmBuilt: 682, rss: 609, hwm: 668,
	listBundles: 591 * time.Millisecond, listBundlesBuilt: 630 * time.Millisecond, listEntries: 9370,
	headP50: 730 * time.Microsecond, headP99: 9600 * time.Microsecond,
	headP50Built: 710 * time.Microsecond, headP99Built: 9300 * time.Microsecond,
	gbfc: 1561, gbfcBuilt: 1571,
	defaultP50: 108 * time.Millisecond, defaultP50Built: 119 * time.Millisecond,
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

func mib(b int64) int64 { return (b + 1<<19) >> 20 }

// faster compares a lower-is-better time.
func faster(ferry, other time.Duration) string {
	if ferry <= 0 || other <= 0 {
		return "–"
	}
	if ferry <= other {
		return fmt.Sprintf("%.1f× faster", float64(other)/float64(ferry))
	}
	return fmt.Sprintf("**%.1f× slower**", float64(ferry)/float64(other))
}

func groupInt(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func (r *result) rps() float64 {
	if r.gbfcElapsed <= 0 {
		return 0
	}
	return float64(r.gbfcN) / r.gbfcElapsed.Seconds()
}

// cpuPer1000 is catalogd's CPU time per 1,000 GetBundleForChannel answers.
func (r *result) cpuPer1000() time.Duration {
	if r.gbfcN == 0 {
		return 0
	}
	return r.gbfcCPU * 1000 / time.Duration(r.gbfcN)
}

func startMed(s []startResult) time.Duration {
	return time.Duration(medianStart(s, func(x startResult) int64 { return int64(x.ready) }))
}

func writeRealTable(b *strings.Builder, r *result, corpus string) {
	fr, fh := medianStart(r.second, func(x startResult) int64 { return x.rssReady }), medianStart(r.second, func(x startResult) int64 { return x.hwmReady })
	cr, ch := medianStart(r.first, func(x startResult) int64 { return x.rssReady }), medianStart(r.first, func(x startResult) int64 { return x.hwmReady })
	res := medianStart(r.first, func(x startResult) int64 { return x.resident })
	fmt.Fprintf(b, "### catalogd serving %s (%d packages, %d channels, %s files, %d MB)\n\n", corpus, r.packages, r.channels, groupInt(r.files), r.size/1e6)
	fmt.Fprintf(b, "Ferry: median of %d starts each, catalogd as its own process over 127.0.0.1. ", len(r.second))
	b.WriteString("opm: copied from the corpus README, measured separately (same machines, different time; compare side by side, not to the last digit).\n\n")
	b.WriteString("| measurement | Ferry catalogd | opm serve v1.73.0 (measured separately) | Ferry vs opm |\n|---|---|---|---|\n")
	fmt.Fprintf(b, "| start → first ListPackages answer, first start (catalog files evicted from the page cache, %d MiB still resident) vs opm building its cache at start | %s | %s | %s |\n",
		mib(res), fmtDur(startMed(r.first)), fmtDur(opm.readyBuilt), faster(startMed(r.first), opm.readyBuilt))
	fmt.Fprintf(b, "| start → first ListPackages answer, second start (page cache warm; Ferry keeps no cache of its own) vs opm with a prebuilt cache | %s | %s | %s |\n",
		fmtDur(startMed(r.second)), fmtDur(opm.readyPrebuilt), faster(startMed(r.second), opm.readyPrebuilt))
	fmt.Fprintf(b, "| catalogd CPU time (user+sys) until ready, first / second start | %s / %s | – | – |\n",
		fmtDur(r.cpuReadyFirst), fmtDur(r.cpuReadySecond))
	fmt.Fprintf(b, "| RSS when ready / peak, first start | %d / %d MiB | %d / %d MiB | %.2f× / %.2f× the memory |\n",
		mib(cr), mib(ch), opm.rssBuilt, opm.hwmBuilt, float64(mib(cr))/float64(opm.rssBuilt), float64(mib(ch))/float64(opm.hwmBuilt))
	fmt.Fprintf(b, "| RSS when ready / peak, second start | %d / %d MiB | %d / %d MiB | %.2f× / %.2f× the memory |\n",
		mib(fr), mib(fh), opm.rss, opm.hwm, float64(mib(fr))/float64(opm.rss), float64(mib(fh))/float64(opm.hwm))
	fmt.Fprintf(b, "| RSS after the serving tests below: right after the last request / once catalogd released memory (%s) / peak | %d / %d / %d MiB | – | – |\n",
		releasedWord(r.released), mib(r.rssBusy), mib(r.rssEnd), mib(r.hwmEnd))
	fmt.Fprintf(b, "| memory when ready (last start) | %s | – | – |\n", r.memReady)
	fmt.Fprintf(b, "| from ready until the channel heads' answers are kept (the serving tests start then) | %s | – | – |\n", fmtDur(r.warmAfterReady))
	fmt.Fprintf(b, "| memory right after the last serving request | %s | – | – |\n", r.memBusy)
	fmt.Fprintf(b, "| memory after the serving tests (%s) | %s | – | – |\n", releasedWord(r.released), r.memEnd)
	fmt.Fprintf(b, "| full ListBundles stream (entries) | %s (%s entries) | %s (%s entries) | %s |\n",
		fmtDur(medianDur(r.listBundles)), groupInt(r.bundlesAPI), fmtDur(opm.listBundles), groupInt(opm.listEntries), faster(medianDur(r.listBundles), opm.listBundles))
	fmt.Fprintf(b, "| the same until the client has the entries' bytes, before decoding them | %s | – | – |\n",
		fmtDur(medianDur(r.listBundlesRaw)))
	fmt.Fprintf(b, "| GetBundle over the %d channel heads (content included) p50 / p99 | %s / %s | %s / %s | %s / %s |\n",
		r.heads, fmtDur(pct(r.headLat, 50)), fmtDur(pct(r.headLat, 99)), fmtDur(opm.headP50), fmtDur(opm.headP99),
		faster(pct(r.headLat, 50), opm.headP50), faster(pct(r.headLat, 99), opm.headP99))
	fmt.Fprintf(b, "| the same until the client has the answer's bytes, before decoding them, p50 / p99 | %s / %s | – | – |\n",
		fmtDur(pct(r.headRawLat, 50)), fmtDur(pct(r.headRawLat, 99)))
	ratio := "–"
	if r.rps() > 0 {
		if r.rps() >= opm.gbfc {
			ratio = fmt.Sprintf("%.1f× the throughput", r.rps()/opm.gbfc)
		} else {
			ratio = fmt.Sprintf("**%.2f× the throughput**", r.rps()/opm.gbfc)
		}
	}
	fmt.Fprintf(b, "| GetBundleForChannel, %d concurrent clients (%s requests) | %s req/s | %s req/s | %s |\n",
		r.gbfcClients, groupInt(r.gbfcN), groupInt(int(r.rps()+0.5)), groupInt(int(opm.gbfc)), ratio)
	fmt.Fprintf(b, "| catalogd CPU time (user+sys) per 1,000 GetBundleForChannel answers | %s | – | – |\n", fmtDur(r.cpuPer1000()))
	fmt.Fprintf(b, "| the same with clients that take the answers' bytes without decoding them: throughput / CPU per 1,000 answers | %s req/s / %s | – | – |\n",
		groupInt(int(r.gbfcRaw.rps()+0.5)), fmtDur(r.gbfcRaw.cpuPer1000()))
	fmt.Fprintf(b, "| GetDefaultBundleThatProvides p50 (%d APIs of default channel heads) | %s | %s | %s |\n",
		r.nGVKs, fmtDur(pct(r.defaultLat, 50)), fmtDur(opm.defaultP50), faster(pct(r.defaultLat, 50), opm.defaultP50))
	errs := r.headErrs + r.gbfcErrs + r.defaultErrs
	fmt.Fprintf(b, "\nErrors: %d (GetBundle %d, GetBundleForChannel %d, GetDefaultBundleThatProvides %d). GetBundle over the heads moved %d MB of manifests; ListBundles %d MB.\n",
		errs, r.headErrs, r.gbfcErrs, r.defaultErrs, r.headBytes/1e6, r.listBundlesBytes/1e6)
}

// Serving targets on the real catalog: a fifth of the CPU per answer and
// 2.5× the throughput measured before answers were kept encoded (735 ms
// per 1,000 answers, 1,950 answers/s), and the latency, memory and start
// bounds set with them.
const (
	targetP99         = time.Millisecond
	targetRPS         = 2.5 * 1950
	targetCPUPer1000  = 147 * time.Millisecond
	targetRSSReleased = 120 << 20
	targetColdStart   = time.Second
	targetListBundles = 30 * time.Millisecond
)

// writeTargets says which serving targets the run met, beside the floor
// where it was measured.
func writeTargets(b *strings.Builder, r *result) {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	f := r.floor
	floor := func(cell func(*floorResult) string) string {
		if f == nil {
			return "–"
		}
		return cell(f)
	}
	b.WriteString("\n| target | catalogd | floor: a bare gRPC server sending the same answers from memory | catalogd |\n|---|---|---|---|\n")
	fmt.Fprintf(b, "| GetBundle over the heads p99 < %s, decoded / bytes only | %s / %s | %s | %s / %s |\n", fmtDur(targetP99),
		fmtDur(pct(r.headLat, 99)), fmtDur(pct(r.headRawLat, 99)),
		floor(func(f *floorResult) string { return fmtDur(pct(f.headLat, 99)) + " / " + fmtDur(pct(f.headRawLat, 99)) }),
		met(pct(r.headLat, 99) < targetP99), met(pct(r.headRawLat, 99) < targetP99))
	fmt.Fprintf(b, "| GetBundleForChannel, %d clients ≥ %s req/s, decoded / bytes only | %s / %s req/s | %s | %s / %s |\n", r.gbfcClients, groupInt(int(targetRPS)),
		groupInt(int(r.rps()+0.5)), groupInt(int(r.gbfcRaw.rps()+0.5)),
		floor(func(f *floorResult) string {
			return groupInt(int(f.decoded.rps()+0.5)) + " / " + groupInt(int(f.raw.rps()+0.5)) + " req/s"
		}),
		met(r.rps() >= targetRPS), met(r.gbfcRaw.rps() >= targetRPS))
	fmt.Fprintf(b, "| GetBundleForChannel p99 < %s with %d clients at once, decoded / bytes only | %s / %s | %s | %s / %s |\n", fmtDur(targetP99), r.gbfcClients,
		fmtDur(pct(r.gbfcLat, 99)), fmtDur(pct(r.gbfcRaw.lat, 99)),
		floor(func(f *floorResult) string {
			return fmtDur(pct(f.decoded.lat, 99)) + " / " + fmtDur(pct(f.raw.lat, 99))
		}),
		met(pct(r.gbfcLat, 99) < targetP99), met(pct(r.gbfcRaw.lat, 99) < targetP99))
	fmt.Fprintf(b, "| server CPU per 1,000 answers ≤ %s, decoding clients / bytes only | %s / %s | %s | %s / %s |\n", fmtDur(targetCPUPer1000),
		fmtDur(r.cpuPer1000()), fmtDur(r.gbfcRaw.cpuPer1000()),
		floor(func(f *floorResult) string {
			return fmtDur(f.decoded.cpuPer1000()) + " / " + fmtDur(f.raw.cpuPer1000())
		}),
		met(r.gbfcN > 0 && r.cpuPer1000() <= targetCPUPer1000), met(r.gbfcRaw.n > 0 && r.gbfcRaw.cpuPer1000() <= targetCPUPer1000))
	fmt.Fprintf(b, "| RSS after the serving tests, once quiet < %d MiB | %d MiB (%s) | – | %s |\n", targetRSSReleased>>20, mib(r.rssEnd),
		releasedWord(r.released), met(r.rssEnd < targetRSSReleased))
	fmt.Fprintf(b, "| first start → first answer < %s | %s | – | %s |\n", fmtDur(targetColdStart), fmtDur(startMed(r.first)),
		met(startMed(r.first) < targetColdStart))
	fmt.Fprintf(b, "| full ListBundles stream < %s, decoded / bytes only | %s / %s | %s | %s / %s |\n", fmtDur(targetListBundles),
		fmtDur(medianDur(r.listBundles)), fmtDur(medianDur(r.listBundlesRaw)),
		floor(func(f *floorResult) string {
			return fmtDur(medianDur(f.listBundles)) + " / " + fmtDur(medianDur(f.listBundlesRaw))
		}),
		met(medianDur(r.listBundles) < targetListBundles), met(medianDur(r.listBundlesRaw) < targetListBundles))
	if f != nil {
		fmt.Fprintf(b, "\nThe floor server holds the %d channel heads' answers catalogd sent (%d MB) and its ListBundles entries in plain byte slices and, per request, "+
			"only finds them: what grpc-go and the loopback take for these answers on this machine, with catalogd's transport settings. %d errors.\n",
			f.answers, f.bytes/1e6, f.headErrs+f.decoded.errs+f.raw.errs)
	}
}

func writeScaleTable(b *strings.Builder, rows []*result) {
	b.WriteString("### Synthetic catalogs (same proportions and manifest sizes as the real one), one start of each kind\n\n")
	b.WriteString("| measurement |")
	for _, r := range rows {
		fmt.Fprintf(b, " %d× |", r.scale)
	}
	first, last := rows[0], rows[len(rows)-1]
	growth := len(rows) > 1
	if growth {
		fmt.Fprintf(b, " %d× ÷ %d× |", last.scale, first.scale)
	}
	b.WriteString("\n|---|")
	for range rows {
		b.WriteString("---|")
	}
	if growth {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	row := func(name string, cell func(r *result) string, val func(r *result) float64) {
		fmt.Fprintf(b, "| %s |", name)
		for _, r := range rows {
			fmt.Fprintf(b, " %s |", cell(r))
		}
		if growth {
			if val != nil && val(first) > 0 {
				fmt.Fprintf(b, " %.1f× |", val(last)/val(first))
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	row("packages / channels / bundle entries", func(r *result) string {
		return fmt.Sprintf("%s / %s / %s", groupInt(r.packages), groupInt(r.channels), groupInt(r.bundlesAPI))
	}, func(r *result) float64 { return float64(r.bundlesAPI) })
	row("catalog on disk", func(r *result) string { return fmt.Sprintf("%d MB", r.size/1e6) }, func(r *result) float64 { return float64(r.size) })
	row("start → ListPackages, first start (files evicted)", func(r *result) string { return fmtDur(startMed(r.first)) },
		func(r *result) float64 { return float64(startMed(r.first)) })
	row("start → ListPackages, second start (page cache warm)", func(r *result) string { return fmtDur(startMed(r.second)) },
		func(r *result) float64 { return float64(startMed(r.second)) })
	row("CPU time until ready, second start", func(r *result) string { return fmtDur(r.cpuReadySecond) },
		func(r *result) float64 { return float64(r.cpuReadySecond) })
	row("RSS when ready / peak (second start)", func(r *result) string {
		return fmt.Sprintf("%d / %d MiB", mib(medianStart(r.second, func(x startResult) int64 { return x.rssReady })),
			mib(medianStart(r.second, func(x startResult) int64 { return x.hwmReady })))
	}, func(r *result) float64 {
		return float64(medianStart(r.second, func(x startResult) int64 { return x.hwmReady }))
	})
	row("peak RSS after serving tests", func(r *result) string { return fmt.Sprintf("%d MiB", mib(r.hwmEnd)) },
		func(r *result) float64 { return float64(r.hwmEnd) })
	row("RSS after serving tests, released", func(r *result) string { return fmt.Sprintf("%d MiB", mib(r.rssEnd)) },
		func(r *result) float64 { return float64(r.rssEnd) })
	row("full ListBundles stream", func(r *result) string { return fmtDur(medianDur(r.listBundles)) },
		func(r *result) float64 { return float64(medianDur(r.listBundles)) })
	row("GetBundle over channel heads p50 / p99", func(r *result) string {
		return fmtDur(pct(r.headLat, 50)) + " / " + fmtDur(pct(r.headLat, 99))
	}, func(r *result) float64 { return float64(pct(r.headLat, 50)) })
	row("GetBundleForChannel, 8 clients", func(r *result) string { return groupInt(int(r.rps()+0.5)) + " req/s" },
		func(r *result) float64 { return r.rps() })
	row("GetDefaultBundleThatProvides p50", func(r *result) string { return fmtDur(pct(r.defaultLat, 50)) },
		func(r *result) float64 { return float64(pct(r.defaultLat, 50)) })
	row("errors", func(r *result) string { return fmt.Sprint(r.headErrs + r.gbfcErrs + r.defaultErrs) }, nil)
}

// releasedWord says whether catalogd released memory before the RSS was
// read.
func releasedWord(released bool) string {
	if released {
		return "released"
	}
	return "not released within " + releaseWait.String()
}
