module github.com/resman-project/resman/go-example

go 1.24

require (
	github.com/prometheus/client_golang v1.23.2
	github.com/resman-project/resman/bindings/go v0.0.0
	github.com/resman-project/resman/bindings/go/prometheus v0.0.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.2 // indirect
	github.com/prometheus/common v0.66.1 // indirect
	github.com/prometheus/procfs v0.16.1 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/sys v0.35.0 // indirect
	google.golang.org/protobuf v1.36.8 // indirect
)

replace github.com/resman-project/resman/bindings/go => ../bindings/go

replace github.com/resman-project/resman/bindings/go/prometheus => ../bindings/go/prometheus
