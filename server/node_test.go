package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/engine"
)

// TestNodeClient runs testdata/node/client.mjs, which drives the official
// openai npm package against the server. It runs when ROCMFORGE_NODE_TEST=1
// (as .ci/run sets after `npm ci` there); then node and node_modules must
// be present.
func TestNodeClient(t *testing.T) {
	if os.Getenv("ROCMFORGE_NODE_TEST") != "1" {
		t.Skip("set ROCMFORGE_NODE_TEST=1 (after npm ci in server/testdata/node) to run the openai npm client")
	}
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Fatalf("ROCMFORGE_NODE_TEST=1 but the openai package is not installed (run npm ci in %s): %v", dir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("ROCMFORGE_NODE_TEST=1 but node is not on PATH: %v", err)
	}
	const key = "node-test-key"
	rs := newRealServer(t, engine.Config{}, Config{APIKey: key})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ROCMFORGE_BASE_URL="+rs.url, "ROCMFORGE_MODEL="+modelID, "ROCMFORGE_API_KEY="+key)
	out, err := cmd.CombinedOutput()
	t.Logf("node client.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("node client.mjs: %v", err)
	}
}
