module usrsp.dev/services/pod-consumer

go 1.26.0

require (
	github.com/rs/zerolog v1.35.1
	github.com/stretchr/testify v1.12.1
	go.fd.io/govpp v0.13.0
	go.uber.org/goleak v1.3.0
	usrsp.dev/contracts v0.0.0
	usrsp.dev/libs/memif v0.0.0
	usrsp.dev/libs/vpp v0.0.0
)

require (
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/lunixbochs/struc v0.0.0-20200521075829-a4cb8d33dbbe // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	usrsp.dev/libs/ovsdpdk v0.0.0
	usrsp.dev/libs/testkit v0.0.0
)

replace (
	usrsp.dev/contracts => ../../contracts
	usrsp.dev/libs/memif => ../../libs/memif
	usrsp.dev/libs/natstest => ../../libs/natstest
	usrsp.dev/libs/ovsdpdk => ../../libs/ovsdpdk
	usrsp.dev/libs/testkit => ../../libs/testkit
	usrsp.dev/libs/vpp => ../../libs/vpp
)
