package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestIssue(t *testing.T) {
	dir := t.TempDir()
	ca := NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	ca.WriteCert(t, caFile)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := x509.NewCertPool()
	if !fromFile.AppendCertsFromPEM(caPEM) {
		t.Fatal("WriteCert wrote no certificate")
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := ca.Issue(t, 42, certFile, keyFile)
	if cert.SerialNumber.Int64() != 42 {
		t.Errorf("serial %v, want 42", cert.SerialNumber)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pair.Leaf.Equal(cert) {
		t.Error("certFile does not hold the returned certificate")
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		for what, pool := range map[string]*x509.CertPool{"Pool": ca.Pool(), "WriteCert": fromFile} {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
				t.Errorf("%s against %s: %v", name, what, err)
			}
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: NewCA(t).Pool()}); err == nil {
		t.Error("certificate verified against another CA")
	}
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	SelfSigned(t, certFile, keyFile)
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("no certificate in certFile")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err != nil {
		t.Errorf("self-signed certificate not trusted as its own CA file: %v", err)
	}
	if fi, err := os.Stat(keyFile); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}
