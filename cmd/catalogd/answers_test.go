package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ferrydev/ferry/proto/api"
)

// TestAnswerStore: catalogd keeps the answers it sends in its answer file,
// or, when --answer-cache-dir cannot take the file, in memory within 32 MiB
// (or --answer-cache-bytes when given), and says so in its log; the answers
// are the same bytes either way.
func TestAnswerStore(t *testing.T) {
	bin := buildCatalogd(t)
	missing := filepath.Join(t.TempDir(), "absent")
	tests := []struct {
		name       string
		args       []string
		wantLog    bool
		wantBudget int64
	}{
		{name: "answer file", args: []string{"--answer-cache-dir", t.TempDir()}},
		{name: "no writable directory", args: []string{"--answer-cache-dir", missing}, wantLog: true, wantBudget: 32 << 20},
		{name: "no writable directory, budget given", args: []string{"--answer-cache-dir", missing, "--answer-cache-bytes", "1048576"}, wantLog: true, wantBudget: 1 << 20},
	}
	var first []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startCatalogd(t, bin, tt.args...)
			s.checkServed(t)
			client := api.NewRegistryClient(s.conn)
			var got []byte
			for range 2 { // built, then read back from where it is kept
				b, err := client.GetBundleForChannel(context.Background(), &api.GetBundleInChannelRequest{PkgName: "lighthouse-operator", ChannelName: "stable"})
				if err != nil {
					t.Fatal(err)
				}
				opts := proto.MarshalOptions{Deterministic: true}
				if got, err = opts.Marshal(b); err != nil {
					t.Fatal(err)
				}
			}
			if first == nil {
				first = got
			} else if !bytes.Equal(got, first) {
				t.Errorf("the answer differs from the one kept in the answer file")
			}
			if n := s.metric(t, "ferry_catalogd_answer_cache_answers"); n < 1 {
				t.Errorf("%v answers kept, want at least 1", n)
			}
			logged := strings.Contains(s.log.String(), "keeping answers in memory instead of in a file")
			if logged != tt.wantLog {
				t.Errorf("fallback logged: %v, want %v\n%s", logged, tt.wantLog, s.log.String())
			}
			if tt.wantLog && !strings.Contains(s.log.String(), `"bytes":`+strconv.FormatInt(tt.wantBudget, 10)) {
				t.Errorf("log does not name the in-memory budget %v:\n%s", tt.wantBudget, s.log.String())
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("%s was created", missing)
	}
}
