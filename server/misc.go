package server

import (
	"net/http"
)

// modelObject is OpenAI's model object.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// ContextLength is an extension (as vLLM's max_model_len).
	ContextLength int `json:"context_length"`
}

func (m *Model) object() modelObject {
	return modelObject{ID: m.ID, Object: "model", Created: m.Created.Unix(), OwnedBy: "rocmforge", ContextLength: m.ContextLength}
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request, m *Model) {
	writeJSON(w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{m.object()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request, m *Model) {
	if name := r.PathValue("model"); name != m.ID {
		writeError(w, newAPIError(http.StatusNotFound, typeInvalidRequest, "model", "model_not_found",
			"the model %q does not exist; this server serves %q", name, m.ID))
		return
	}
	writeJSON(w, http.StatusOK, m.object())
}

// handleTokenize answers {"content": TEXT, "add_special": BOOL,
// "parse_special": BOOL} with {"tokens": [...]}. add_special defaults to
// true, parse_special to true (as for prompts).
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request, m *Model) {
	var req struct {
		Content      *string `json:"content"`
		AddSpecial   *bool   `json:"add_special"`
		ParseSpecial *bool   `json:"parse_special"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Content == nil {
		writeError(w, invalid("content", "content is missing: want the text to tokenize"))
		return
	}
	add, parse := true, true
	if req.AddSpecial != nil {
		add = *req.AddSpecial
	}
	if req.ParseSpecial != nil {
		parse = *req.ParseSpecial
	}
	ids, err := m.Tokenizer.Encode(*req.Content, add, parse)
	if err != nil {
		writeError(w, err)
		return
	}
	if ids == nil {
		ids = []int32{}
	}
	writeJSON(w, http.StatusOK, struct {
		Tokens []int32 `json:"tokens"`
	}{ids})
}

// handleDetokenize answers {"tokens": [...]} with {"content": TEXT}.
func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request, m *Model) {
	var req struct {
		Tokens []int64 `json:"tokens"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	n := m.Tokenizer.NVocab()
	ids := make([]int32, len(req.Tokens))
	for i, t := range req.Tokens {
		if t < 0 || t >= int64(n) {
			writeError(w, invalid("tokens", "tokens[%d] is %d, outside the vocabulary [0, %d)", i, t, n))
			return
		}
		ids[i] = int32(t)
	}
	writeJSON(w, http.StatusOK, struct {
		Content string `json:"content"`
	}{m.Tokenizer.Decode(ids)})
}
