package publish

import (
	"testing"
	"testing/fstest"
)

func TestFilesFS(t *testing.T) {
	files := Files{
		"metadata/annotations.yaml": []byte("annotations: {}\n"),
		"manifests/a.yaml":          []byte("a"),
		"manifests/sub/b.yaml":      []byte("bb"),
		"top.txt":                   []byte("t"),
	}
	if err := fstest.TestFS(files.FS(), "metadata/annotations.yaml", "manifests/a.yaml", "manifests/sub/b.yaml", "top.txt"); err != nil {
		t.Fatal(err)
	}
}
