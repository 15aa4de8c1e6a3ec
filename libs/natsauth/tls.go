package natsauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// TLS names PEM files. On a client: CAFile verifies the server (required
// for TLS), CertFile/KeyFile are an optional client certificate. On a
// server: CertFile/KeyFile are its certificate, and a CAFile makes it
// require and verify client certificates.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// Validate checks that the fields are consistent and the files readable.
func (t TLS) Validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("tls: certFile and keyFile must be set together")
	}
	for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	return nil
}

// ClientOptions are the nats.go options for a client: verify the server
// against CAFile and, if set, present the client certificate (nats.go
// requires TLS 1.2 or later); the URL host must match the server certificate.
func (t TLS) ClientOptions() ([]nats.Option, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if t.CAFile == "" {
		return nil, errors.New("tls: caFile is required to verify the server")
	}
	opts := []nats.Option{nats.RootCAs(t.CAFile)}
	if t.CertFile != "" {
		opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	return opts, nil
}

// ServerTLSConfig is the tls.Config of a server (server.Options.TLSConfig;
// set TLSVerify too when CAFile is set): its certificate, and client
// certificate verification against CAFile if set.
func (t TLS) ServerTLSConfig() (*tls.Config, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if t.CertFile == "" {
		return nil, errors.New("tls: a server needs certFile and keyFile")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no certificate in %s", t.CAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// writeServerBlock renders the nats-server "tls { }" block.
func (t TLS) writeServerBlock(b *strings.Builder, indent string) {
	fmt.Fprintf(b, "%stls {\n%s  cert_file: %q\n%s  key_file: %q\n", indent, indent, t.CertFile, indent, t.KeyFile)
	if t.CAFile != "" {
		fmt.Fprintf(b, "%s  ca_file: %q\n%s  verify: true\n", indent, t.CAFile, indent)
	}
	fmt.Fprintf(b, "%s}\n", indent)
}
