package testcluster

import (
	"slices"
	"strings"
	"testing"
)

func TestNodeNames(t *testing.T) {
	tests := []struct {
		name  string
		first string
		n     int
		want  []string
	}{
		{name: "one", first: "fake-node", n: 1, want: []string{"fake-node"}},
		{name: "three", first: "fake-node", n: 3, want: []string{"fake-node", "fake-node-2", "fake-node-3"}},
		{name: "custom first", first: "kwok", n: 2, want: []string{"kwok", "kwok-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NodeNames(tt.first, tt.n); !slices.Equal(got, tt.want) {
				t.Errorf("NodeNames(%q, %d) = %v, want %v", tt.first, tt.n, got, tt.want)
			}
		})
	}
}

func TestWithNodesBounds(t *testing.T) {
	tests := []struct {
		name    string
		nodes   int
		wantErr bool
	}{
		{name: "default", nodes: 1},
		{name: "most", nodes: MaxNodes},
		{name: "none", nodes: 0, wantErr: true},
		{name: "negative", nodes: -1, wantErr: true},
		{name: "too many", nodes: MaxNodes + 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve([]Option{WithDir(t.TempDir()), WithNodes(tt.nodes)})
			if (err != nil) != tt.wantErr {
				t.Fatalf("resolve with WithNodes(%d): err = %v, want error %v", tt.nodes, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "fake Nodes") {
				t.Errorf("error %q does not say what is wrong", err)
			}
		})
	}
}
