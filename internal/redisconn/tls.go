package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"
)

// TLSFiles names the PEM files that complete the TLS of a rediss URL (rediss://,
// rediss+cluster://, rediss+sentinel://) for a deployment with a private certificate
// authority or one that requires client certificates (redis-server's tls-auth-clients yes).
// The zero value names no file: servers are verified against the system's roots and no
// client certificate is sent. The same files serve every node the client dials: Cluster
// nodes, Sentinels and the primary and replicas they name. The files are read once, when the
// client is made; a rotated certificate takes a restart.
type TLSFiles struct {
	// CAFile holds the PEM certificates of the authorities that sign the servers'
	// certificates. They replace the system's roots; empty: the system's roots.
	CAFile string
	// CertFile and KeyFile hold the client's PEM certificate (followed by any intermediates)
	// and its private key, sent when a server asks for a client certificate. Both or neither.
	CertFile string
	KeyFile  string
}

// IsZero reports whether f names no file.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// Apply completes opts.TLSConfig, the TLS configuration Parse made for a rediss URL, with the
// files f names: it replaces it with a copy that trusts CAFile's authorities and carries the
// client certificate. It does nothing when f names no file. It fails, leaving opts as it was,
// when f names a file but opts has no TLS configuration (the URL is not a rediss one), when
// CAFile cannot be read or holds no PEM certificate, when only one of CertFile and KeyFile is
// named, or when they cannot be read or do not hold a certificate and its key. The error
// names the files, never their contents.
func (f TLSFiles) Apply(opts *redis.UniversalOptions) error {
	if f.IsZero() {
		return nil
	}
	if opts.TLSConfig == nil {
		return errors.New("TLS files given for a URL without TLS: use rediss://, rediss+cluster:// or rediss+sentinel://")
	}
	cfg := opts.TLSConfig.Clone()
	if f.CAFile != "" {
		pemBytes, err := os.ReadFile(f.CAFile)
		if err != nil {
			return fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("CA file %s: no PEM certificate in it", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return fmt.Errorf("load client certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.CertFile != "":
		return fmt.Errorf("client certificate %s given without its key file", f.CertFile)
	case f.KeyFile != "":
		return fmt.Errorf("client key %s given without its certificate file", f.KeyFile)
	}
	opts.TLSConfig = cfg
	return nil
}

// NewWithTLS is New for a rediss URL whose TLS needs files: it parses rawURL (see Parse),
// applies files (see TLSFiles.Apply) and returns the client. It fails as Parse and Apply do,
// and does not contact Redis. The caller closes the client.
func NewWithTLS(rawURL string, files TLSFiles) (redis.UniversalClient, Mode, error) {
	opts, mode, err := Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	if err := files.Apply(opts); err != nil {
		return nil, "", err
	}
	return newClient(opts), mode, nil
}
