module usrsp.dev/tools

go 1.26.0

require (
	github.com/containernetworking/cni v1.3.1
	github.com/nats-io/nats.go v1.55.0
	github.com/stretchr/testify v1.12.1
	go.fd.io/govpp v0.13.0
	usrsp.dev/contracts v0.0.0
	usrsp.dev/libs/natsauth v0.0.0
	usrsp.dev/libs/natstest v0.0.0
	usrsp.dev/libs/vpp v0.0.0
)

require (
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/lunixbochs/struc v0.0.0-20200521075829-a4cb8d33dbbe // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	go.opentelemetry.io/otel v1.29.0 // indirect
	go.opentelemetry.io/otel/trace v1.29.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	usrsp.dev/libs/ovsdpdk v0.0.0
	usrsp.dev/libs/testkit v0.0.0
)

replace (
	usrsp.dev/contracts => ../contracts
	usrsp.dev/libs/natsauth => ../libs/natsauth
	usrsp.dev/libs/natstest => ../libs/natstest
)

replace usrsp.dev/libs/ovsdpdk => ../libs/ovsdpdk

replace usrsp.dev/libs/testkit => ../libs/testkit

replace usrsp.dev/libs/vpp => ../libs/vpp
