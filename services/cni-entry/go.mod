module usrsp.dev/services/cni-entry

go 1.26.0

require (
	github.com/containernetworking/cni v1.3.1
	github.com/containernetworking/plugins v1.9.1
	github.com/nats-io/nats.go v1.55.0
	github.com/rs/zerolog v1.35.1
	github.com/safchain/ethtool v0.6.2
	github.com/stretchr/testify v1.12.1
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.49.0
	usrsp.dev/contracts v0.0.0
	usrsp.dev/libs/confine v0.0.0
	usrsp.dev/libs/natsauth v0.0.0
	usrsp.dev/libs/natstest v0.0.0
)

require (
	github.com/alexflint/go-filemutex v1.3.0 // indirect
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/coreos/go-iptables v0.8.0 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go.opentelemetry.io/otel v1.29.0 // indirect
	go.opentelemetry.io/otel/trace v1.29.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	sigs.k8s.io/knftables v0.0.18 // indirect
	usrsp.dev/libs/testkit v0.0.0
)

replace (
	usrsp.dev/contracts => ../../contracts
	usrsp.dev/libs/confine => ../../libs/confine
	usrsp.dev/libs/natsauth => ../../libs/natsauth
	usrsp.dev/libs/natstest => ../../libs/natstest
)

replace usrsp.dev/libs/testkit => ../../libs/testkit
