package publish

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	tokenA = "aaaaaaaaaaaaaaaa-token"
	tokenB = "bbbbbbbbbbbbbbbb-token"
)

// TestTokenFileFailsClosed: every change of the file is seen at the next
// lookup; a missing, unreadable or invalid file revokes every token.
func TestTokenFileFailsClosed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	write := func(content string, mode os.FileMode) {
		t.Helper()
		tmp := filepath.Join(dir, "tokens.tmp")
		if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(tokenA+" lighthouse-operator\n"+tokenB+"\n", 0o600)
	var events []TokenFileEvent
	f, err := LoadTokenFile(path, WithTokenObserver(func(ev TokenFileEvent) { events = append(events, ev) }))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Tokens != 2 || events[0].Err != nil || events[0].Insecure {
		t.Fatalf("load: events %+v", events)
	}
	steps := []struct {
		name       string
		change     func()
		valid      []string
		wantEvent  bool
		wantReason string
		wantErr    string
		insecure   bool
	}{
		{"unchanged", func() {}, []string{tokenA, tokenB}, false, "", "", false},
		{"token removed", func() { write(tokenA+" lighthouse-operator\n", 0o600) }, []string{tokenA}, true, "", "", false},
		{"invalid", func() { write(tokenA+"\nshort\n", 0o600) }, nil, true, TokenFileInvalid, path + ":2: token is shorter than 16 characters", false},
		{"fixed", func() { write(tokenA+"\n", 0o600) }, []string{tokenA}, true, "", "", false},
		{"deleted", func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, nil, true, TokenFileMissing, "no such file or directory", false},
		{"still deleted", func() {}, nil, false, "", "", false},
		{"a directory", func() {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, nil, true, TokenFileUnreadable, "not a regular file", false},
		{"too large", func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			write(tokenB+"\n#"+strings.Repeat("x", MaxTokenFileBytes)+"\n", 0o600)
		}, nil, true, TokenFileInvalid, "larger than", false},
		{"open to others", func() { write(tokenB+"\n", 0o644) }, []string{tokenB}, true, "", "", true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			events = nil
			st.change()
			for _, tok := range []string{tokenA, tokenB} {
				want := false
				for _, v := range st.valid {
					want = want || v == tok
				}
				if _, ok := f.Lookup(tok); ok != want {
					t.Errorf("token %s valid: %v, want %v", tok[:4], ok, want)
				}
			}
			if f.Len() != len(st.valid) {
				t.Errorf("Len %d, want %d", f.Len(), len(st.valid))
			}
			if !st.wantEvent {
				if len(events) != 0 {
					t.Errorf("events %+v, want none", events)
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("events %+v, want one", events)
			}
			ev := events[0]
			if ev.Reason != st.wantReason || ev.Tokens != len(st.valid) || ev.Insecure != st.insecure || ev.Path != path {
				t.Errorf("event %+v", ev)
			}
			if (ev.Err == nil) != (st.wantErr == "") || (ev.Err != nil && !strings.Contains(ev.Err.Error(), st.wantErr)) {
				t.Errorf("event error %v, want %q", ev.Err, st.wantErr)
			}
		})
	}
	if _, err := LoadTokenFile(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "tokens file") {
		t.Errorf("missing at start: %v", err)
	}
}
