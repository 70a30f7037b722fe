package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxMetricsBytes bounds one scrape of the installer's metrics endpoint.
const maxMetricsBytes = 16 << 20

// The installer's metrics the bench reads.
const (
	// restRequests is client-go's count of every request to the API
	// server, the installer's own identity and the ServiceAccounts it
	// writes as alike (controller-runtime registers it).
	restRequests = "rest_client_requests_total"
	// reconciles is controller-runtime's count of reconciles by controller.
	reconciles = "controller_runtime_reconcile_total"
	// reconcileTime is controller-runtime's histogram of reconcile durations.
	reconcileTime       = "controller_runtime_reconcile_time_seconds"
	snapshotFetches     = "ferry_installer_catalog_snapshot_fetches_total"
	bundleFetchesMetric = "ferry_installer_catalog_bundle_fetches_total"
)

// requestMethods are the HTTP methods the table breaks the installer's
// requests down by.
var requestMethods = []string{"GET", "POST", "PATCH", "PUT", "DELETE"}

// sample is one line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// samples is one scrape.
type samples []sample

// sum adds the samples of name whose labels include every pair of match.
func (s samples) sum(name string, match map[string]string) float64 {
	var total float64
	for _, x := range s {
		if x.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if x.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += x.value
		}
	}
	return total
}

// scrape reads url's Prometheus text exposition.
func scrape(ctx context.Context, url string) (samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	out, err := parseText(io.LimitReader(resp.Body, maxMetricsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return out, nil
}

// parseText parses the lines of the text exposition format the bench needs:
// name{label="value",...} value [timestamp]. Comments are skipped.
func parseText(r io.Reader) (samples, error) {
	var out samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	read := 0
	for line := 1; sc.Scan(); line++ {
		read += len(sc.Bytes()) + 1
		if read > maxMetricsBytes {
			return nil, fmt.Errorf("more than %d bytes of metrics", maxMetricsBytes)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		s, err := parseSample(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(text string) (sample, error) {
	s := sample{labels: map[string]string{}}
	rest := text
	i := strings.IndexAny(rest, "{ ")
	if i < 0 {
		return s, fmt.Errorf("%q: no value", text)
	}
	s.name, rest = rest[:i], rest[i:]
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, "=\"")
			if eq <= 0 {
				return s, fmt.Errorf("%q: malformed labels", text)
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for i := 0; i < len(rest); i++ {
				switch c := rest[i]; {
				case c == '\\' && i+1 < len(rest):
					i++
					switch rest[i] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[i])
					}
				case c == '"':
					rest, closed = rest[i+1:], true
				default:
					val.WriteByte(c)
				}
				if closed {
					break
				}
			}
			if !closed {
				return s, fmt.Errorf("%q: unterminated label value", text)
			}
			s.labels[key] = val.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, fmt.Errorf("%q: no value", text)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("%q: value: %w", text, err)
	}
	s.value = v
	return s, nil
}
