package ociimage

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// maxDockerConfigBytes bounds the Docker config file read.
const maxDockerConfigBytes = 1 << 20

// dockerKeychain answers credentials from the "auths" of a Docker config
// file. Keys are matched against the repository (REGISTRY/REPO) first, then
// the registry, with or without an https:// or http:// prefix and a /v1/ or
// /v2/ suffix, as docker login writes them.
type dockerKeychain struct {
	auths map[string]authn.AuthConfig
}

type anonymousKeychain struct{}

func (anonymousKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.Anonymous, nil
}

func loadDockerConfig(path string) (*dockerKeychain, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	if st.Size() > maxDockerConfigBytes {
		return nil, fmt.Errorf("registry credentials %s: %d bytes, more than %d", path, st.Size(), maxDockerConfigBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("registry credentials %s: not a Docker config file: %w", path, err)
	}
	kc := &dockerKeychain{auths: map[string]authn.AuthConfig{}}
	for key, a := range cfg.Auths {
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("registry credentials %s: auths[%q].auth: not base64: %w", path, key, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("registry credentials %s: auths[%q].auth: not base64 of user:password", path, key)
			}
			ac.Username, ac.Password = user, pass
		}
		kc.auths[normalizeAuthKey(key)] = ac
	}
	return kc, nil
}

func normalizeAuthKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	for _, suffix := range []string{"/v1/", "/v2/", "/v1", "/v2", "/"} {
		k = strings.TrimSuffix(k, suffix)
	}
	return k
}

func (k *dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, key := range []string{r.String(), r.RegistryStr()} {
		if ac, ok := k.auths[normalizeAuthKey(key)]; ok {
			return authn.FromConfig(ac), nil
		}
	}
	return authn.Anonymous, nil
}
