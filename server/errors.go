package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rocmforge/rocmforge/engine"
)

// OpenAI's error types.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typeNotFound       = "not_found_error"
	typeServer         = "server_error"
	typeUnavailable    = "service_unavailable"
)

// apiError is an error as the OpenAI API reports it, with the HTTP status it
// goes out with.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
	// retryAfter, when > 0, is sent as a Retry-After header (seconds).
	retryAfter int
}

func (e *apiError) Error() string { return e.Message }

// invalid is a 400 invalid_request_error about the request field param
// ("" when it is about no one field).
func invalid(param, format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, typeInvalidRequest, param, "", format, args...)
}

func newAPIError(status int, typ, param, code, format string, args ...any) *apiError {
	e := &apiError{status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

// writeError sends err as an OpenAI error body. Errors other than *apiError
// are internal: they go out as a 500 server_error.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newAPIError(http.StatusInternalServerError, typeServer, "", "", "internal error: %v", err)
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	writeJSON(w, ae.status, struct {
		Error *apiError `json:"error"`
	}{ae})
}

// writeJSON sends v as a JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is out; an encoding error can only be a broken connection.
	_ = json.NewEncoder(w).Encode(v)
}

// engineError maps an error from the engine to what the client is told;
// promptParam names the request's prompt field ("messages" or "prompt").
func engineError(err error, promptParam string) *apiError {
	switch {
	case errors.Is(err, engine.ErrTooLong):
		return newAPIError(http.StatusBadRequest, typeInvalidRequest, promptParam, "context_length_exceeded", "%v", err)
	case errors.Is(err, engine.ErrInvalid):
		// The server's own checks should have caught it first.
		return newAPIError(http.StatusBadRequest, typeInvalidRequest, "", "", "%v", err)
	case errors.Is(err, engine.ErrQueueFull):
		e := newAPIError(http.StatusServiceUnavailable, typeUnavailable, "", "queue_full",
			"the server is busy (request queue full); retry later")
		e.retryAfter = 1
		return e
	case errors.Is(err, engine.ErrClosed):
		e := newAPIError(http.StatusServiceUnavailable, typeUnavailable, "", "shutting_down",
			"the server is shutting down")
		e.retryAfter = 5
		return e
	}
	return newAPIError(http.StatusInternalServerError, typeServer, "", "", "engine: %v", err)
}
