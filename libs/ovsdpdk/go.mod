module usrsp.dev/libs/ovsdpdk

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	usrsp.dev/libs/testkit v0.0.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace usrsp.dev/libs/testkit => ../testkit
