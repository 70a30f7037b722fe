package resolver

import (
	"context"
	"strings"
	"testing"
)

// TestApprovedVersionAndDowngrade: the approved version of a Manual
// subscription and downgrades are decided here, not by the controller.
func TestApprovedVersionAndDowngrade(t *testing.T) {
	// 1.0.0 ← 1.1.0 ← 1.2.0 in stable; 1.3.0 only in fast.
	cat := func(tb testing.TB) []Snapshot {
		return community(
			pkgDoc("p", "stable"),
			bundleDoc("p", "1.0.0"), bundleDoc("p", "1.1.0"), bundleDoc("p", "1.2.0"), bundleDoc("p", "1.3.0"),
			chDoc("p", "stable", ent("p", "1.0.0"), ent("p", "1.1.0", "replaces", "1.0.0"), ent("p", "1.2.0", "replaces", "1.1.0", "skips", "1.0.0")),
			chDoc("p", "fast", ent("p", "1.3.0")),
		)(tb)
	}
	manual := func(approved string) Subscription {
		return with(sub("ns", "s", "p"), func(s *Subscription) { s.Approval, s.ApprovedVersion = ApprovalManual, approved })
	}
	tests := []struct {
		name      string
		installed string
		sub       Subscription
		// want: status, target version, needs approval, approved note (a part).
		status        Status
		version       string
		needsApproval bool
		note          string
		latest        string
	}{
		{name: "manual without approval waits for the newest", installed: "1.0.0", sub: manual(""),
			status: StatusUpgrade, version: "1.2.0", needsApproval: true, latest: "1.2.0"},
		{name: "an approved reachable version is the target though a newer exists", installed: "1.0.0", sub: manual("1.1.0"),
			status: StatusUpgrade, version: "1.1.0", latest: "1.2.0"},
		{name: "the approved newest version", installed: "1.0.0", sub: manual("v1.2.0"),
			status: StatusUpgrade, version: "1.2.0"},
		{name: "an approved version in another channel is not reachable", installed: "1.0.0", sub: manual("1.3.0"),
			status: StatusUpgrade, version: "1.2.0", needsApproval: true, note: `approvedVersion 1.3.0 is not reachable: not in channel "stable"`},
		{name: "an approved version that does not exist", installed: "1.0.0", sub: manual("9.9.9"),
			status: StatusUpgrade, version: "1.2.0", needsApproval: true, note: `package p has no such version`},
		{name: "an approved lower version is not reachable", installed: "1.1.0", sub: manual("1.0.0"),
			status: StatusUpgrade, version: "1.2.0", needsApproval: true, note: "approvedVersion 1.0.0 is not reachable: lower than the installed version 1.1.0"},
		{name: "an approved version that is not semver", installed: "1.0.0", sub: manual("latest"),
			status: StatusUpgrade, version: "1.2.0", needsApproval: true, note: `approvedVersion "latest" is not a semantic version`},
		{name: "a first install needs no approval", sub: manual(""),
			status: StatusInstall, version: "1.2.0"},
		{name: "outside the range without allowDowngrade stays", installed: "1.2.0",
			sub:    with(sub("ns", "s", "p"), func(s *Subscription) { s.Range = "<1.2.0" }),
			status: StatusUpToDate, version: "1.2.0", latest: "1.1.0"},
		{name: "outside the range with allowDowngrade goes to the highest version within it", installed: "1.2.0",
			sub:    with(sub("ns", "s", "p"), func(s *Subscription) { s.Range, s.AllowDowngrade = "<1.2.0", true }),
			status: StatusDowngrade, version: "1.1.0", latest: "1.1.0"},
		{name: "a downgrade of a Manual subscription needs no approval", installed: "1.2.0",
			sub:    with(manual(""), func(s *Subscription) { s.Range, s.AllowDowngrade = "<1.1.0", true }),
			status: StatusDowngrade, version: "1.0.0"},
		{name: "allowDowngrade within the range changes nothing", installed: "1.2.0",
			sub:    with(sub("ns", "s", "p"), func(s *Subscription) { s.Range, s.AllowDowngrade = ">=1.0.0", true }),
			status: StatusUpToDate, version: "1.2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Catalogs: cat(t), Subscriptions: []Subscription{tt.sub}}
			if tt.installed != "" {
				req.Installed = []Installed{installed("ns", "p", tt.installed, "community")}
			}
			res, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			d := res.Decision("ns/s")
			if d.Status != tt.status || d.Target == nil || d.Target.Version.String() != tt.version || d.NeedsApproval != tt.needsApproval {
				t.Fatalf("got:\n%s", describe(*d))
			}
			if tt.note == "" && d.ApprovedUnreachable != "" || !strings.Contains(d.ApprovedUnreachable, tt.note) {
				t.Errorf("ApprovedUnreachable = %q, want it to contain %q", d.ApprovedUnreachable, tt.note)
			}
			if tt.latest != "" && (d.Latest == nil || d.Latest.String() != tt.latest) {
				t.Errorf("Latest = %v, want %s", d.Latest, tt.latest)
			}
			if tt.status == StatusDowngrade && (d.Edge.Kind != EdgeDowngrade || !d.OutsideRange) {
				t.Errorf("edge %s, outside range %v", d.Edge.Kind, d.OutsideRange)
			}
		})
	}
}
