package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHF serves files the way huggingface.co's resolve URLs do: the resolve
// request answers 302 to a CDN path, carrying the sha256 in X-Linked-Etag
// (and a weak ETag that is not a checksum); the CDN answers with
// Content-Length, an md5-like ETag and Range support.
type fakeHF struct {
	t     *testing.T
	files map[string][]byte // "OWNER/REPO/PATH" -> content

	mu       sync.Mutex
	ranges   []string // Range header of every CDN request, "" for none
	cutOnce  int64    // if > 0, the first CDN response stops after this many bytes
	wrongSum bool     // advertise a wrong sha256
	noRange  bool     // ignore Range requests (always 200 with the whole file)
	onCDN    func()   // called on each CDN request, after the data is sent
}

func (s *fakeHF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if key, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		s.serveCDN(w, r, key)
		return
	}
	// /OWNER/REPO/resolve/main/PATH
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) != 5 || parts[2] != "resolve" || parts[3] != "main" {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	key := parts[0] + "/" + parts[1] + "/" + parts[4]
	data, ok := s.files[key]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	if s.wrongSum {
		hexSum = strings.Repeat("ab", 32)
	}
	w.Header().Set("X-Linked-Etag", `"`+hexSum+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
	w.Header().Set("ETag", `W/"1f-deadbeef"`)
	http.Redirect(w, r, "/cdn/"+key+"?X-Amz-Signature=x", http.StatusFound)
}

func (s *fakeHF) serveCDN(w http.ResponseWriter, r *http.Request, key string) {
	data, ok := s.files[key]
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cut := s.cutOnce
	s.cutOnce = 0
	onCDN := s.onCDN
	s.mu.Unlock()
	if s.noRange {
		r.Header.Del("Range")
	}
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`) // an md5, as S3 sends
	if cut > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	if onCDN != nil {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		onCDN()
		<-r.Context().Done()
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (s *fakeHF) seenRanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// setup starts a fake server holding one random file of an awkward size at
// hf:owner/repo/sub/model.gguf and returns a Hub that downloads from it
// into a fresh cache.
func setup(t *testing.T) (*fakeHF, *Hub, Ref, []byte) {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, 300_000+rng.IntN(1000))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	s := &fakeHF{t: t, files: map[string][]byte{"owner/repo/sub/model.gguf": data}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h := &Hub{CacheDir: t.TempDir(), Endpoint: srv.URL + "/", Client: srv.Client()}
	ref, err := ParseRef("hf:owner/repo/sub/model.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return s, h, ref, data
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d served", path, len(got), len(want))
	}
	if _, err := os.Stat(path + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.partial left behind (stat: %v)", path, err)
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		bad  bool
	}{
		{in: "hf:ggml-org/models/tinyllamas/stories260K.gguf", want: Ref{"ggml-org", "models", "tinyllamas/stories260K.gguf"}},
		{in: "hf:a/b/c.gguf", want: Ref{"a", "b", "c.gguf"}},
		{in: "hf:a/b", bad: true},
		{in: "hf:a//c.gguf", bad: true},
		{in: "hf:a/b/../c.gguf", bad: true},
		{in: "hf:a/b/x//c.gguf", bad: true},
		{in: "hf:a/b/c\\d.gguf", bad: true},
		{in: "models/x.gguf", bad: true},
	} {
		got, err := ParseRef(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRef(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestURL(t *testing.T) {
	h := &Hub{Endpoint: "https://huggingface.co/"}
	ref := Ref{"ggml-org", "models", "tinyllamas/stories 260K.gguf"}
	want := "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories%20260K.gguf"
	if got := h.URL(ref); got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

// deadEndpoint is the URL of a server that has stopped, so any request to
// it fails the way an offline machine's do.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

func TestFoundInModelDirsWithoutNetwork(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	byBase := filepath.Join(dir, "stories260K.gguf")
	byPath := filepath.Join(other, "tinyllamas", "x.gguf")
	byRepo := filepath.Join(other, "o", "r", "y.gguf")
	for _, p := range []string{byBase, byPath, byRepo} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("GGUF"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &Hub{ModelDirs: []string{other, dir}, CacheDir: t.TempDir(), Endpoint: deadEndpoint(t)}
	for _, tc := range []struct{ ref, want string }{
		{"hf:ggml-org/models/tinyllamas/stories260K.gguf", byBase},
		{"hf:ggml-org/models/tinyllamas/x.gguf", byPath},
		{"hf:o/r/y.gguf", byRepo},
	} {
		got, err := h.Resolve(context.Background(), tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("ROCMFORGE_MODELS", "/a:/b::/c")
	t.Setenv("ROCMFORGE_HF_ENDPOINT", "")
	t.Setenv("HF_ENDPOINT", "http://mirror.example")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	h := FromEnv()
	if strings.Join(h.ModelDirs, ",") != "/a,/b,/c" {
		t.Errorf("ModelDirs = %q", h.ModelDirs)
	}
	if h.Endpoint != "http://mirror.example" {
		t.Errorf("Endpoint = %q", h.Endpoint)
	}
	if h.CacheDir != "/cache/rocmforge/models" {
		t.Errorf("CacheDir = %q", h.CacheDir)
	}
	t.Setenv("ROCMFORGE_HF_ENDPOINT", "http://local")
	if h := FromEnv(); h.Endpoint != "http://local" {
		t.Errorf("ROCMFORGE_HF_ENDPOINT not preferred: %q", h.Endpoint)
	}
}

func TestFreshDownload(t *testing.T) {
	s, h, ref, data := setup(t)
	p, err := h.Resolve(context.Background(), ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(h.CacheDir, "owner", "repo", "sub", "model.gguf"); p != want {
		t.Errorf("path %q, want %q", p, want)
	}
	checkFile(t, p, data)
	// The second time it is found in the cache: no request.
	h.Endpoint = deadEndpoint(t)
	if p2, err := h.Resolve(context.Background(), ref.String()); err != nil || p2 != p {
		t.Errorf("second Resolve = %q, %v; want the cached %q", p2, err, p)
	}
	if r := s.seenRanges(); len(r) != 1 || r[0] != "" {
		t.Errorf("CDN requests with ranges %q, want one without a range", r)
	}
}

func TestResumeAfterTruncation(t *testing.T) {
	s, h, ref, data := setup(t)
	cut := int64(len(data) / 3)
	s.cutOnce = cut
	_, err := h.Download(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("truncated download: err = %v, want one saying to resume", err)
	}
	partial := h.cachePath(ref) + ".partial"
	st, err := os.Stat(partial)
	if err != nil {
		t.Fatalf("no partial file after a truncated download: %v", err)
	}
	if st.Size() == 0 || st.Size() > cut {
		t.Fatalf("partial file has %d bytes, want 1..%d", st.Size(), cut)
	}
	if _, err := os.Stat(h.cachePath(ref)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("final path exists after a truncated download (stat: %v)", err)
	}
	p, err := h.Download(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, data)
	r := s.seenRanges()
	if want := "bytes=" + strconv.Itoa(int(st.Size())) + "-"; len(r) != 2 || r[1] != want {
		t.Errorf("CDN ranges %q, want the second to be %q", r, want)
	}
}

func TestServerIgnoresRange(t *testing.T) {
	s, h, ref, data := setup(t)
	s.noRange = true
	partial := h.cachePath(ref) + ".partial"
	if err := os.MkdirAll(filepath.Dir(partial), 0o755); err != nil {
		t.Fatal(err)
	}
	// A partial file whose bytes are wrong: the whole file must replace it,
	// not be appended to it.
	if err := os.WriteFile(partial, bytes.Repeat([]byte{0xEE}, 1234), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := h.Download(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, data)
	if r := s.seenRanges(); len(r) != 1 || r[0] != "bytes=1234-" {
		t.Errorf("CDN ranges %q, want one request for bytes=1234-", r)
	}
}

func TestShaMismatchRejected(t *testing.T) {
	s, h, ref, _ := setup(t)
	s.wrongSum = true
	_, err := h.Download(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v, want a sha256 mismatch", err)
	}
	for _, p := range []string{h.cachePath(ref), h.cachePath(ref) + ".partial"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a checksum mismatch (stat: %v)", p, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	_, h, _, _ := setup(t)
	_, err := h.Resolve(context.Background(), "hf:owner/repo/missing.gguf")
	if err == nil {
		t.Fatal("no error for a missing file")
	}
	for _, want := range []string{"cannot download hf:owner/repo/missing.gguf", "404", "ROCMFORGE_MODELS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestOffline(t *testing.T) {
	h := &Hub{CacheDir: t.TempDir(), Endpoint: deadEndpoint(t)}
	_, err := h.Resolve(context.Background(), "hf:ggml-org/models/tinyllamas/stories260K.gguf")
	if err == nil {
		t.Fatal("no error with the server down")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "cannot download hf:ggml-org/models/tinyllamas/stories260K.gguf: ") ||
		!strings.HasSuffix(msg, "; set ROCMFORGE_MODELS to a directory holding the file") {
		t.Errorf("offline error = %q", msg)
	}
}

func TestCancelKeepsPartial(t *testing.T) {
	s, h, ref, data := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.onCDN = cancel // cancel once half the body is on the wire
	_, err := h.Download(ctx, ref)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(h.cachePath(ref) + ".partial"); err != nil {
		t.Errorf("partial file gone after a cancel: %v", err)
	}
	s.onCDN = nil
	p, err := h.Download(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, data)
}

func TestMissingPath(t *testing.T) {
	h := &Hub{}
	_, err := h.Resolve(context.Background(), filepath.Join(t.TempDir(), "nope.gguf"))
	if err == nil || !strings.Contains(err.Error(), "nope.gguf does not exist") {
		t.Errorf("err = %v, want one saying the file does not exist", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */500", -1, 500, true},
		{"bytes 5/10", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, size, ok := parseContentRange(tc.in)
		if ok != tc.ok || ok && (start != tc.start || size != tc.size) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, start, size, ok, tc.start, tc.size, tc.ok)
		}
	}
}
