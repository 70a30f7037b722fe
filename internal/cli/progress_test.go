package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a buffer the spinner's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgress(t *testing.T) {
	cases := []struct {
		name string
		tty  bool
		ok   bool
		want string
	}{
		{name: "plain lines, done", want: "Waiting for the upgrade ...\n  state Upgrading\n  state Installed\nthe upgrade: done\n", ok: true},
		{name: "plain lines, failed", want: "Waiting for the upgrade ...\n  state Upgrading\n  state Installed\nthe upgrade: failed\n"},
		{name: "spinner, done", tty: true, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf lockedBuffer
			p := startProgress(&buf, "the upgrade", tc.tty)
			p.set("state Upgrading")
			p.set("state Upgrading") // unchanged: not repeated
			p.set("state Installed")
			p.finish(tc.ok)
			p.stop() // a second stop does nothing
			got := buf.String()
			if !tc.tty {
				if got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
				return
			}
			for _, want := range []string{"\r\033[K" + spinnerFrames[0] + " the upgrade: state Upgrading", "the upgrade: state Installed", "\r\033[Kthe upgrade: done\n"} {
				if !strings.Contains(got, want) {
					t.Errorf("spinner output %q does not hold %q", got, want)
				}
			}
			if !strings.HasSuffix(got, "the upgrade: done\n") {
				t.Errorf("spinner output %q does not end with the outcome", got)
			}
		})
	}
}
