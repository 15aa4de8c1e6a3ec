package natsauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// AccountName is the NATS account every usrsp identity belongs to.
const AccountName = "USRSP"

// Files of an authority directory. Seeds (*.nk) are private; JWTs are not.
const (
	operatorSeedFile = "operator.nk"
	accountSeedFile  = "account.nk"
	signerSeedFile   = "account-signer.nk"
	systemSeedFile   = "system.nk"
	operatorJWTFile  = "operator.jwt"
	accountJWTFile   = "account.jwt"
	systemJWTFile    = "system.jwt"
)

// Authority holds the keys that mint usrsp's NATS identities. It lives with
// whoever runs usrsp-nats-creds (offline), never on a node: the account
// signing key can mint any user.
type Authority struct {
	Operator nkeys.KeyPair // signs account JWTs
	Account  nkeys.KeyPair // identity key of the USRSP account (its JWT is signed by Operator)
	Signer   nkeys.KeyPair // account signing key: signs user JWTs
	System   nkeys.KeyPair // system account (required by operator mode and a full resolver)

	OperatorJWT, AccountJWT, SystemJWT string
}

// NewAuthority creates fresh operator, account, signing and system keys and
// their JWTs. operatorName names the operator in its JWT.
func NewAuthority(operatorName string) (*Authority, error) {
	a := &Authority{}
	var err error
	if a.Operator, err = nkeys.CreateOperator(); err != nil {
		return nil, err
	}
	if a.Account, err = nkeys.CreateAccount(); err != nil {
		return nil, err
	}
	if a.Signer, err = nkeys.CreateAccount(); err != nil {
		return nil, err
	}
	if a.System, err = nkeys.CreateAccount(); err != nil {
		return nil, err
	}
	sysPub, _ := a.System.PublicKey()
	opPub, _ := a.Operator.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = operatorName
	oc.SystemAccount = sysPub
	if a.OperatorJWT, err = oc.Encode(a.Operator); err != nil {
		return nil, fmt.Errorf("encode operator JWT: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	if a.SystemJWT, err = sc.Encode(a.Operator); err != nil {
		return nil, fmt.Errorf("encode system account JWT: %w", err)
	}
	if err := a.ReissueAccount(nil); err != nil {
		return nil, err
	}
	return a, nil
}

// ReissueAccount re-signs the USRSP account JWT, revoking the given user
// public keys (as of now). Servers pick it up from their resolver.
func (a *Authority) ReissueAccount(revoke []string) error {
	accPub, _ := a.Account.PublicKey()
	signerPub, _ := a.Signer.PublicKey()
	ac := jwt.NewAccountClaims(accPub)
	if a.AccountJWT != "" {
		old, err := jwt.DecodeAccountClaims(a.AccountJWT)
		if err != nil {
			return fmt.Errorf("decode account JWT: %w", err)
		}
		ac = old
	}
	ac.Name = AccountName
	ac.SigningKeys.Add(signerPub)
	for _, u := range revoke {
		ac.Revoke(u)
	}
	var err error
	if a.AccountJWT, err = ac.Encode(a.Operator); err != nil {
		return fmt.Errorf("encode account JWT: %w", err)
	}
	return nil
}

// AccountPublicKey is the USRSP account's public key (leaf remotes bind to it).
func (a *Authority) AccountPublicKey() string {
	pub, _ := a.Account.PublicKey()
	return pub
}

// Mint creates a user for id, signed by the account signing key, and
// returns its .creds file content (JWT and the user's own seed) and its
// public key (for revocation). ttl 0 means no expiry.
func (a *Authority) Mint(id Identity, ttl time.Duration) (creds []byte, userPub string, err error) {
	if err := id.Validate(); err != nil {
		return nil, "", err
	}
	if a.Signer == nil {
		return nil, "", errors.New("the account signing key is missing: minting needs the authority directory of usrsp-nats-creds init")
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	userPub, _ = user.PublicKey()
	seed, _ := user.Seed()
	uc := jwt.NewUserClaims(userPub)
	uc.Name = id.UserName()
	uc.IssuerAccount = a.AccountPublicKey()
	uc.Permissions = id.Permissions()
	uc.AllowedConnectionTypes = id.connectionTypes()
	uc.Tags.Add("role:"+string(id.Role), "name:"+id.Name)
	if ttl > 0 {
		uc.Expires = time.Now().Add(ttl).Unix()
	}
	tok, err := uc.Encode(a.Signer)
	if err != nil {
		return nil, "", fmt.Errorf("encode user JWT of %s: %w", id.UserName(), err)
	}
	creds, err = jwt.FormatUserConfig(tok, seed)
	return creds, userPub, err
}

// Save writes the authority to dir (created 0700): seeds 0600, JWTs 0644.
// It refuses to overwrite an existing authority.
func (a *Authority) Save(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, accountJWTFile)); err == nil {
		return fmt.Errorf("%s already holds an authority; refusing to overwrite it", dir)
	}
	return a.write(dir)
}

// SaveAccount rewrites the account JWT after ReissueAccount.
func (a *Authority) SaveAccount(dir string) error {
	return writeFile(filepath.Join(dir, accountJWTFile), []byte(a.AccountJWT), 0o644)
}

func (a *Authority) write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, kp := range map[string]nkeys.KeyPair{
		operatorSeedFile: a.Operator, accountSeedFile: a.Account, signerSeedFile: a.Signer, systemSeedFile: a.System,
	} {
		seed, err := kp.Seed()
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, name), seed, 0o600); err != nil {
			return err
		}
	}
	for name, tok := range map[string]string{
		operatorJWTFile: a.OperatorJWT, accountJWTFile: a.AccountJWT, systemJWTFile: a.SystemJWT,
	} {
		if err := writeFile(filepath.Join(dir, name), []byte(tok), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// LoadAuthority reads an authority written by Save.
func LoadAuthority(dir string) (*Authority, error) {
	a := &Authority{}
	seeds := map[string]*nkeys.KeyPair{
		operatorSeedFile: &a.Operator, accountSeedFile: &a.Account, signerSeedFile: &a.Signer, systemSeedFile: &a.System,
	}
	for name, kp := range seeds {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("authority: %w", err)
		}
		if *kp, err = nkeys.FromSeed([]byte(strings.TrimSpace(string(b)))); err != nil {
			return nil, fmt.Errorf("authority %s: %w", name, err)
		}
	}
	for name, dst := range map[string]*string{
		operatorJWTFile: &a.OperatorJWT, accountJWTFile: &a.AccountJWT, systemJWTFile: &a.SystemJWT,
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("authority: %w", err)
		}
		*dst = strings.TrimSpace(string(b))
	}
	return a, nil
}

// writeFile writes atomically (temp file + rename) with mode perm.
func writeFile(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteCreds writes a .creds file readable by its owner only.
func WriteCreds(path string, creds []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeFile(path, creds, 0o600)
}
