package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// runTokenize prints the tokens of a text under a GGUF file's vocabulary:
// one line per token (id and quoted piece) and a count, or with --ids just
// the comma-separated ids.
func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("m", "", "GGUF `file` whose vocabulary to use")
	noBOS := fs.Bool("no-bos", false, "do not add BOS/EOS even if the vocabulary asks for them")
	special := fs.Bool("special", false, "turn control-token text such as <s> into control tokens")
	idsOnly := fs.Bool("ids", false, "print only the comma-separated token ids")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge tokenize -m FILE.gguf [--no-bos] [--special] [--ids] \"text\"")
		fmt.Fprintln(stderr, "\nWith no text argument the text is read from standard input.")
		fs.PrintDefaults()
	}
	// Flags may come before or after the text.
	var texts []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		after := fs.Args()
		if len(after) == 0 {
			break
		}
		if consumed := len(rest) - len(after); consumed > 0 && rest[consumed-1] == "--" {
			texts = append(texts, after...) // everything after -- is text
			break
		}
		texts = append(texts, after[0])
		rest = after[1:]
	}
	if *model == "" {
		fs.Usage()
		return errors.New("no model: pass -m FILE.gguf")
	}
	var text string
	switch len(texts) {
	case 0:
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		text = string(b)
	case 1:
		text = texts[0]
	default:
		return fmt.Errorf("want one text argument (quote it), got %d: %q", len(texts), texts)
	}

	f, err := gguf.Open(*model)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	ids, err := tok.Encode(text, !*noBOS, *special)
	if err != nil {
		return err
	}

	if *idsOnly {
		var b strings.Builder
		for i, id := range ids {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(id)))
		}
		b.WriteByte('\n')
		_, err = io.WriteString(stdout, b.String())
		return err
	}
	w := &errWriter{w: stdout}
	for _, id := range ids {
		fmt.Fprintf(w, "%6d %q\n", id, tok.Piece(id))
	}
	fmt.Fprintf(w, "%d tokens\n", len(ids))
	return w.err
}

// errWriter keeps the first write error so that a run of prints can be
// checked once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
