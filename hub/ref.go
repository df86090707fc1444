// Package hub turns a model reference into a local GGUF file: a plain path,
// or a Hugging Face name hf:OWNER/REPO/PATH that is looked up in local model
// directories and the user cache, and otherwise downloaded once into the
// cache (resumably, with its size and sha256 checked).
package hub

import (
	"fmt"
	"path"
	"strings"
)

// Scheme is the prefix of a Hugging Face model reference.
const Scheme = "hf:"

// Ref names a file in a Hugging Face repository.
type Ref struct {
	Owner string // "ggml-org"
	Repo  string // "models"
	Path  string // path inside the repository: "tinyllamas/stories260K.gguf"
}

// IsRef reports whether s is a Hugging Face reference (starts with "hf:")
// rather than a path.
func IsRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseRef parses "hf:OWNER/REPO/PATH". The path must be relative and clean:
// no empty, "." or ".." segments, no backslashes.
func ParseRef(s string) (Ref, error) {
	if !IsRef(s) {
		return Ref{}, fmt.Errorf("model reference %q: want hf:OWNER/REPO/PATH", s)
	}
	parts := strings.SplitN(strings.TrimPrefix(s, Scheme), "/", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Ref{}, fmt.Errorf("model reference %q: want hf:OWNER/REPO/PATH (e.g. hf:ggml-org/models/tinyllamas/stories260K.gguf)", s)
	}
	r := Ref{Owner: parts[0], Repo: parts[1], Path: parts[2]}
	for _, seg := range append([]string{r.Owner, r.Repo}, strings.Split(r.Path, "/")...) {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
			return Ref{}, fmt.Errorf("model reference %q: bad path segment %q", s, seg)
		}
	}
	return r, nil
}

// String formats r as "hf:OWNER/REPO/PATH".
func (r Ref) String() string { return Scheme + r.Owner + "/" + r.Repo + "/" + r.Path }

// Base is the file's base name ("stories260K.gguf").
func (r Ref) Base() string { return path.Base(r.Path) }
