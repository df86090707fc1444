// Package progress draws a one-line progress bar on a terminal, for model
// downloads and loads. When its writer is not a terminal (a pipe, a file, a
// test's buffer) a Bar draws nothing, so logs and captured output stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// redrawEvery limits how often the bar is redrawn: more often than the eye
// can follow only costs write calls.
const redrawEvery = 100 * time.Millisecond

// barWidth is the number of cells between the brackets.
const barWidth = 30

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar over a number of bytes and, optionally, a number of
// items (tensors, files). Its methods are safe for concurrent use. A Bar whose
// writer is not a terminal does nothing.
type Bar struct {
	mu         sync.Mutex
	w          io.Writer
	on         bool
	label      string
	total      int64 // bytes; <= 0 when unknown
	done       int64
	items      int
	totalItems int
	itemName   string
	start      time.Time
	lastDraw   time.Time
	lastLen    int
	finished   bool
	now        func() time.Time
}

// New returns a bar labelled label over total bytes (0 or less when the
// total is unknown) that draws on w if w is a terminal.
func New(w io.Writer, label string, total int64) *Bar {
	return newBar(w, label, total, IsTerminal(w))
}

func newBar(w io.Writer, label string, total int64, on bool) *Bar {
	b := &Bar{w: w, on: on, label: label, total: total, now: time.Now}
	b.start = b.now()
	return b
}

// Enabled reports whether the bar draws anything.
func (b *Bar) Enabled() bool { return b.on }

// SetItems makes the bar also count items: n of them in all, called name
// ("tensors").
func (b *Bar) SetItems(n int, name string) {
	b.mu.Lock()
	b.totalItems, b.itemName = n, name
	b.mu.Unlock()
}

// Add records n more bytes done.
func (b *Bar) Add(n int64) { b.update(n, 0) }

// AddItem records one more item of n bytes done.
func (b *Bar) AddItem(n int64) { b.update(n, 1) }

// SetDone sets the bytes done so far (when resuming a download, say).
func (b *Bar) SetDone(n int64) {
	b.mu.Lock()
	b.done = n
	b.mu.Unlock()
}

func (b *Bar) update(n int64, items int) {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.items += items
	if t := b.now(); t.Sub(b.lastDraw) >= redrawEvery {
		b.lastDraw = t
		b.draw()
	}
}

// Finish draws the final state and ends the line. Calling it again does
// nothing.
func (b *Bar) Finish() {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.draw()
	fmt.Fprintln(b.w)
}

// draw writes the bar over the previous one; b.mu is held.
func (b *Bar) draw() {
	line := b.render()
	pad := ""
	if n := b.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n) // erase the tail of a longer previous line
	}
	b.lastLen = len(line)
	fmt.Fprintf(b.w, "\r%s%s", line, pad)
}

// render formats the current state as one line without a carriage return.
func (b *Bar) render() string {
	var sb strings.Builder
	sb.WriteString(b.label)
	elapsed := b.now().Sub(b.start).Seconds()
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		frac = min(max(frac, 0), 1)
		full := int(frac * barWidth)
		sb.WriteString(" [")
		sb.WriteString(strings.Repeat("=", full))
		if full < barWidth {
			sb.WriteString(">")
			sb.WriteString(strings.Repeat(" ", barWidth-full-1))
		}
		fmt.Fprintf(&sb, "] %3.0f%% %s/%s", frac*100, FormatBytes(b.done), FormatBytes(b.total))
	} else {
		fmt.Fprintf(&sb, " %s", FormatBytes(b.done))
	}
	if b.totalItems > 0 {
		fmt.Fprintf(&sb, " %d/%d %s", b.items, b.totalItems, b.itemName)
	}
	if elapsed > 0 && b.done > 0 {
		fmt.Fprintf(&sb, " %s/s", FormatBytes(int64(float64(b.done)/elapsed)))
	}
	return sb.String()
}

// FormatBytes formats a byte count with a binary unit: "512 B", "1.5 KiB",
// "637.0 MiB", "2.05 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	var i int
	for v /= unit; v >= unit && i < len(suffixes)-1; i++ {
		v /= unit
	}
	if i >= 2 {
		return fmt.Sprintf("%.2f %s", v, suffixes[i])
	}
	return fmt.Sprintf("%.1f %s", v, suffixes[i])
}
