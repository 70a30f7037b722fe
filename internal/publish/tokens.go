package publish

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
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

// MaxTokenFileBytes is the largest tokens file read.
const MaxTokenFileBytes = 1 << 20

// Reasons a tokens file read fails; each revokes every token.
const (
	TokenFileMissing    = "missing"
	TokenFileUnreadable = "unreadable"
	TokenFileInvalid    = "invalid"
)

// TokenFileErrorReasons lists every reason a read of the tokens file fails.
var TokenFileErrorReasons = []string{TokenFileMissing, TokenFileUnreadable, TokenFileInvalid}

// TokenFileEvent describes a read of the tokens file whose outcome differs
// from the previous one.
type TokenFileEvent struct {
	// Path is the tokens file.
	Path string
	// Tokens is how many tokens are in force after the read: 0 when it failed.
	Tokens int
	// Reason is empty when the read succeeded, else one of
	// TokenFileErrorReasons; Err says what went wrong.
	Reason string
	Err    error
	// Insecure is set when group or others may read or write the file.
	Insecure bool
	// Mode is the file's permission bits (0 when it could not be read).
	Mode fs.FileMode
}

// TokenFile is a tokens file that is read again on every lookup, so tokens
// can be added and revoked without a restart. It fails closed: while the file
// is missing, unreadable or invalid, no token is valid.
type TokenFile struct {
	path    string
	observe func(TokenFileEvent)

	mu      sync.Mutex
	sum     [sha256.Size]byte
	tokens  *Tokens
	lastErr string
	mode    fs.FileMode
	// reported is the content last reported to the observer.
	reported *Tokens
}

// TokenFileOption configures LoadTokenFile.
type TokenFileOption func(*TokenFile)

// WithTokenObserver calls fn with the first read and every read whose outcome
// (tokens, error or permissions) differs from the previous one: for logs and
// metrics.
func WithTokenObserver(fn func(TokenFileEvent)) TokenFileOption {
	return func(f *TokenFile) { f.observe = fn }
}

// LoadTokenFile reads a tokens file (see ParseTokens). A file that cannot be
// read or parsed at start is an error.
func LoadTokenFile(path string, opts ...TokenFileOption) (*TokenFile, error) {
	f := &TokenFile{path: path}
	for _, o := range opts {
		o(f)
	}
	if _, err := f.current(); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return f, nil
}

// Lookup finds the grant of a token in the file's current content. While the
// file is missing, unreadable or invalid, no token is found.
func (f *TokenFile) Lookup(token string) (*Grant, bool) {
	t, err := f.current()
	if err != nil {
		return nil, false
	}
	return t.Lookup(token)
}

// Len is the number of tokens in force: 0 while the file is missing,
// unreadable or invalid.
func (f *TokenFile) Len() int {
	t, err := f.current()
	if err != nil {
		return 0
	}
	return t.Len()
}

// current reads and, when its content changed, parses the file. The file is
// small and lookups are rare (Publish and Deprecate), so it is read every
// time: a change is seen at the next lookup, whatever the file system's
// time stamps do.
func (f *TokenFile) current() (*Tokens, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, mode, reason, err := readTokenFile(f.path)
	var t *Tokens
	if err == nil {
		sum := sha256.Sum256(data)
		if f.tokens != nil && sum == f.sum {
			t = f.tokens
		} else if t, err = ParseTokens(f.path, data); err != nil {
			reason = TokenFileInvalid
		} else {
			f.sum = sum
		}
	}
	if err != nil {
		f.tokens = nil
		f.sum = [sha256.Size]byte{}
	} else {
		f.tokens = t
	}
	f.report(t, mode, reason, err)
	return t, err
}

// report tells the observer about an outcome that differs from the last.
func (f *TokenFile) report(t *Tokens, mode fs.FileMode, reason string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	changed := f.observe != nil && (msg != f.lastErr || mode != f.mode || (err == nil && t != f.reported))
	f.lastErr, f.mode = msg, mode
	if err == nil {
		f.reported = t
	} else {
		f.reported = nil
	}
	if !changed {
		return
	}
	ev := TokenFileEvent{Path: f.path, Reason: reason, Err: err, Mode: mode, Insecure: mode&0o077 != 0}
	if t != nil {
		ev.Tokens = t.Len()
	}
	f.observe(ev)
}

// readTokenFile reads at most MaxTokenFileBytes of a tokens file.
func readTokenFile(path string) (data []byte, mode fs.FileMode, reason string, err error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, TokenFileMissing, err
	}
	if err != nil {
		return nil, 0, TokenFileUnreadable, err
	}
	defer func() { _ = file.Close() }()
	st, err := file.Stat()
	if err != nil {
		return nil, 0, TokenFileUnreadable, err
	}
	if !st.Mode().IsRegular() {
		return nil, st.Mode().Perm(), TokenFileUnreadable, fmt.Errorf("%s: not a regular file", path)
	}
	data, err = io.ReadAll(io.LimitReader(file, MaxTokenFileBytes+1))
	if err != nil {
		return nil, st.Mode().Perm(), TokenFileUnreadable, err
	}
	if len(data) > MaxTokenFileBytes {
		return nil, st.Mode().Perm(), TokenFileInvalid, fmt.Errorf("%s: larger than %d bytes", path, MaxTokenFileBytes)
	}
	return data, st.Mode().Perm(), "", nil
}
