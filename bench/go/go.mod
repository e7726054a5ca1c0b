module github.com/resman-project/resman/bench/go

go 1.24

require (
	github.com/linxGnu/grocksdb v1.11.1
	github.com/resman-project/resman/bindings/go v0.0.0
)

replace github.com/resman-project/resman/bindings/go => ../../bindings/go
