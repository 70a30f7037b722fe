package manifesttest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSplit(t *testing.T) {
	stream := []byte(`# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: ns, labels: {x: "y"}}
data: {k: v}
---

---
apiVersion: v1
metadata: {name: no-kind}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
`)
	objs := Split(t, "stream", stream)
	for i, want := range []string{"ConfigMap ns/a", " no-kind", "ClusterRole r"} {
		if i >= len(objs) || objs[i].String() != want {
			t.Fatalf("objects %v, want %q at %d", objs, want, i)
		}
	}
	if len(objs) != 3 {
		t.Fatalf("%d objects, want 3: %v", len(objs), objs)
	}
	cm := Find(t, objs, "ConfigMap", "a")
	if cm.Metadata.Labels["x"] != "y" {
		t.Errorf("labels %v", cm.Metadata.Labels)
	}
	var typed corev1.ConfigMap
	DecodeStrict(t, cm, &typed)
	if typed.Data["k"] != "v" {
		t.Errorf("data %v", typed.Data)
	}
	if _, ok := Lookup(objs, "ConfigMap", "b"); ok {
		t.Error("Lookup found a ConfigMap that was not rendered")
	}
}
