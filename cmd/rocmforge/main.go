// Command rocmforge loads GGUF models and runs, inspects and serves them.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand: it gets its own arguments (without the name)
// and returns an error that main prints.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"inspect":  {"print a GGUF file's metadata and tensor table", runInspect},
		"loadgen":  {"measure a server's throughput and latency under concurrent load", runLoadgen},
		"logits":   {"print a model's logits for token ids as JSON", runLogits},
		"run":      {"generate text from a prompt", runRun},
		"serve":    {"serve a model over an OpenAI-compatible HTTP API", runServe},
		"bench":    {"measure prompt processing and generation speed", runBench},
		"synth":    {"write a random-weight model of a given shape", runSynth},
		"tokenize": {"print the token ids and pieces of a text", runTokenize},
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: rocmforge <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == probeCommand {
		// Hidden: the GPU probe child of openBackend (backend.go).
		return runProbeCommand(stdout, args[1:])
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rocmforge: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(args[1:], stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "rocmforge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
