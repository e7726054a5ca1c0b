package resman_test

import (
	"errors"
	"fmt"
	"os"

	resman "github.com/resman-project/resman/bindings/go"
)

// The README's Go quick-start, compiled and run by go test.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "resman-example-")
	defer os.RemoveAll(dir)

	db, err := resman.Open(dir, resman.DefaultOptions("users"))
	if err != nil {
		panic(err)
	}
	users := db.CF("users")
	if err := users.Put([]byte("alice"), []byte("admin"), nil); err != nil {
		panic(err)
	}
	v, err := users.Get([]byte("alice"), nil)
	fmt.Println(string(v), err)
	_, err = users.Get([]byte("bob"), nil)
	fmt.Println(errors.Is(err, resman.ErrNotFound))

	if err := db.Close(); err != nil {
		panic(err)
	}
	_, err = users.Get([]byte("alice"), nil)
	fmt.Println(errors.Is(err, resman.ErrClosed))
	// Output:
	// admin <nil>
	// true
	// true
}
