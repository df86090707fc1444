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
	buf []byte // one event's framing, reused
	err error  // the first write error: the client is gone
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

// send writes one event with v as its JSON data (v's encoding when it is a
// *tokenChunk) and flushes it.
func (e *sse) send(v any) error {
	if e.write(v) != nil {
		return e.err
	}
	return e.flush()
}

// write writes one event without flushing it: a stream with more events
// ready writes them all and flushes once.
func (e *sse) write(v any) error {
	if e.err != nil {
		return e.err
	}
	var data []byte
	switch c := v.(type) {
	case *tokenChunk:
		data = c.buf
	default:
		b, err := json.Marshal(v)
		if err != nil {
			e.err = err
			return err
		}
		data = b
	}
	return e.writeData(data)
}

func (e *sse) writeData(data []byte) error {
	e.buf = append(e.buf[:0], "data: "...)
	e.buf = append(e.buf, data...)
	e.buf = append(e.buf, "\n\n"...)
	if _, err := e.w.Write(e.buf); err != nil {
		e.err = err
	}
	return e.err
}

// flush sends what was written.
func (e *sse) flush() error {
	if e.err != nil {
		return e.err
	}
	if err := e.rc.Flush(); err != nil {
		e.err = err
	}
	return e.err
}

// done ends the stream.
func (e *sse) done() error {
	if e.err != nil || e.writeData([]byte("[DONE]")) != nil {
		return e.err
	}
	return e.flush()
}

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
