package stage

import (
	"errors"
	"fmt"
	"strings"

	"github.com/datamill/datamill/pkg/serde"
)

// ErrDuplicate is returned by a Transform for a record it drops because the
// same content was already seen. Duplicates are counted, not dead-lettered.
var ErrDuplicate = errors.New("duplicate record")

// ErrDeadLetterFlood is why a runner with STAGE_DLQ_ON_FLOOD=stop stopped
// consuming: its dead-letter rate went above the threshold. Run never
// returns it.
var ErrDeadLetterFlood = errors.New("dead-letter rate above threshold")

// RejectError is a permanent error of one record with the reasons it was
// rejected for.
type RejectError struct {
	Reasons []string
}

func (e *RejectError) Error() string { return "rejected: " + strings.Join(e.Reasons, "; ") }

// Reject returns a permanent error carrying every reason a record was
// rejected for, e.g. Reject("age: not a number", "email: missing").
func Reject(reasons ...string) error {
	if len(reasons) == 0 {
		reasons = []string{"rejected"}
	}
	return &RejectError{Reasons: reasons}
}

// Permanent marks err as belonging to its record: the record is
// dead-lettered with err's message as the reason.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &RejectError{Reasons: []string{err.Error()}}
}

// Class is the class of an error.
type Class int

// The error classes.
const (
	// ClassTransient errors are retried and never dead-lettered.
	ClassTransient Class = iota
	// ClassPermanent errors dead-letter their record.
	ClassPermanent
	// ClassDuplicate errors drop their record and count it.
	ClassDuplicate
)

// Classify is the one place that decides how an error is handled.
func Classify(err error) Class {
	var rej *RejectError
	switch {
	case errors.As(err, &rej), errors.Is(err, serde.ErrMalformed):
		return ClassPermanent
	case errors.Is(err, ErrDuplicate):
		return ClassDuplicate
	}
	return ClassTransient
}

// reasons returns the dead-letter reasons for a permanent error.
func reasons(err error) []string {
	var rej *RejectError
	if errors.As(err, &rej) {
		return rej.Reasons
	}
	return []string{err.Error()}
}

// reasonCode shortens a reason to a bounded metric label: the text before
// the first colon ("age: out of range" → "age").
func reasonCode(reason string) string {
	code, _, _ := strings.Cut(reason, ":")
	code = strings.TrimSpace(code)
	if len(code) > 40 {
		code = code[:40]
	}
	return code
}

// transientError wraps the last transient error of a batch that ran out of
// retries.
type transientError struct {
	attempts int
	err      error
}

func (e *transientError) Error() string {
	return fmt.Sprintf("after %d attempts: %v", e.attempts, e.err)
}

func (e *transientError) Unwrap() error { return e.err }
