package natsauth

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// IdentityFromCreds reads the identity a .creds file was minted for (from
// the user JWT's name), so a client needs only its .creds to know its
// inbox prefix.
func IdentityFromCreds(path string) (Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, err
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", path, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", path, err)
	}
	role, name, ok := strings.Cut(uc.Name, "@")
	id := Identity{Role: Role(role), Name: name}
	if !ok || id.Validate() != nil {
		return Identity{}, fmt.Errorf("%s: user %q was not minted by usrsp-nats-creds", path, uc.Name)
	}
	return id, nil
}

// ClientOptions are the nats.go options of a usrsp client: its .creds, its
// own inbox prefix (taken from the .creds) and, if tls is set, TLS.
func ClientOptions(credsFile string, tls *TLS) ([]nats.Option, error) {
	id, err := IdentityFromCreds(credsFile)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.UserCredentials(credsFile), nats.CustomInboxPrefix(id.InboxPrefix())}
	if tls != nil {
		t, err := tls.ClientOptions()
		if err != nil {
			return nil, err
		}
		opts = append(opts, t...)
	}
	return opts, nil
}
