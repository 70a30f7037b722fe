package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/blang/semver/v4"
)

// ParseVersion parses a strict semantic version, as bundles must carry.
func ParseVersion(s string) (semver.Version, error) {
	if s == "" {
		return semver.Version{}, errors.New("empty version")
	}
	v, err := semver.Parse(s)
	if err != nil {
		return semver.Version{}, fmt.Errorf("%q is not a semantic version: %w", s, err)
	}
	return v, nil
}

// ParseRange parses a version range as the bundle ecosystem writes them
// (">=1.2.0 <2.0.0", "<1.4.0 || >=2.0.0").
func ParseRange(s string) (semver.Range, error) { return parseRange(s) }

func parseRange(s string) (semver.Range, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty range")
	}
	r, err := semver.ParseRange(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a version range: %w", s, err)
	}
	return r, nil
}

var vPrefix = regexp.MustCompile(`(^|[\s<>=!~^|])v(\d)`)

// parseRangeLenient accepts a "v" before versions ("<v2.3.1"), which real
// bundles carry although the range syntax has none; fixed says whether the
// text had to be changed.
func parseRangeLenient(s string) (r semver.Range, normalized string, fixed bool, err error) {
	r, err = parseRange(s)
	if err == nil {
		return r, s, false, nil
	}
	n := vPrefix.ReplaceAllString(s, "$1$2")
	if n == s {
		return nil, s, false, err
	}
	r2, err2 := parseRange(n)
	if err2 != nil {
		return nil, s, false, err
	}
	return r2, n, true, nil
}
