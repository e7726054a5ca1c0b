module github.com/resman-project/resman/bindings/go

go 1.24
