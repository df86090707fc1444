package main

import (
	"flag"
	"fmt"
	"strings"
)

// parseInterspersed parses args with fs, allowing flags after positional
// arguments (`run "a prompt" -n 20`), and returns the positional ones.
// Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneArg joins the positional arguments of a command that takes one text
// (a prompt), or reports extra ones.
func oneArg(what string, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return "", nil
	case 1:
		return pos[0], nil
	}
	return "", fmt.Errorf("want one %s argument (quote it), got %d: %q", what, len(pos), strings.Join(pos, `" "`))
}
