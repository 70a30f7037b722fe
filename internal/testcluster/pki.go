package testcluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// pki holds the paths of the certificates and keys made by makePKI.
type pki struct {
	dir           string
	caCert, caKey string
	servingCert   string
	servingKey    string
	saKey, saPub  string
	adminCert     string
	adminKey      string
}

// makePKI creates, with openssl, a CA, a serving certificate for the API
// server (127.0.0.1, localhost and the in-cluster names), a service account
// key pair and an admin client certificate in group system:masters.
func makePKI(dir string) (*pki, error) {
	if _, err := exec.LookPath("openssl"); err != nil {
		return nil, fmt.Errorf("openssl not found in PATH (install it with 'apt-get install -y openssl'): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{
		dir:         dir,
		caCert:      filepath.Join(dir, "ca.crt"),
		caKey:       filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
		adminCert:   filepath.Join(dir, "admin.crt"),
		adminKey:    filepath.Join(dir, "admin.key"),
	}
	steps := [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
			"-keyout", p.caKey, "-out", p.caCert, "-subj", "/CN=ferry-test-ca",
			"-addext", "basicConstraints=critical,CA:TRUE",
			"-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"},
		{"genrsa", "-out", p.saKey, "2048"},
		{"rsa", "-in", p.saKey, "-pubout", "-out", p.saPub},
	}
	for _, args := range steps {
		if err := openssl(dir, args...); err != nil {
			return nil, err
		}
	}
	serving := strings.Join([]string{
		"basicConstraints=CA:FALSE",
		"keyUsage=critical,digitalSignature,keyEncipherment",
		"extendedKeyUsage=serverAuth",
		"subjectAltName=IP:127.0.0.1,DNS:localhost,IP:" + serviceIP + ",DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
	}, "\n") + "\n"
	if err := p.sign("apiserver", "/CN=kube-apiserver", serving, p.servingKey, p.servingCert); err != nil {
		return nil, err
	}
	client := "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
	if err := p.sign("admin", "/O=system:masters/CN=ferry-admin", client, p.adminKey, p.adminCert); err != nil {
		return nil, err
	}
	return p, nil
}

// sign makes a key and a certificate with subject and extensions, signed by the CA.
func (p *pki) sign(name, subject, extensions, keyPath, certPath string) error {
	csr := filepath.Join(p.dir, name+".csr")
	ext := filepath.Join(p.dir, name+".ext")
	if err := os.WriteFile(ext, []byte(extensions), 0o600); err != nil {
		return err
	}
	if err := openssl(p.dir, "req", "-new", "-newkey", "rsa:2048", "-nodes",
		"-keyout", keyPath, "-out", csr, "-subj", subject); err != nil {
		return err
	}
	if err := openssl(p.dir, "x509", "-req", "-in", csr, "-CA", p.caCert, "-CAkey", p.caKey,
		"-CAcreateserial", "-days", "3650", "-out", certPath, "-extfile", ext); err != nil {
		return err
	}
	_ = os.Remove(csr)
	_ = os.Remove(ext)
	return nil
}

func openssl(dir string, args ...string) error {
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("openssl %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}
