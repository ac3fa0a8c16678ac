// Package testpki makes throw-away certificate authorities and server
// certificates for tests. It is imported only by _test.go files.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// validity is how long certificates stay valid on either side of now: long
// enough for the slowest end-to-end test.
const validity = 24 * time.Hour

// CA is a certificate authority made for one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// NewCA makes a CA (P-256, serial 1). It fails t on error.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pop3d test CA"},
		NotBefore:             time.Now().Add(-validity),
		NotAfter:              time.Now().Add(validity),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	cert := create(t, tmpl, tmpl, key, key)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, pool: pool}
}

// Pool returns a pool holding only the CA, for tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// WriteCert writes the CA certificate to file as PEM, for clients given a
// CA file.
func (ca *CA) WriteCert(t testing.TB, file string) {
	t.Helper()
	WriteFile(t, file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644)
}

// Issue writes a server certificate for 127.0.0.1 and localhost with the
// given serial number, signed by the CA, to certFile and its PKCS #8 key to
// keyFile (PEM), each replaced atomically as certbot does. Serials must be
// above 1, which is the CA's own.
func (ca *CA) Issue(t testing.TB, serial int64, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	return writeLeaf(t, serial, ca.cert, ca.key, certFile, keyFile)
}

// SelfSigned writes a self-signed server certificate for 127.0.0.1 and
// localhost to certFile and its key to keyFile, as Issue does; a client
// trusts it by taking certFile as its CA file.
func SelfSigned(t testing.TB, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	return writeLeaf(t, 1, nil, nil, certFile, keyFile)
}

// writeLeaf issues a server certificate signed by parent, or by itself when
// parent is nil, and writes it and its key.
func writeLeaf(t testing.TB, serial int64, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-validity),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	cert := create(t, tmpl, parent, key, parentKey)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
	WriteFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return cert
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func create(t testing.TB, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// WriteFile replaces name with data atomically (a temporary file renamed
// over it), so that a server watching name never reads half a file.
func WriteFile(t testing.TB, name string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}
