package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pop3d/pop3d/internal/regfile"
)

// maxPEMSize bounds the certificate and key files read: a chain of a few
// certificates is a few KiB.
const maxPEMSize = 1 << 20

// certCheckInterval bounds how often handshakes look at the certificate files.
const certCheckInterval = time.Second

// CertReloader serves a certificate/key pair from files and re-reads them
// when they change (checked at most once a second on handshakes by
// size+mtime+inode) and on Reload; a bad new pair keeps the old one and logs
// why. Use its GetCertificate as tls.Config.GetCertificate.
type CertReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	cert      atomic.Pointer[tls.Certificate]
	lastCheck atomic.Int64 // unix nanoseconds of the last look at the files

	mu    sync.Mutex // serialises loads
	stamp certStamp  // files as last loaded or last found bad
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

type certStamp struct{ cert, key fileStamp }

func statStamp(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

func (r *CertReloader) statFiles() (certStamp, error) {
	c, err := statStamp(r.certFile)
	if err != nil {
		return certStamp{}, err
	}
	k, err := statStamp(r.keyFile)
	if err != nil {
		return certStamp{}, err
	}
	return certStamp{cert: c, key: k}, nil
}

// NewCertReloader loads the pair; it fails if the pair is unusable now. A nil
// logger discards log lines.
func NewCertReloader(certFile, keyFile string, logger *slog.Logger) (*CertReloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// loadPair reads and checks the pair: it must parse, match, and its leaf
// must be a valid X.509 certificate.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	// Not tls.LoadX509KeyPair: a FIFO or device in place of either file
	// would block it (and every handshake waiting for the reload) forever.
	certPEM, err := regfile.ReadFile(certFile, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	keyPEM, err := regfile.ReadFile(keyFile, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("tls key: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s, key %s: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("tls certificate %s: %w", certFile, err)
		}
		c.Leaf = leaf
	}
	return &c, nil
}

// Reload re-reads the files now. On error the pair in use stays.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastCheck.Store(time.Now().UnixNano())
	st, err := r.statFiles()
	if err != nil {
		err = fmt.Errorf("tls certificate %s, key %s: %w", r.certFile, r.keyFile, err)
		if r.cert.Load() != nil {
			r.logger.Error("certificate reload failed, keeping the old one", "err", err)
		}
		return err
	}
	return r.loadLocked(st)
}

func (r *CertReloader) loadLocked(st certStamp) error {
	r.stamp = st
	c, err := loadPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert.Load() != nil {
			r.logger.Error("certificate reload failed, keeping the old one", "err", err)
		}
		return err
	}
	old := r.cert.Swap(c)
	if old != nil {
		r.logger.Info("certificate reloaded", "cert", r.certFile, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// maybeReload looks at the files if a second has passed since the last look
// and loads them if they changed.
func (r *CertReloader) maybeReload() {
	now := time.Now().UnixNano()
	last := r.lastCheck.Load()
	if now-last < int64(certCheckInterval) || !r.lastCheck.CompareAndSwap(last, now) {
		return
	}
	// A handshake never waits for a load another one is doing: the pair
	// in use serves meanwhile.
	if !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	st, err := r.statFiles()
	if err != nil {
		// A renewal tool may be replacing the files right now; the next
		// check will see the result.
		return
	}
	if st != r.stamp {
		r.loadLocked(st)
	}
}

// GetCertificate returns the current pair, for tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.maybeReload()
	c := r.cert.Load()
	if c == nil {
		return nil, errors.New("tls: no certificate loaded")
	}
	return c, nil
}
