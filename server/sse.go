package server

import (
	"encoding/json"
	"net/http"
)

// sse writes server-sent events in OpenAI's framing: "data: JSON\n\n" per
// chunk and "data: [DONE]\n\n" at the end.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error // the first write error: the client is gone
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering the stream
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: http.NewResponseController(w)}
	// Send the headers now: a stream whose first chunk waits for a token
	// would otherwise leave the client without a response (and its
	// X-Request-Id) while the request queues.
	e.err = e.rc.Flush()
	return e
}

// send writes one event with v as its JSON data and flushes it.
func (e *sse) send(v any) error {
	if e.err != nil {
		return e.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		e.err = err
		return err
	}
	return e.raw(b)
}

func (e *sse) raw(data []byte) error {
	if e.err != nil {
		return e.err
	}
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := e.w.Write(buf); err != nil {
		e.err = err
		return err
	}
	if err := e.rc.Flush(); err != nil {
		e.err = err
	}
	return e.err
}

// done ends the stream.
func (e *sse) done() error { return e.raw([]byte("[DONE]")) }

// fail sends an error as a last event (the status is already out).
func (e *sse) fail(err error) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = newAPIError(http.StatusInternalServerError, typeServer, "", "", "%v", err)
	}
	_ = e.send(struct {
		Error *apiError `json:"error"`
	}{ae})
}
