module github.com/resman-project/resman/go-example

go 1.24

require (
	github.com/resman-project/resman/bindings/go v0.0.0
	gopkg.in/yaml.v3 v3.0.1
)

replace github.com/resman-project/resman/bindings/go => ../bindings/go
