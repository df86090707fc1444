package main

import (
	"bytes"
	"strings"
	"testing"
)

// tokenize runs the subcommand and returns its standard output.
func tokenize(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := runTokenize(args, &stdout, &stderr); err != nil {
		t.Fatalf("tokenize %q: %v (stderr %q)", args, err, stderr.String())
	}
	return stdout.String()
}

const storiesText = "Once upon a time, there was a little"

func TestTokenizeLines(t *testing.T) {
	model := stories260K(t)
	out := tokenize(t, "-m", model, storiesText)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		`     1 "<s>"`,
		`   403 " Once"`,
		`   407 " upon"`,
		`   261 " a"`,
		`   378 " time"`,
		`   432 ","`,
		`   383 " there"`,
		`   286 " was"`,
		`   261 " a"`,
		`   376 " little"`,
		`10 tokens`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tokenize output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}

func TestTokenizeFlags(t *testing.T) {
	model := stories260K(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"ids", []string{"-m", model, "--ids", storiesText}, "1,403,407,261,378,432,383,286,261,376\n"},
		{"no-bos", []string{"-m", model, "--ids", "--no-bos", storiesText}, "403,407,261,378,432,383,286,261,376\n"},
		{"flags after text", []string{storiesText, "-m", model, "--ids"}, "1,403,407,261,378,432,383,286,261,376\n"},
		{"special", []string{"-m", model, "--ids", "--no-bos", "--special", "<s>"}, "1\n"},
		{"not special", []string{"-m", model, "--ids", "--no-bos", "--", "<s>"}, "410,504,419,505\n"}, // ▁ < s >
		{"empty", []string{"-m", model, "--ids", "--no-bos", ""}, "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := tokenize(t, c.args...); got != c.want {
				t.Fatalf("tokenize %q = %q, want %q", c.args, got, c.want)
			}
		})
	}
}

func TestTokenizeErrors(t *testing.T) {
	model := stories260K(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"hello"}, "no model"},
		{"missing file", []string{"-m", model + ".missing", "hello"}, "missing"},
		{"two texts", []string{"-m", model, "a", "b"}, "one text argument"},
		{"bad flag", []string{"-m", model, "--bogus", "a"}, "bogus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runTokenize(c.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("tokenize %q: error %v, want one containing %q", c.args, err, c.want)
			}
		})
	}
}

func TestTokenizeRegistered(t *testing.T) {
	if _, ok := commands()["tokenize"]; !ok {
		t.Fatal("tokenize is not in the command table")
	}
}
