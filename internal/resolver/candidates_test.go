package resolver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecisionCandidates(t *testing.T) {
	// a 1.0.0 … 1.3.0 in stable, 1.4.0 only in beta.
	small := flat(pkgDoc("a", "stable"),
		bundleDoc("a", "1.0.0"), bundleDoc("a", "1.1.0"), bundleDoc("a", "1.2.0"), bundleDoc("a", "1.3.0"), bundleDoc("a", "1.4.0"),
		chDoc("a", "stable", ent("a", "1.0.0"), ent("a", "1.1.0", "replaces", "1.0.0"), ent("a", "1.2.0", "replaces", "1.1.0"), ent("a", "1.3.0", "replaces", "1.2.0")),
		chDoc("a", "beta", ent("a", "1.4.0")))
	var many []string
	for i := range 30 {
		many = append(many, fmt.Sprintf("1.%d.0", i))
	}
	for _, tc := range []struct {
		name    string
		docs    []string
		sub     Subscription
		want    []string // bundle reason, in order
		omitted int
	}{
		{
			name: "target first, then the candidates passed over, then those filtered up front",
			docs: small,
			sub:  with(sub("ns", "a", "a"), func(s *Subscription) { s.Range = "<1.3.0" }),
			want: []string{"a.v1.2.0 chosen", "a.v1.1.0 NotPreferred", "a.v1.0.0 NotPreferred", "a.v1.3.0 OutsideRange", "a.v1.4.0 NotInChannel"},
		},
		{
			name: "unsatisfiable: no target, every bundle with its reason",
			docs: small,
			sub:  with(sub("ns", "a", "a"), func(s *Subscription) { s.Range = ">=2.0.0" }),
			want: []string{"a.v1.3.0 OutsideRange", "a.v1.2.0 OutsideRange", "a.v1.1.0 OutsideRange", "a.v1.0.0 OutsideRange", "a.v1.4.0 NotInChannel"},
		},
		{
			name:    "bounded, with the number left out",
			docs:    simplePkg("a", "stable", many...),
			sub:     sub("ns", "a", "a"),
			want:    []string{"a.v1.29.0 chosen", "a.v1.28.0 NotPreferred"},
			omitted: 30 - MaxCandidateReasons,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Resolve(context.Background(), Request{Catalogs: []Snapshot{snapshot(t, "community", 0, tc.docs...)}, Subscriptions: []Subscription{tc.sub}})
			if err != nil {
				t.Fatal(err)
			}
			d := res.Decisions[0]
			var got []string
			for _, c := range d.Candidates {
				r := string(c.Reason)
				if c.Chosen {
					r = "chosen"
				}
				got = append(got, c.Bundle+" "+r)
				if c.Message == "" {
					t.Errorf("%s: no message", c.Bundle)
				}
			}
			if len(got) > MaxCandidateReasons {
				t.Errorf("%d candidates, more than %d", len(got), MaxCandidateReasons)
			}
			if tc.omitted > 0 {
				if len(got) != MaxCandidateReasons {
					t.Errorf("%d candidates, want %d", len(got), MaxCandidateReasons)
				}
				got = got[:len(tc.want)]
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("candidates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if d.CandidatesOmitted != tc.omitted {
				t.Errorf("%d omitted, want %d", d.CandidatesOmitted, tc.omitted)
			}
		})
	}
}

func TestTruncateMessage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{name: "short enough", in: "fits", limit: 4, want: "fits"},
		{name: "cut with an ellipsis", in: "abcdefgh", limit: 6, want: "abc…"},
		{name: "never inside a character", in: "ééééé", limit: 8, want: "éé…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := truncateMessage(tc.in, tc.limit)
			if got != tc.want || len(got) > tc.limit || !utf8.ValidString(got) {
				t.Errorf("truncateMessage(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
		})
	}
}
