module usrsp.dev/services/vpp-adapter

go 1.26.0

require (
	github.com/nats-io/nats.go v1.55.0
	github.com/rs/zerolog v1.35.1
	github.com/stretchr/testify v1.12.1
	go.fd.io/govpp v0.13.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.49.0
	usrsp.dev/contracts v0.0.0
	usrsp.dev/libs/adapterkit v0.0.0
	usrsp.dev/libs/confine v0.0.0
	usrsp.dev/libs/memif v0.0.0
	usrsp.dev/libs/natstest v0.0.0
	usrsp.dev/libs/vpp v0.0.0
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/lunixbochs/struc v0.0.0-20200521075829-a4cb8d33dbbe // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	usrsp.dev/libs/natsauth v0.0.0 // indirect
)

replace (
	usrsp.dev/contracts => ../../contracts
	usrsp.dev/libs/adapterkit => ../../libs/adapterkit
	usrsp.dev/libs/confine => ../../libs/confine
	usrsp.dev/libs/memif => ../../libs/memif
	usrsp.dev/libs/natsauth => ../../libs/natsauth
	usrsp.dev/libs/natstest => ../../libs/natstest
	usrsp.dev/libs/testkit => ../../libs/testkit
	usrsp.dev/libs/vpp => ../../libs/vpp
)
