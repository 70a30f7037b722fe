package asdeployed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// MinTokenExpiration is the shortest token the TokenRequest API issues.
const MinTokenExpiration = 10 * time.Minute

// Username is the name the API server knows a ServiceAccount by.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// ServiceAccountConfig mints a token for the ServiceAccount namespace/name
// with the TokenRequest API and returns a rest config that authenticates
// with it alone (admin's server and CA, none of admin's credentials).
func ServiceAccountConfig(ctx context.Context, admin *rest.Config, namespace, name string, expiration time.Duration) (*rest.Config, error) {
	if expiration < MinTokenExpiration {
		return nil, fmt.Errorf("token expiration %v is shorter than the API server's minimum %v", expiration, MinTokenExpiration)
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	seconds := int64(expiration / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	if tr.Status.Token == "" {
		return nil, fmt.Errorf("requesting a token for ServiceAccount %s/%s: the API server returned no token", namespace, name)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// WriteKubeconfig writes a kubeconfig (mode 0600) for cfg's server, CA and
// bearer token. Client certificates are not written: it is for tokens.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	if cfg.BearerToken == "" {
		return errors.New("writing a kubeconfig: the config has no bearer token")
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return fmt.Errorf("writing a kubeconfig: %w", err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["ferry"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos["token"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["ferry"] = &clientcmdapi.Context{Cluster: "ferry", AuthInfo: "token"}
	kc.CurrentContext = "ferry"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// maxReportedLines bounds how many lines Forbidden returns.
const maxReportedLines = 20

// terminatingNamespace is the one Forbidden that is no permission problem:
// the namespace lifecycle admission refuses new objects in a namespace
// being deleted, whoever asks (a Subscription reconciled while its
// namespace goes away).
const terminatingNamespace = "forbidden: unable to create new content in namespace"

// Forbidden returns the lines of a log that report a request the API
// server refused ("forbidden", any case), at most 20 of them, leaving out
// only refusals to create objects in a namespace being deleted. A process
// run as deployed must never log one.
func Forbidden(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []string
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(strings.ReplaceAll(strings.ToLower(line), terminatingNamespace, ""), "forbidden") {
			out = append(out, line)
			if len(out) == maxReportedLines {
				break
			}
		}
	}
	return out, sc.Err()
}
