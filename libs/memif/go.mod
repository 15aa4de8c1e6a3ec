module usrsp.dev/libs/memif

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.49.0
	usrsp.dev/contracts v0.0.0
	usrsp.dev/libs/testkit v0.0.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace usrsp.dev/libs/testkit => ../testkit

replace usrsp.dev/contracts => ../../contracts
