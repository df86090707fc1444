package server

import (
	"container/list"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rocmforge/rocmforge/engine"
)

// entry is one HTTP request known to /v1/requests/{id}: its engine requests
// (one per choice) and, once finished, their last statuses.
type entry struct {
	id        string
	kind      string // "chat.completion" or "text_completion"
	model     string
	created   time.Time
	engineIDs []string

	// Set by finish, under the registry's lock.
	final []engine.Status
	elem  *list.Element
}

// registry maps request ids to entries. Running requests are always there;
// of the finished ones, the last max.
type registry struct {
	mu       sync.Mutex
	byID     map[string]*entry
	finished *list.List // of *entry, oldest first
	max      int
}

func newRegistry(max int) *registry {
	return &registry{byID: make(map[string]*entry), finished: list.New(), max: max}
}

func (g *registry) add(id, kind string, m *Model, engineIDs []string) *entry {
	e := &entry{id: id, kind: kind, model: m.ID, created: time.Now(), engineIDs: engineIDs}
	g.mu.Lock()
	g.byID[id] = e
	g.mu.Unlock()
	return e
}

// finish records the final statuses of e's engine requests (the engine may
// forget them) and retires e into the finished list.
func (g *registry) finish(e *entry, eng Engine) {
	final := make([]engine.Status, len(e.engineIDs))
	for i, id := range e.engineIDs {
		st, ok := eng.Status(id)
		if !ok {
			st = engine.Status{ID: id, State: "unknown"}
		}
		final[i] = st
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e.final = final
	e.elem = g.finished.PushBack(e)
	for g.finished.Len() > g.max {
		old := g.finished.Remove(g.finished.Front()).(*entry)
		delete(g.byID, old.id)
	}
}

// get returns the entry of id and its engine statuses: the final ones, or
// the engine's current ones while it runs.
func (g *registry) get(id string, eng Engine) (*entry, []engine.Status, bool) {
	g.mu.Lock()
	e, ok := g.byID[id]
	var final []engine.Status
	if ok {
		final = e.final
	}
	g.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	if final != nil {
		return e, final, true
	}
	sts := make([]engine.Status, len(e.engineIDs))
	for i, eid := range e.engineIDs {
		st, ok := eng.Status(eid)
		if !ok {
			st = engine.Status{ID: eid, State: "unknown"}
		}
		sts[i] = st
	}
	return e, sts, true
}

// requestStatus is the body of GET /v1/requests/{id}.
type requestStatus struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	// Kind is the object the request answers with ("chat.completion",
	// "text_completion"); empty for an engine request asked for by its own id.
	Kind    string `json:"kind,omitempty"`
	Model   string `json:"model,omitempty"`
	State   string `json:"state"`
	Created int64  `json:"created"`
	// Token counts summed over the choices.
	PromptTokens    int            `json:"prompt_tokens"`
	GeneratedTokens int            `json:"generated_tokens"`
	CachedTokens    int            `json:"cached_tokens"`
	Choices         []choiceStatus `json:"choices"`
}

// choiceStatus is the state of one choice's engine request.
type choiceStatus struct {
	Index           int    `json:"index"`
	EngineID        string `json:"engine_id"`
	State           string `json:"state"`
	PromptTokens    int    `json:"prompt_tokens"`
	GeneratedTokens int    `json:"generated_tokens"`
	CachedTokens    int    `json:"cached_tokens"`
	FinishReason    string `json:"finish_reason,omitempty"`
	Error           string `json:"error,omitempty"`
	// Timings in milliseconds from the engine's receipt of the request;
	// absent until they happen.
	TimeToFirstTokenMS *float64 `json:"time_to_first_token_ms,omitempty"`
	DurationMS         *float64 `json:"duration_ms,omitempty"`
}

func statusView(id, kind, model string, created time.Time, sts []engine.Status) *requestStatus {
	rs := &requestStatus{ID: id, Object: "request.status", Kind: kind, Model: model, Created: created.Unix(),
		Choices: make([]choiceStatus, len(sts))}
	for i, st := range sts {
		cs := choiceStatus{Index: i, EngineID: st.ID, State: st.State, PromptTokens: st.PromptTokens,
			GeneratedTokens: st.GeneratedTokens, CachedTokens: st.CachedTokens, FinishReason: st.FinishReason, Error: st.Error}
		if !st.FirstToken.IsZero() && !st.Created.IsZero() {
			ms := float64(st.FirstToken.Sub(st.Created)) / float64(time.Millisecond)
			cs.TimeToFirstTokenMS = &ms
		}
		if !st.Finished.IsZero() && !st.Created.IsZero() {
			ms := float64(st.Finished.Sub(st.Created)) / float64(time.Millisecond)
			cs.DurationMS = &ms
		}
		rs.PromptTokens += st.PromptTokens
		rs.GeneratedTokens += st.GeneratedTokens
		rs.CachedTokens += st.CachedTokens
		rs.Choices[i] = cs
	}
	rs.State = overallState(sts)
	return rs
}

// overallState sums up the choices' states: the least advanced one while
// any runs, else the worst way one ended.
func overallState(sts []engine.Status) string {
	rank := map[string]int{engine.StateQueued: 0, engine.StateRunning: 1}
	state, best := "", 99
	for _, st := range sts {
		if r, ok := rank[st.State]; ok && r < best {
			state, best = st.State, r
		}
	}
	if state != "" {
		return state
	}
	for _, bad := range []string{engine.StateFailed, engine.StateCancelled, "unknown"} {
		for _, st := range sts {
			if st.State == bad {
				return bad
			}
		}
	}
	if len(sts) > 0 {
		return sts[0].State
	}
	return "unknown"
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, m *Model) {
	rs, ok := s.lookup(r.PathValue("id"), m)
	if !ok {
		writeError(w, unknownRequest(r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, rs)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, m *Model) {
	id := r.PathValue("id")
	ids := []string{id}
	if e, _, ok := s.requests.get(id, m.Engine); ok {
		ids = e.engineIDs
	}
	found := false
	for _, eid := range ids {
		err := m.Engine.Cancel(eid)
		switch {
		case err == nil:
			found = true
		case errors.Is(err, engine.ErrNotFound):
		default:
			writeError(w, engineError(err, ""))
			return
		}
	}
	rs, ok := s.lookup(id, m)
	if !ok && !found {
		writeError(w, unknownRequest(id))
		return
	}
	if !ok {
		rs = &requestStatus{ID: id, Object: "request.status", State: "cancelled"}
	}
	writeJSON(w, http.StatusOK, rs)
}

// lookup returns the status of a request by the server's id or, failing
// that, an engine request by the engine's id.
func (s *Server) lookup(id string, m *Model) (*requestStatus, bool) {
	if e, sts, ok := s.requests.get(id, m.Engine); ok {
		return statusView(e.id, e.kind, e.model, e.created, sts), true
	}
	st, ok := m.Engine.Status(id)
	if !ok {
		return nil, false
	}
	return statusView(id, "", m.ID, st.Created, []engine.Status{st}), true
}

func unknownRequest(id string) *apiError {
	return newAPIError(http.StatusNotFound, typeNotFound, "id", "request_not_found", "no request with id %q", id)
}
