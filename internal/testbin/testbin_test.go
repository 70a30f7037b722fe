package testbin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersions(t *testing.T) {
	full := "# comment\nK8S_VERSION=v1.33.13\nK8S_STAGING_VERSION=v0.33.13\n\nETCD_VERSION=\"v3.5.21\"\nKWOK_VERSION=v0.7.0\n"
	tests := []struct {
		name    string
		content string
		want    Versions
		wantErr string
	}{
		{name: "complete", content: full, want: Versions{Kubernetes: "v1.33.13", KubernetesStaging: "v0.33.13", Etcd: "v3.5.21", Kwok: "v0.7.0"}},
		{name: "missing key", content: "K8S_VERSION=v1.33.13\n", wantErr: "is missing"},
		{name: "malformed line", content: "K8S_VERSION v1\n", wantErr: "expected KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVersions(tt.content)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVersions() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVersions() error = %v", err)
			}
			if got != tt.want {
				t.Fatalf("ParseVersions() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDirNameFromRepositoryVersions(t *testing.T) {
	v, err := LoadVersions()
	if err != nil {
		t.Fatal(err)
	}
	want := "k8s-" + v.Kubernetes + "-etcd-" + v.Etcd + "-kwok-" + v.Kwok
	if got := v.DirName(); got != want {
		t.Fatalf("DirName() = %q, want %q", got, want)
	}
	t.Setenv("FERRY_CACHE", "/cache")
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if wantDir := filepath.Join("/cache", "testbin", want); dir != wantDir {
		t.Fatalf("Dir() = %q, want %q", dir, wantDir)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, Etcd), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir, Etcd); err != nil {
		t.Fatalf("Check(etcd) = %v, want nil", err)
	}
	err := Check(dir, Etcd, KubeAPIServer)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "kube-apiserver") || !strings.Contains(err.Error(), BuildCommand) {
		t.Fatalf("Check(etcd, kube-apiserver) = %v, want ErrMissing naming kube-apiserver and %q", err, BuildCommand)
	}
}
