package publish

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// MinTokenLength is the shortest token a tokens file may hold.
const MinTokenLength = 16

// Grant is what one token may do.
type Grant struct {
	// ID names the token in logs without revealing it: "tokens.txt:3".
	ID string
	// Packages the token may publish and deprecate; empty means all.
	Packages []string
}

// Allows reports whether the grant covers a package.
func (g *Grant) Allows(pkg string) bool {
	if len(g.Packages) == 0 {
		return true
	}
	for _, p := range g.Packages {
		if p == pkg {
			return true
		}
	}
	return false
}

type tokenEntry struct {
	sum   [sha256.Size]byte
	grant Grant
}

// Tokens is a parsed tokens file.
type Tokens struct {
	entries []tokenEntry
}

// ParseTokens reads a tokens file: one token per line, optionally followed
// by a comma-separated list of the packages it is limited to ("*" or
// nothing means every package). Blank lines and lines starting with # are
// ignored.
//
//	# CI of the lighthouse operator
//	4c1f0e6d9b2a7f3e5d8c1b0a lighthouse-operator
//	9e8d7c6b5a4f3e2d1c0b9a8f lighthouse-operator,harbor-operator
//	0a1b2c3d4e5f6a7b8c9d0e1f *
func ParseTokens(name string, data []byte) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		tok := fields[0]
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("%s:%d: token is shorter than %d characters", name, line, MinTokenLength)
		}
		pkgs := ParsePackages(strings.Join(fields[1:], ","))
		sum := sha256.Sum256([]byte(tok))
		if prev, dup := seen[sum]; dup {
			return nil, fmt.Errorf("%s:%d: the same token as on line %d", name, line, prev)
		}
		seen[sum] = line
		t.entries = append(t.entries, tokenEntry{sum: sum, grant: Grant{ID: fmt.Sprintf("%s:%d", name, line), Packages: pkgs}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Lookup finds the grant of a token. It compares SHA-256 sums of the tokens
// in constant time and always looks at every entry, so the time taken says
// nothing about how close a guess was or which entry matched.
func (t *Tokens) Lookup(token string) (*Grant, bool) {
	sum := sha256.Sum256([]byte(token))
	var found *Grant
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) == 1 {
			found = &t.entries[i].grant
		}
	}
	return found, found != nil
}

// TokenFile is a tokens file that is read again when it changes, so tokens
// can be added and revoked without a restart.
type TokenFile struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	tokens  *Tokens
}

// LoadTokenFile reads a tokens file (see ParseTokens).
func LoadTokenFile(path string) (*TokenFile, error) {
	f := &TokenFile{path: path}
	if _, err := f.current(); err != nil {
		return nil, err
	}
	return f, nil
}

// Lookup finds the grant of a token in the file's current content. When the
// file became unreadable or invalid, the last good content is used.
func (f *TokenFile) Lookup(token string) (*Grant, bool) {
	t, _ := f.current()
	return t.Lookup(token)
}

// Len is the number of tokens in the current content.
func (f *TokenFile) Len() int {
	t, _ := f.current()
	return t.Len()
}

func (f *TokenFile) current() (*Tokens, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err == nil && f.tokens != nil && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return f.tokens, nil
	}
	var t *Tokens
	if err == nil {
		var data []byte
		data, err = os.ReadFile(f.path)
		if err == nil {
			t, err = ParseTokens(f.path, data)
		}
	}
	if err != nil {
		if f.tokens == nil {
			return nil, fmt.Errorf("tokens file: %w", err)
		}
		return f.tokens, err
	}
	f.tokens, f.modTime, f.size = t, st.ModTime(), st.Size()
	return t, nil
}
