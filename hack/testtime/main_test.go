package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stream is go test -json output of two packages, with make's echo and a
// test that never ended mixed in.
const stream = `hack/test-e2e.sh -json
{"Time":"2026-11-26T10:00:00Z","Action":"start","Package":"example.com/a"}
{"Time":"2026-11-26T10:00:00Z","Action":"run","Package":"example.com/a","Test":"TestSlow"}
{"Time":"2026-11-26T10:00:00Z","Action":"run","Package":"example.com/a","Test":"TestSlow/case_one"}
{"Time":"2026-11-26T10:00:30Z","Action":"pass","Package":"example.com/a","Test":"TestSlow/case_one","Elapsed":30}
{"Time":"2026-11-26T10:00:40Z","Action":"pass","Package":"example.com/a","Test":"TestSlow","Elapsed":40}
{"Time":"2026-11-26T10:00:40Z","Action":"run","Package":"example.com/a","Test":"TestFast"}
{"Time":"2026-11-26T10:00:40Z","Action":"output","Package":"example.com/a","Test":"TestFast","Output":"--- FAIL: TestFast\n"}
{"Time":"2026-11-26T10:00:41Z","Action":"fail","Package":"example.com/a","Test":"TestFast","Elapsed":0.5}
{"Time":"2026-11-26T10:00:41Z","Action":"fail","Package":"example.com/a","Elapsed":41.2}
{"Time":"2026-11-26T10:00:00Z","Action":"start","Package":"example.com/b"}
{"Time":"2026-11-26T10:00:00Z","Action":"run","Package":"example.com/b","Test":"TestSkipped"}
{"Time":"2026-11-26T10:00:00Z","Action":"skip","Package":"example.com/b","Test":"TestSkipped","Elapsed":0}
{"Time":"2026-11-26T10:00:01Z","Action":"run","Package":"example.com/b","Test":"TestHangs"}
{"Time":"2026-11-26T10:00:21Z","Action":"output","Package":"example.com/b","Test":"TestHangs","Output":"still waiting\n"}
`

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runLog := write("run.json", stream)
	// The same package again, faster: the slower run is kept.
	rerun := write("rerun.json", `{"Time":"2026-11-26T11:00:00Z","Action":"run","Package":"example.com/a","Test":"TestSlow"}
{"Time":"2026-11-26T11:00:05Z","Action":"pass","Package":"example.com/a","Test":"TestSlow","Elapsed":5}
`)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    string // the whole output
		wantErr string
	}{
		{
			name: "top-level tests, unfinished ones included",
			args: []string{runLog},
			want: `| package | seconds | result |
|---|---:|---|
| example.com/a | 41.2 | fail |
| example.com/b | 21.0 | unfinished |

| test | package | seconds | result |
|---|---|---:|---|
| TestSlow | example.com/a | 40.0 | pass |
| TestHangs | example.com/b | 20.0 | unfinished |
| TestFast | example.com/a | 0.5 | fail |
| TestSkipped | example.com/b | 0.0 | skip |
`,
		},
		{
			name:  "subtests and a limit, from standard input",
			args:  []string{"-n", "2", "-subtests"},
			stdin: stream,
			want: `| package | seconds | result |
|---|---:|---|
| example.com/a | 41.2 | fail |
| example.com/b | 21.0 | unfinished |

| test | package | seconds | result |
|---|---|---:|---|
| TestSlow | example.com/a | 40.0 | pass |
| TestSlow/case_one | example.com/a | 30.0 | pass |
`,
		},
		{
			name: "several files: the slowest run of a test counts",
			args: []string{"-n", "1", rerun, runLog},
			want: `| package | seconds | result |
|---|---:|---|
| example.com/a | 41.2 | fail |

| test | package | seconds | result |
|---|---|---:|---|
| TestSlow | example.com/a | 40.0 | pass |
`,
		},
		{
			name:    "JSON that is no test event",
			args:    []string{write("other.json", "ok\n{\"name\":\"x\"}\n")},
			wantErr: "other.json:2: not a go test -json event: no Action or Package",
		},
		{
			name:    "broken JSON",
			args:    []string{write("broken.json", "{\"Action\":\n")},
			wantErr: "broken.json:1: not a go test -json event: unexpected end of JSON input",
		},
		{
			name:    "a line beyond the bound",
			args:    []string{write("long.json", "{\"Action\":\"output\",\"Output\":\""+strings.Repeat("x", maxLine)+"\"}\n")},
			wantErr: "long.json:1: a line longer than 4194304 bytes",
		},
		{
			name:    "no events at all",
			stdin:   "make: Nothing to be done\n",
			wantErr: "no test events in the input (1 lines that are not JSON)",
		},
		{
			name:    "a bad limit",
			args:    []string{"-n", "0"},
			wantErr: "-n must be at least 1, got 0",
		},
		{
			name:    "a missing file",
			args:    []string{filepath.Join(dir, "missing.json")},
			wantErr: "missing.json: no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
