package resolver

// wantDecisions holds, per scenario and subscription, the exact rendering of
// the Decision (see describe).
var wantDecisions = map[string]map[string]string{
	"fresh install takes the head of the default channel": {
		"ns/etcd": "Install etcd.v0.9.4 0.9.4 from community/alpha by install\nrejected etcd.v0.9.2: NotPreferred: etcd 0.9.4 was chosen over it\nrejected etcd.v0.9.0: NotPreferred: etcd 0.9.4 was chosen over it\n",
	},
	"range limits a fresh install": {
		"ns/etcd":  "Install etcd.v0.9.2 0.9.2 from community/alpha by install\nrejected etcd.v1.0.0: OutsideRange: outside the range <1.0.0\nrejected etcd.v0.9.0: NotPreferred: etcd 0.9.2 was chosen over it\n",
		"ns2/etcd": "Unsatisfiable\nrejected etcd.v1.0.0: OutsideRange: outside the range >=2.0.0\nrejected etcd.v0.9.2: OutsideRange: outside the range >=2.0.0\nrejected etcd.v0.9.0: OutsideRange: outside the range >=2.0.0\nNoCandidate: channel \"alpha\" of package etcd in catalog \"community\" has no version within the range >=2.0.0 (it has 0.9.0, 0.9.2 and 1.0.0)\n",
	},
	"pinned starting version": {
		"ns/etcd":  "Install etcd.v0.9.2 0.9.2 from community/alpha by install\nrejected etcd.v0.9.4: NotStartingVersion: not the starting version 0.9.2\nrejected etcd.v0.9.0: NotStartingVersion: not the starting version 0.9.2\n",
		"ns2/etcd": "Unsatisfiable\nrejected etcd.v0.9.4: NotStartingVersion: not the starting version 0.9.3\nrejected etcd.v0.9.2: NotStartingVersion: not the starting version 0.9.3\nrejected etcd.v0.9.0: NotStartingVersion: not the starting version 0.9.3\nNoCandidate: channel \"alpha\" of package etcd in catalog \"community\" has no version 0.9.3 (it has 0.9.0, 0.9.2 and 0.9.4)\n",
	},
	"upgrade follows replaces one hop and never downgrades": {
		"ns/etcd": "Upgrade etcd.v0.9.4 0.9.4 from community/alpha by replaces from etcd.v0.9.2\nrejected etcd.v0.9.0: Downgrade: lower than the installed version 0.9.2\nrejected etcd.v0.9.2: Installed: the installed version; 0.9.4 is the upgrade\n",
	},
	"skipRange jumps to the head": {
		"ns/etcd": "Upgrade etcd.v1.3.0 1.3.0 from community/stable by skipRange from etcd.v1.0.0\nrejected etcd.v1.1.0: NotPreferred: etcd 1.3.0 was chosen over it\nrejected etcd.v1.0.0: Installed: the installed version; 1.3.0 is the upgrade\n",
	},
	"skips prune a bad release": {
		"ns/etcd":  "Upgrade etcd.v1.2.0 1.2.0 from community/stable by skips from etcd.v1.1.1\nrejected etcd.v1.1.0: Downgrade: lower than the installed version 1.1.1\nrejected etcd.v1.0.0: Downgrade: lower than the installed version 1.1.1\nrejected etcd.v1.1.1: Installed: the installed version; 1.2.0 is the upgrade\n",
		"ns2/etcd": "Upgrade etcd.v1.1.0 1.1.0 from community/stable by replaces from etcd.v1.0.0\nrejected etcd.v1.2.0: NoUpgradeEdge: no upgrade edge from the installed etcd.v1.0.0 (it neither replaces nor skips it, nor has a skipRange containing 1.0.0)\nrejected etcd.v1.1.1: NoUpgradeEdge: no upgrade edge from the installed etcd.v1.0.0 (it neither replaces nor skips it, nor has a skipRange containing 1.0.0)\nrejected etcd.v1.0.0: Installed: the installed version; 1.1.0 is the upgrade\n",
	},
	"nothing newer": {
		"ns/etcd": "UpToDate etcd.v0.9.2 0.9.2 from community/alpha by none from etcd.v0.9.2\nrejected etcd.v0.9.0: Downgrade: lower than the installed version 0.9.2\n",
	},
	"multiple channels and the default channel": {
		"ns/etcd":  "Install etcd.v1.1.0 1.1.0 from community/stable by install\nrejected etcd.v1.2.0: NotInChannel: not in channel \"stable\" (it is in fast)\nrejected etcd.v1.0.0: NotPreferred: etcd 1.1.0 was chosen over it\n",
		"ns2/etcd": "Install etcd.v1.2.0 1.2.0 from community/fast by install\nrejected etcd.v1.0.0: NotInChannel: not in channel \"fast\" (it is in stable)\nrejected etcd.v1.1.0: NotPreferred: etcd 1.2.0 was chosen over it\n",
		"ns3/etcd": "Unsatisfiable\nChannelNotFound: package \"etcd\" in catalog \"community\" has no channel \"beta\" (it has fast, stable)\n",
	},
	"installed version missing from the catalog": {
		"ns/etcd":  "Upgrade etcd.v0.9.2 0.9.2 from community/alpha by replaces from etcd.v0.9.1\nrejected etcd.v0.9.4: NoUpgradeEdge: no upgrade edge from the installed etcd.v0.9.1 (it neither replaces nor skips it, nor has a skipRange containing 0.9.1)\nrejected etcd.v0.9.1: Installed: the installed version; 0.9.2 is the upgrade\n",
		"ns2/etcd": "UpToDate etcd.v0.8.0 0.8.0 from community/alpha by none from etcd.v0.8.0\nrejected etcd.v0.9.4: NoUpgradeEdge: no upgrade edge from the installed etcd.v0.8.0 (it neither replaces nor skips it, nor has a skipRange containing 0.8.0)\nrejected etcd.v0.9.2: NoUpgradeEdge: no upgrade edge from the installed etcd.v0.8.0 (it neither replaces nor skips it, nor has a skipRange containing 0.8.0)\n",
	},
	"deprecated bundles": {
		"ns/etcd":   "Install etcd.v0.9.2 0.9.2 from community/alpha by install\nrejected etcd.v0.9.0: NotPreferred: etcd 0.9.2 was chosen over it\nrejected etcd.v0.9.4: Deprecated: deprecated: data loss on restart; a candidate that is not deprecated was chosen\n",
		"ns/lonely": "Install lonely.v1.0.0 1.0.0 from community/alpha by install\nwarning: lonely 1.0.0 is deprecated: use etcd\n",
	},
	"missing dependency": {
		"ns/etcd": "Unsatisfiable\nrejected etcd.v0.9.2: NotStartingVersion: not the starting version 0.9.4\nrejected etcd.v0.9.4: DependencyUnsatisfiable: its dependency prometheus >=2.0.0 cannot be met: etcd 0.9.4 requires prometheus >=2.0.0, but catalog \"community\" has prometheus 1.2.0 and 1.3.0 only\nDependencyUnsatisfiable: etcd 0.9.4 requires prometheus >=2.0.0, but catalog \"community\" has prometheus 1.2.0 and 1.3.0 only\n",
	},
	"upgrade skips a candidate whose dependency is missing": {
		"ns/etcd": "UpToDate etcd.v0.9.2 0.9.2 from community/alpha by none from etcd.v0.9.2\nrejected etcd.v0.9.4: DependencyUnsatisfiable: its dependency prometheus >=2.0.0 cannot be met: etcd 0.9.4 requires prometheus >=2.0.0, but catalog \"community\" has prometheus 1.2.0 and 1.3.0 only\n",
	},
	"diamond dependencies share one version": {
		"ns/app": "Install app.v1.0.0 1.0.0 from community/stable by install\ndep left.v1.0.0 from community in \"ns\": app 1.0.0 requires left >=1.0.0\ndep right.v1.0.0 from community in \"ns\": app 1.0.0 requires right >=1.0.0\ndep base.v1.2.0 from community in \"ns\": left 1.0.0 requires base >=1.0.0\n",
	},
	"conflicting ranges in a diamond": {
		"ns/app": "Unsatisfiable\nrejected app.v1.0.0: DependencyUnsatisfiable: its dependencies conflict: app 1.0.0 requires left >=1.0.0 (met by left 1.0.0); app 1.0.0 requires right >=1.0.0 (met by right 1.0.0); left 1.0.0 requires base <1.1.0 (met by base 1.0.0); right 1.0.0 requires base >=1.1.0 (met by base 1.1.0); only one version of base can be installed in namespace \"ns\"\nConflict: no version of app can be installed: app 1.0.0 requires left >=1.0.0 (met by left 1.0.0); app 1.0.0 requires right >=1.0.0 (met by right 1.0.0); left 1.0.0 requires base <1.1.0 (met by base 1.0.0); right 1.0.0 requires base >=1.1.0 (met by base 1.1.0); only one version of base can be installed in namespace \"ns\"\n",
	},
	"the complete search backs off a newer dependency": {
		"ns/app":  "Install app.v1.0.0 1.0.0 from community/stable by install\ndep right.v1.0.0 from community in \"ns\": app 1.0.0 requires right >=1.0.0\ndep base.v1.1.0 from community in \"ns\": right 1.0.0 requires base >=1.1.0\n",
		"ns/left": "Install left.v1.0.0 1.0.0 from community/stable by install\ndep base.v1.1.0 from community in \"ns\": left 1.0.0 requires base >=1.0.0\nrejected left.v2.0.0: Conflict: conflicts: app 1.0.0 is chosen for subscription ns/app; app 1.0.0 requires right >=1.0.0 (met by right 1.0.0); left 2.0.0 requires base <1.1.0 (met by base 1.0.0); only one version of base can be installed in namespace \"ns\"; right 1.0.0 requires base >=1.1.0 (met by base 1.1.0)\n",
	},
	"dependency cycle": {
		"ns/a": "Install a.v1.0.0 1.0.0 from community/stable by install\ndep b.v1.0.0 from community in \"ns\": a 1.0.0 requires b >=1.0.0\n",
	},
	"an API provided by two packages": {
		"ns/app":   "Install app.v1.0.0 1.0.0 from community/stable by install\n",
		"ns2/amon": "Unsatisfiable\nrejected amon.v1.0.0: Conflict: conflicts with zmon 1.0.0 which already provides API monitoring.io/v1, Kind=Monitor\nConflict: no version of amon can be installed: zmon 1.0.0 in namespace \"other\" already provides API monitoring.io/v1, Kind=Monitor, and only one package may provide an API in the cluster\n",
	},
	"two catalogs with priority": {
		"ns/app":   "Install app.v1.0.0 1.0.0 from community/stable by install\ndep base.v1.5.0 from community in \"ns\": app 1.0.0 requires base >=1.0.0\n",
		"ns2/tool": "Install tool.v1.0.0 1.0.0 from partner/stable by install\ndep base.v1.2.0 from certified in \"ns2\": tool 1.0.0 requires base >=1.0.0\n",
		"ns3/base": "Install base.v1.2.0 1.2.0 from certified/stable by install\nrejected base.v1.0.0: NotPreferred: base 1.2.0 was chosen over it\n",
	},
	"an unsatisfiable subscription does not block its neighbours": {
		"ns/etcd":  "Unsatisfiable\nrejected etcd.v0.9.2: OutsideRange: outside the range >=0.9.4\nrejected etcd.v0.9.4: DependencyUnsatisfiable: its dependency prometheus >=2.0.0 cannot be met: etcd 0.9.4 requires prometheus >=2.0.0, but catalog \"community\" has prometheus 1.2.0 and 1.3.0 only\nDependencyUnsatisfiable: etcd 0.9.4 requires prometheus >=2.0.0, but catalog \"community\" has prometheus 1.2.0 and 1.3.0 only\n",
		"ns/redis": "Install redis.v6.0.0 6.0.0 from community/stable by install\n",
	},
	"a dependency limited by another subscription": {
		"ns/etcd":       "Unsatisfiable\nrejected etcd.v0.9.2: OutsideRange: outside the range >=0.9.4\nrejected etcd.v0.9.4: DependencyUnsatisfiable: its dependency prometheus >=2.0.0 cannot be met: etcd 0.9.4 requires prometheus >=2.0.0, but subscription ns/prometheus allows prometheus 1.3.0 and 1.2.0 only\nDependencyUnsatisfiable: etcd 0.9.4 requires prometheus >=2.0.0, but subscription ns/prometheus allows prometheus 1.3.0 and 1.2.0 only\n",
		"ns/prometheus": "Install prometheus.v1.3.0 1.3.0 from community/beta by install\nrejected prometheus.v2.0.0: OutsideRange: outside the range <2.0.0\nrejected prometheus.v1.2.0: NotPreferred: prometheus 1.3.0 was chosen over it\n",
		"ns/redis":      "Install redis.v6.0.0 6.0.0 from community/stable by install\n",
	},
	"linked subscriptions fail together and name the link": {
		"ns/etcd":    "Unsatisfiable\nrejected etcd.v0.9.2: OutsideRange: outside the range >=0.9.4\nrejected etcd.v0.9.4: Conflict: cannot be installed together with subscription ns/thanos (linked by package prometheus in namespace \"ns\")\nLinkedConflict: subscriptions ns/etcd and ns/thanos cannot be satisfied together, linked by package prometheus in namespace \"ns\": subscription ns/etcd allows etcd 0.9.4 only; subscription ns/thanos allows thanos 1.0.0 only; etcd 0.9.4 requires prometheus >=2.0.0 (met by prometheus 2.0.0); thanos 1.0.0 requires prometheus <2.0.0 (met by prometheus 1.3.0 and 1.2.0); only one version of prometheus can be installed in namespace \"ns\"\nlinked with ns/thanos by package prometheus in namespace \"ns\"\n",
		"ns/thanos":  "Unsatisfiable\nrejected thanos.v1.0.0: Conflict: cannot be installed together with subscription ns/etcd (linked by package prometheus in namespace \"ns\")\nLinkedConflict: subscriptions ns/etcd and ns/thanos cannot be satisfied together, linked by package prometheus in namespace \"ns\": subscription ns/etcd allows etcd 0.9.4 only; subscription ns/thanos allows thanos 1.0.0 only; etcd 0.9.4 requires prometheus >=2.0.0 (met by prometheus 2.0.0); thanos 1.0.0 requires prometheus <2.0.0 (met by prometheus 1.3.0 and 1.2.0); only one version of prometheus can be installed in namespace \"ns\"\nlinked with ns/etcd by package prometheus in namespace \"ns\"\n",
		"ns/redis":   "Install redis.v6.0.0 6.0.0 from community/stable by install\n",
		"ns2/thanos": "Install thanos.v1.0.0 1.0.0 from community/stable by install\ndep prometheus.v1.3.0 from community in \"ns2\": thanos 1.0.0 requires prometheus <2.0.0\n",
	},
	"dependency already installed is kept": {
		"ns/etcd": "Install etcd.v0.9.4 0.9.4 from community/alpha by install\nrejected etcd.v0.9.2: OutsideRange: outside the range >=0.9.4\n",
	},
	"installed dependency outside the range": {
		"ns/etcd": "Unsatisfiable\nrejected etcd.v0.9.2: OutsideRange: outside the range >=0.9.4\nrejected etcd.v0.9.4: DependencyUnsatisfiable: its dependency prometheus >=1.3.0 cannot be met: etcd 0.9.4 requires prometheus >=1.3.0, but prometheus 1.2.0 is installed in namespace \"ns\"\nDependencyUnsatisfiable: etcd 0.9.4 requires prometheus >=1.3.0, but prometheus 1.2.0 is installed in namespace \"ns\"\n",
	},
	"manual approval": {
		"ns/etcd":  "Upgrade etcd.v0.9.4 0.9.4 from community/alpha by replaces from etcd.v0.9.2\nneeds approval\nrejected etcd.v0.9.0: Downgrade: lower than the installed version 0.9.2\nrejected etcd.v0.9.2: Installed: the installed version; 0.9.4 is the upgrade\n",
		"ns2/etcd": "Upgrade etcd.v0.9.4 0.9.4 from community/alpha by replaces from etcd.v0.9.2\nrejected etcd.v0.9.0: Downgrade: lower than the installed version 0.9.2\nrejected etcd.v0.9.2: Installed: the installed version; 0.9.4 is the upgrade\n",
	},
	"unknown catalog and package": {
		"ns/a": "Unsatisfiable\nCatalogNotFound: catalog \"nowhere\" is not available\n",
		"ns/b": "Unsatisfiable\nPackageNotFound: catalog \"community\" has no package \"nope\"\n",
		"ns/c": "Unsatisfiable\nInvalidSubscription: subscription ns/c: range \"not a range\" is not a version range\n",
	},
}
