// Package testpki makes certificate authorities and certificates for
// tests, in-process with crypto/x509: a CA, server and client certificates
// signed by it, with chosen names and validity (for expired ones).
//
//	ca := testpki.NewCA(t, "test CA")
//	server := ca.Issue(t, "catalogd", testpki.WithHosts("127.0.0.1", "catalogd.example"))
//	certFile, keyFile := server.WriteFiles(t, t.TempDir())
package testpki
