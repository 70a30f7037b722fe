// Command testtime reads the output of `go test -json` and prints, as
// markdown tables, the slowest packages and the slowest tests by their
// elapsed time, to see where a test run spends its time:
//
//	go test -count=1 -json ./... >unit.json
//	go run ./hack/testtime -n 15 unit.json        # top 15 packages and tests
//	go run ./hack/testtime -subtests e2e.json     # subtests listed too
//	make test-e2e GOTESTFLAGS=-json | go run ./hack/testtime
//
// Lines that are not JSON (make's echo, a build failure's "# pkg" header)
// are skipped and counted; a line that is JSON but no test event, or longer
// than maxLine, is an error naming the file and line. A test that never
// ended (the run was killed) is reported with the time of the last event
// seen for it and the result "unfinished".
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// maxLine bounds one line of input: go test -json writes each output line
// of a test as one event, so only a test printing megabytes without a
// newline comes near it.
const maxLine = 4 << 20

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
}

// Result is the elapsed time and outcome of a package or a test.
type Result struct {
	// Package is the import path.
	Package string
	// Test is the test's name (subtests with slashes); empty for a package.
	Test string
	// Elapsed is the time go test reported, or, for an unfinished test,
	// the time from its start to its last event.
	Elapsed time.Duration
	// Outcome is pass, fail, skip or unfinished.
	Outcome string
}

type key struct{ pkg, test string }

// Collector gathers results from any number of go test -json streams.
type Collector struct {
	results map[key]*Result
	started map[key]time.Time
	last    map[key]time.Time
	// Skipped counts the lines that were not JSON.
	Skipped int
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{results: map[key]*Result{}, started: map[key]time.Time{}, last: map[key]time.Time{}}
}

// Read adds the events of one stream; name is used in errors.
func (c *Collector) Read(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] != '{' {
			c.Skipped++
			continue
		}
		var ev event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("%s:%d: not a go test -json event: %w", name, line, err)
		}
		if ev.Action == "" || ev.Package == "" {
			return fmt.Errorf("%s:%d: not a go test -json event: no Action or Package", name, line)
		}
		c.add(ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: a line longer than %d bytes", name, line+1, maxLine)
		}
		return fmt.Errorf("%s:%d: %w", name, line, err)
	}
	return nil
}

func (c *Collector) add(ev event) {
	k := key{ev.Package, ev.Test}
	if !ev.Time.IsZero() {
		// Every event of a package is one of the package's too.
		c.last[k] = ev.Time
		c.last[key{pkg: ev.Package}] = ev.Time
	}
	switch ev.Action {
	case "start", "run":
		if !ev.Time.IsZero() {
			c.started[k] = ev.Time
		}
	case "pass", "fail", "skip":
		// A package run twice (e.g. two files of the same tier) keeps its
		// slowest run.
		d := time.Duration(ev.Elapsed * float64(time.Second))
		if r, ok := c.results[k]; ok && r.Outcome != "unfinished" && r.Elapsed >= d {
			return
		}
		c.results[k] = &Result{Package: ev.Package, Test: ev.Test, Elapsed: d, Outcome: ev.Action}
	}
}

// Results returns every package and test seen, slowest first (ties by
// package and name); tests that started but never ended are included as
// unfinished.
func (c *Collector) Results() []Result {
	out := make([]Result, 0, len(c.results))
	for _, r := range c.results {
		out = append(out, *r)
	}
	for k, start := range c.started {
		if _, done := c.results[k]; done {
			continue
		}
		out = append(out, Result{Package: k.pkg, Test: k.test, Elapsed: c.last[k].Sub(start), Outcome: "unfinished"})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Elapsed != b.Elapsed {
			return a.Elapsed > b.Elapsed
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.Test < b.Test
	})
	return out
}

// Top returns the n slowest packages and the n slowest tests of results
// (sorted as Results sorts them); subtests only when subtests is set.
func Top(results []Result, n int, subtests bool) (pkgs, tests []Result) {
	for _, r := range results {
		switch {
		case r.Test == "":
			if len(pkgs) < n {
				pkgs = append(pkgs, r)
			}
		case !subtests && strings.Contains(r.Test, "/"):
		default:
			if len(tests) < n {
				tests = append(tests, r)
			}
		}
	}
	return pkgs, tests
}

// Write prints the two tables.
func Write(w io.Writer, pkgs, tests []Result) error {
	var b strings.Builder
	b.WriteString("| package | seconds | result |\n|---|---:|---|\n")
	for _, r := range pkgs {
		fmt.Fprintf(&b, "| %s | %.1f | %s |\n", r.Package, r.Elapsed.Seconds(), r.Outcome)
	}
	b.WriteString("\n| test | package | seconds | result |\n|---|---|---:|---|\n")
	for _, r := range tests {
		fmt.Fprintf(&b, "| %s | %s | %.1f | %s |\n", r.Test, r.Package, r.Elapsed.Seconds(), r.Outcome)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "testtime:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("testtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 15, "how many packages and tests to list")
	subtests := fs.Bool("subtests", false, "list subtests too, not only top-level tests")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: testtime [-n N] [-subtests] [FILE.json ...]  (no FILE: standard input)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("-n must be at least 1, got %d", *n)
	}
	c := NewCollector()
	if fs.NArg() == 0 {
		if err := c.Read("standard input", stdin); err != nil {
			return err
		}
	}
	for _, name := range fs.Args() {
		if err := readFile(c, name); err != nil {
			return err
		}
	}
	results := c.Results()
	if len(results) == 0 {
		return fmt.Errorf("no test events in the input (%d lines that are not JSON): was it written by go test -json?", c.Skipped)
	}
	pkgs, tests := Top(results, *n, *subtests)
	return Write(stdout, pkgs, tests)
}

func readFile(c *Collector, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.Read(name, f)
}
