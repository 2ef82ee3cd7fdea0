module github.com/livegrid/livegrid

go 1.26.8

require (
	github.com/asticode/go-astiav v0.16.0
	go.uber.org/goleak v1.3.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/asticode/go-astikit v0.42.0 // indirect
	github.com/kr/text v0.2.0 // indirect
)
