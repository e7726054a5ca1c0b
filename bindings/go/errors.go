package resman

/*
#include "resman.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"
)

// Code is a resman result code (rm_result). The numbers are stable.
type Code int32

// The result codes, as in include/resman.h. tests/codes.rs fails unless every code has exactly
// one constant here and every error code one sentinel below.
const (
	CodeOK               Code = C.RM_OK
	CodeNullPointer      Code = C.RM_ERR_NULL_POINTER
	CodeInvalidArgument  Code = C.RM_ERR_INVALID_ARGUMENT
	CodeInvalidUTF8      Code = C.RM_ERR_INVALID_UTF8
	CodeInvalidHandle    Code = C.RM_ERR_INVALID_HANDLE
	CodeStaleHandle      Code = C.RM_ERR_STALE_HANDLE
	CodeWrongKind        Code = C.RM_ERR_WRONG_KIND
	CodeForeignHandle    Code = C.RM_ERR_FOREIGN_HANDLE
	CodeClosed           Code = C.RM_ERR_CLOSED
	CodeAlreadyClosed    Code = C.RM_ERR_ALREADY_CLOSED
	CodeNotFound         Code = C.RM_ERR_NOT_FOUND
	CodeBufferTooSmall   Code = C.RM_ERR_BUFFER_TOO_SMALL
	CodeDuplicateName    Code = C.RM_ERR_DUPLICATE_NAME
	CodeDependencyClosed Code = C.RM_ERR_DEPENDENCY_CLOSED
	CodeCycle            Code = C.RM_ERR_CYCLE
	CodeHasDependents    Code = C.RM_ERR_HAS_DEPENDENTS
	CodeOwnedResource    Code = C.RM_ERR_OWNED_RESOURCE
	CodeTimeout          Code = C.RM_ERR_TIMEOUT
	CodeCloseFailed      Code = C.RM_ERR_CLOSE_FAILED
	CodeCleanupFailed    Code = C.RM_ERR_CLEANUP_FAILED
	CodeLocked           Code = C.RM_ERR_LOCKED
	CodeIO               Code = C.RM_ERR_IO
	CodeCorruption       Code = C.RM_ERR_CORRUPTION
	CodeRocksDB          Code = C.RM_ERR_ROCKSDB
	CodePanic            Code = C.RM_ERR_PANIC
	CodeCapacity         Code = C.RM_ERR_CAPACITY
	CodeWrongDB          Code = C.RM_ERR_WRONG_DB
	CodeIteratorNotValid Code = C.RM_ERR_ITERATOR_NOT_VALID
)

// String is the code's static description ("closed", "not found", ...).
func (c Code) String() string {
	return C.GoString(C.rm_result_str(C.int32_t(c)))
}

// Error is every error the binding returns from resman. Compare with errors.Is against the
// sentinels (ErrClosed, ErrNotFound, ...), or read Code.
type Error struct {
	Code Code
	// Message is resman's detail for this call ("" for a sentinel).
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "resman: " + e.Code.String()
	}
	return fmt.Sprintf("resman: %s: %s", e.Code, e.Message)
}

// Is matches a sentinel of the same code, so errors.Is(err, ErrClosed) works on any error
// resman returned. It allocates nothing when target is an *Error (a sentinel), so a miss
// tested with errors.Is(err, ErrNotFound) stays allocation-free.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		if t = asError(target); t == nil {
			return false
		}
	}
	return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// asError is errors.As for a target that is not an *Error itself (it allocates: kept out of
// Is so that Is's common case does not; inlined, its variable would move Is's to the heap).
//
//go:noinline
func asError(err error) *Error {
	var t *Error
	if errors.As(err, &t) {
		return t
	}
	return nil
}

// Sentinels for errors.Is, one per error code (ErrX for CodeX; checked by tests/codes.rs).
// They are shared values: never modify them (nor any *Error the binding returns).
var (
	ErrNullPointer      = &Error{Code: CodeNullPointer}
	ErrInvalidArgument  = &Error{Code: CodeInvalidArgument}
	ErrInvalidUTF8      = &Error{Code: CodeInvalidUTF8}
	ErrInvalidHandle    = &Error{Code: CodeInvalidHandle}
	ErrStaleHandle      = &Error{Code: CodeStaleHandle}
	ErrWrongKind        = &Error{Code: CodeWrongKind}
	ErrForeignHandle    = &Error{Code: CodeForeignHandle}
	ErrClosed           = &Error{Code: CodeClosed}
	ErrAlreadyClosed    = &Error{Code: CodeAlreadyClosed}
	ErrNotFound         = &Error{Code: CodeNotFound}
	ErrBufferTooSmall   = &Error{Code: CodeBufferTooSmall}
	ErrDuplicateName    = &Error{Code: CodeDuplicateName}
	ErrDependencyClosed = &Error{Code: CodeDependencyClosed}
	ErrCycle            = &Error{Code: CodeCycle}
	ErrHasDependents    = &Error{Code: CodeHasDependents}
	ErrOwnedResource    = &Error{Code: CodeOwnedResource}
	ErrTimeout          = &Error{Code: CodeTimeout}
	ErrCloseFailed      = &Error{Code: CodeCloseFailed}
	ErrCleanupFailed    = &Error{Code: CodeCleanupFailed}
	ErrLocked           = &Error{Code: CodeLocked}
	ErrIO               = &Error{Code: CodeIO}
	ErrCorruption       = &Error{Code: CodeCorruption}
	ErrRocksDB          = &Error{Code: CodeRocksDB}
	ErrPanic            = &Error{Code: CodePanic}
	ErrCapacity         = &Error{Code: CodeCapacity}
	ErrWrongDB          = &Error{Code: CodeWrongDB}
	ErrIteratorNotValid = &Error{Code: CodeIteratorNotValid}
)

// cerr is the rm_error a call fills; it lives on the caller's stack (Go memory without Go
// pointers, which cgo allows passing).
type cerr = C.rm_error

// errKeyNotFound is the error of every read of an absent key (Get, GetAppend): resman's
// RM_ERR_NOT_FOUND always carries the message "key not found", so one shared value stands for
// all of them and a miss allocates nothing. errors.Is(err, ErrNotFound) matches it, and
// errors.As finds an *Error with Code CodeNotFound and that Message, as for any other error;
// like every *Error the binding returns, it must not be modified.
var errKeyNotFound = &Error{Code: CodeNotFound, Message: keyNotFound}

const keyNotFound = "key not found"

// check turns a result code and its detail into an error (nil for RM_OK).
func check(rc C.rm_result, e *cerr) error {
	if rc == C.RM_OK {
		return nil
	}
	// Read the message in Go (no cgo call), so e does not escape: a caller's rm_error stays
	// on its stack and the data path allocates nothing.
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&e.message[0])), len(e.message))
	if n := bytes.IndexByte(raw, 0); n >= 0 {
		raw = raw[:n]
	}
	if rc == C.RM_ERR_NOT_FOUND && string(raw) == keyNotFound {
		return errKeyNotFound // the comparison does not allocate
	}
	return &Error{Code: Code(rc), Message: string(raw)}
}
