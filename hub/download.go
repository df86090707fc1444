package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rocmforge/rocmforge/progress"
)

// maxRedirects bounds the redirect chain (Hugging Face sends one, to its CDN).
const maxRedirects = 10

// errRestart asks Download to discard the partial file and fetch again from
// the start.
var errRestart = errors.New("restart download")

// Download fetches ref's file into the cache and returns its path. The bytes
// go to PATH.partial first, which a later call resumes with a Range request;
// the file is renamed into place only once its size matches the server's and
// its sha256 matches the one Hugging Face sends for LFS files (X-Linked-Etag
// or ETag), when it sends one. A download cut short keeps the partial file;
// one with the wrong checksum removes it.
func (h *Hub) Download(ctx context.Context, ref Ref) (string, error) {
	if h.CacheDir == "" {
		return "", fmt.Errorf("cannot download %s: no cache directory; set ROCMFORGE_MODELS to a directory holding the file", ref)
	}
	dest := h.cachePath(ref)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", fmt.Errorf("cannot download %s: %w", ref, err)
	}
	f, err := os.OpenFile(dest+".partial", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot download %s: %w", ref, err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return "", fmt.Errorf("cannot download %s: %s is in use (another download of it running?): %w", ref, f.Name(), err)
	}
	// A concurrent download may have finished the file before we got the lock.
	if st, err := os.Stat(dest); err == nil && st.Mode().IsRegular() {
		return dest, nil
	}
	err = h.fetch(ctx, ref, f)
	if errors.Is(err, errRestart) {
		if err = f.Truncate(0); err == nil {
			err = h.fetch(ctx, ref, f)
		}
	}
	if errors.Is(err, errRestart) {
		err = fmt.Errorf("cannot download %s: the server keeps refusing the byte range", ref)
	}
	if err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("cannot download %s: %w", ref, err)
	}
	if err := os.Rename(f.Name(), dest); err != nil {
		return "", fmt.Errorf("cannot download %s: %w", ref, err)
	}
	return dest, nil
}

// fetch appends the rest of ref's file to f (which holds the bytes fetched
// so far) and checks the whole. It returns errRestart when f must be
// truncated and the fetch repeated.
func (h *Hub) fetch(ctx context.Context, ref Ref, f *os.File) error {
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("cannot download %s: %w", ref, err)
	}
	sum := sha256.New()
	if have > 0 {
		if _, err := io.Copy(sum, io.NewSectionReader(f, 0, have)); err != nil {
			return fmt.Errorf("cannot download %s: reading %s: %w", ref, f.Name(), err)
		}
	}
	url := h.URL(ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("cannot download %s: %w", ref, err)
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	// Hugging Face names an LFS file's sha256 on the resolve response, which
	// is a redirect; the CDN's own ETag is something else. So the headers of
	// every response in the chain are looked at, the first one first.
	var wantSum string
	client := http.Client{}
	if h.Client != nil {
		client = *h.Client
	}
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if wantSum == "" && r.Response != nil {
			wantSum = sha256FromHeader(r.Response.Header)
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download of %s stopped: %w", ref, ctx.Err())
		}
		return fmt.Errorf("cannot download %s: %w; set ROCMFORGE_MODELS to a directory holding the file", ref, err)
	}
	defer resp.Body.Close()
	if wantSum == "" {
		wantSum = sha256FromHeader(resp.Header)
	}

	total := int64(-1) // the whole file's size, when known
	switch resp.StatusCode {
	case http.StatusOK: // the whole file: no Range sent, or the server ignored it
		if have > 0 {
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("cannot download %s: %w", ref, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("cannot download %s: %w", ref, err)
			}
			have = 0
			sum.Reset()
		}
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return errRestart
		}
		total = size
		if resp.ContentLength >= 0 && size >= 0 && have+resp.ContentLength != size {
			return fmt.Errorf("cannot download %s: Content-Range %q and Content-Length %d disagree",
				ref, resp.Header.Get("Content-Range"), resp.ContentLength)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file is as long as the file, or longer (the file has
		// changed): either check it as it is, or start again.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == have {
			return finish(ref, f, have, have, sum, wantSum)
		}
		return errRestart
	default:
		return fmt.Errorf("cannot download %s: GET %s: %s%s", ref, url, resp.Status, statusHint(resp.StatusCode))
	}

	bar := progress.New(h.Progress, "downloading "+ref.Base(), total)
	bar.SetDone(have)
	n, err := io.Copy(io.MultiWriter(f, sum, barWriter{bar}), resp.Body)
	bar.Finish()
	got := have + n
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("download of %s stopped after %d bytes (run again to resume): %w", ref, got, err)
	}
	return finish(ref, f, got, total, sum, wantSum)
}

// finish checks a fully received file: got bytes against the expected total
// (-1: unknown) and its sha256 against want ("" : none given). A file with
// the wrong checksum or too many bytes is discarded.
func finish(ref Ref, f *os.File, got, total int64, sum hash.Hash, want string) error {
	if total >= 0 && got < total {
		return fmt.Errorf("download of %s stopped after %d of %d bytes (run again to resume)", ref, got, total)
	}
	if total >= 0 && got > total {
		os.Remove(f.Name())
		return fmt.Errorf("cannot download %s: got %d bytes but the server said %d; partial file removed", ref, got, total)
	}
	if want != "" {
		if h := hex.EncodeToString(sum.Sum(nil)); h != want {
			os.Remove(f.Name())
			return fmt.Errorf("cannot download %s: sha256 of the %d bytes received is %s but the server says %s; partial file removed", ref, got, h, want)
		}
	}
	return nil
}

type barWriter struct{ b *progress.Bar }

func (w barWriter) Write(p []byte) (int, error) { w.b.Add(int64(len(p))); return len(p), nil }

// sha256FromHeader returns the sha256 in X-Linked-Etag or ETag (Hugging Face
// quotes the hex digest of LFS files), or "" when neither holds one.
func sha256FromHeader(h http.Header) string {
	for _, k := range []string{"X-Linked-Etag", "Etag"} {
		v := strings.TrimPrefix(strings.TrimSpace(h.Get(k)), "W/")
		v = strings.ToLower(strings.Trim(v, `"`))
		if len(v) == 64 && isHex(v) {
			return v
		}
	}
	return ""
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseContentRange parses "bytes START-END/SIZE" or "bytes */SIZE"; start
// is -1 for the latter and size -1 for an unknown ("*") size.
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		v, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || v < 0 {
			return 0, 0, false
		}
		size = v
	}
	if rng == "*" {
		return -1, size, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	return start, size, true
}

func statusHint(code int) string {
	switch code {
	case http.StatusNotFound:
		return " (check the owner, repository and file path; or set ROCMFORGE_MODELS to a directory holding the file)"
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (the repository may be private or gated, or may not exist)"
	}
	return ""
}
