package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestQuietWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "loading", 1000)
	if b.Enabled() {
		t.Fatal("a bytes.Buffer counted as a terminal")
	}
	b.SetItems(3, "tensors")
	b.AddItem(500)
	b.Add(500)
	b.Finish()
	if buf.Len() != 0 {
		t.Fatalf("quiet bar wrote %q", buf.String())
	}
}

// fakeClock advances by step on every reading, so redraw throttling is
// exercised without sleeping.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestBarDraws(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	b := newBar(&buf, "loading", 4<<20, true)
	b.now = clk.now
	b.start = clk.t
	b.SetItems(4, "tensors")
	for range 4 {
		b.AddItem(1 << 20)
	}
	b.Finish()
	out := buf.String()
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("finished bar does not end its line: %q", out)
	}
	draws := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if len(draws) != 5 { // one per AddItem (a second apart) and one by Finish
		t.Fatalf("got %d draws, want 5: %q", len(draws), out)
	}
	last := draws[len(draws)-1]
	for _, want := range []string{"loading [", "100%", "4.0 MiB/4.0 MiB", "4/4 tensors", "/s"} {
		if !strings.Contains(last, want) {
			t.Errorf("final draw %q lacks %q", last, want)
		}
	}
	if !strings.Contains(draws[0], " 25% ") || !strings.Contains(draws[0], "1/4 tensors") {
		t.Errorf("first draw %q should show 25%% and 1/4 tensors", draws[0])
	}
	buf.Reset()
	b.Finish()
	if buf.Len() != 0 {
		t.Errorf("second Finish wrote %q", buf.String())
	}
}

func TestBarThrottles(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Millisecond}
	b := newBar(&buf, "dl", 0, true) // unknown total
	b.now = clk.now
	b.start, b.lastDraw = clk.t, clk.t // as if it had just drawn
	for range 1000 {
		b.Add(10)
	}
	b.Finish()
	n := strings.Count(buf.String(), "\r") - 1
	// 1000 updates 1 ms apart (each reading the clock once) redraw about
	// every 100 ms.
	if n < 5 || n > 15 {
		t.Errorf("1000 updates over about 1 s drew %d times, want about 10", n)
	}
	if !strings.Contains(buf.String(), "9.8 KiB ") {
		t.Errorf("unknown-total bar should show the bytes done: %q", buf.String())
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{637 << 20, "637.0 MiB"},
		{2201 << 20, "2.15 GiB"},
		{5 << 40, "5.00 TiB"},
	} {
		if got := FormatBytes(tc.n); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
