package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultEndpoint is where files are downloaded from unless
// ROCMFORGE_HF_ENDPOINT or HF_ENDPOINT says otherwise.
const DefaultEndpoint = "https://huggingface.co"

// Hub resolves model references. The zero value looks nowhere locally and
// cannot download; use FromEnv, or fill the fields.
type Hub struct {
	// ModelDirs are searched first, in order, for a reference's file: as
	// DIR/OWNER/REPO/PATH, DIR/PATH and DIR/BASENAME.
	ModelDirs []string
	// CacheDir holds downloads as CacheDir/OWNER/REPO/PATH; "" disables
	// both the cache lookup and downloading.
	CacheDir string
	// Endpoint is the base URL files are fetched from, as
	// Endpoint/OWNER/REPO/resolve/main/PATH.
	Endpoint string
	// Client makes the requests; nil means http.DefaultClient's settings.
	Client *http.Client
	// Progress is where a download's progress bar goes; it is drawn only
	// when Progress is a terminal. nil draws nothing.
	Progress io.Writer
}

// FromEnv returns a Hub configured from the environment: ROCMFORGE_MODELS
// (colon-separated directories), the user cache directory
// (os.UserCacheDir()/rocmforge/models), and ROCMFORGE_HF_ENDPOINT or
// HF_ENDPOINT. Progress goes to os.Stderr.
func FromEnv() *Hub {
	h := &Hub{Endpoint: DefaultEndpoint, Progress: os.Stderr}
	for _, d := range filepath.SplitList(os.Getenv("ROCMFORGE_MODELS")) {
		if d != "" {
			h.ModelDirs = append(h.ModelDirs, d)
		}
	}
	if c, err := os.UserCacheDir(); err == nil {
		h.CacheDir = filepath.Join(c, "rocmforge", "models")
	}
	for _, k := range []string{"ROCMFORGE_HF_ENDPOINT", "HF_ENDPOINT"} {
		if v := os.Getenv(k); v != "" {
			h.Endpoint = v
			break
		}
	}
	return h
}

// Resolve returns the local path of a model: a path is returned as it is
// once it is known to name a file; an hf: reference is looked up with Find
// and otherwise downloaded.
func (h *Hub) Resolve(ctx context.Context, model string) (string, error) {
	if !IsRef(model) {
		st, err := os.Stat(model)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("model file %s does not exist", model)
		case err != nil:
			return "", fmt.Errorf("model file: %w", err)
		case st.IsDir():
			return "", fmt.Errorf("model file %s is a directory", model)
		}
		return model, nil
	}
	ref, err := ParseRef(model)
	if err != nil {
		return "", err
	}
	if p, ok := h.Find(ref); ok {
		return p, nil
	}
	return h.Download(ctx, ref)
}

// Find looks for ref's file in the model directories and then the cache,
// without using the network.
func (h *Hub) Find(ref Ref) (string, bool) {
	rel := filepath.FromSlash(ref.Path)
	var cands []string
	for _, d := range h.ModelDirs {
		cands = append(cands,
			filepath.Join(d, ref.Owner, ref.Repo, rel),
			filepath.Join(d, rel),
			filepath.Join(d, ref.Base()))
	}
	if h.CacheDir != "" {
		cands = append(cands, h.cachePath(ref))
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, true
		}
	}
	return "", false
}

func (h *Hub) cachePath(ref Ref) string {
	return filepath.Join(h.CacheDir, ref.Owner, ref.Repo, filepath.FromSlash(ref.Path))
}

// URL is where ref's file is downloaded from.
func (h *Hub) URL(ref Ref) string {
	segs := strings.Split(ref.Path, "/")
	for i, s := range segs {
		segs[i] = pathEscape(s)
	}
	return strings.TrimRight(h.Endpoint, "/") + "/" + pathEscape(ref.Owner) + "/" + pathEscape(ref.Repo) +
		"/resolve/main/" + strings.Join(segs, "/")
}

// pathEscape escapes one URL path segment, leaving the characters Hugging
// Face repository and file names use as they are.
func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~+@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
