package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/rocmforge/rocmforge/gguf"
)

// Abbreviation limits for inspect's output without --full.
const (
	inspectArrayElems = 6   // array elements shown
	inspectStringLen  = 120 // bytes of a string value shown
)

type inspectOptions struct {
	noTensors bool
	json      bool
	full      bool
}

// runInspect prints a GGUF file's header, metadata and tensor table.
func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt inspectOptions
	fs.BoolVar(&opt.noTensors, "no-tensors", false, "do not list the tensors")
	fs.BoolVar(&opt.json, "json", false, "print one JSON object with the metadata and tensors")
	fs.BoolVar(&opt.full, "full", false, "print arrays and long strings whole instead of abbreviated")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge inspect [--no-tensors] [--json] [--full] FILE.gguf")
		fs.PrintDefaults()
	}
	// Accept flags after the file name too ("inspect model.gguf --json").
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return fmt.Errorf("want one GGUF file, got %d arguments", len(files))
	}
	path := files[0]

	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if opt.json {
		return inspectJSON(stdout, path, f, opt)
	}
	return inspectText(stdout, path, f, opt)
}

func inspectText(w io.Writer, path string, f *gguf.File, opt inspectOptions) error {
	maxElems, maxStr := inspectArrayElems, inspectStringLen
	if opt.full {
		maxElems, maxStr = -1, -1
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "file:\t%s\n", path)
	fmt.Fprintf(tw, "size:\t%d bytes\n", f.Size())
	fmt.Fprintf(tw, "version:\t%d\n", f.Version)
	fmt.Fprintf(tw, "alignment:\t%d\n", f.Alignment)
	fmt.Fprintf(tw, "data offset:\t%d\n", f.DataOffset)
	fmt.Fprintf(tw, "metadata:\t%d keys\n", len(f.KVs))
	fmt.Fprintf(tw, "tensors:\t%d\n", len(f.Tensors))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nmetadata:\n")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  key\ttype\tvalue\n")
	for _, kv := range f.KVs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", kv.Key, kv.Value.Type, formatValue(kv.Value, maxElems, maxStr))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if opt.noTensors {
		return nil
	}

	fmt.Fprintf(w, "\ntensors:\n")
	rows := [][]string{{"name", "type", "shape", "elements", "bytes", "offset"}}
	var elems, size int64
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		rows = append(rows, []string{ti.Name, ti.Type.String(), formatShape(ti.Dims),
			strconv.FormatInt(ti.Elems(), 10), strconv.FormatInt(ti.Size, 10), strconv.FormatUint(ti.Offset, 10)})
		elems += ti.Elems()
		size += ti.Size
	}
	if err := writeTable(w, rows, 3); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "total: %d tensors, %d elements, %d bytes (%s)\n", len(f.Tensors), elems, size, formatBytes(size))
	return err
}

// writeTable prints rows as columns two spaces apart, indented by two;
// columns from firstRight on are numbers and aligned right.
func writeTable(w io.Writer, rows [][]string, firstRight int) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(" ")
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			b.WriteString(" ")
			if i >= firstRight {
				b.WriteString(pad + c)
			} else if i < len(r)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
			if i < len(r)-1 {
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatValue is Value.String with long strings cut (maxStr < 0: never).
func formatValue(v gguf.Value, maxElems, maxStr int) string {
	switch x := v.V.(type) {
	case string:
		return quoteCut(x, maxStr)
	case gguf.Array:
		var b strings.Builder
		n := x.Len()
		fmt.Fprintf(&b, "[%s x %d] [", x.Elem, n)
		shown := n
		if maxElems >= 0 {
			shown = min(n, maxElems)
		}
		for i := 0; i < shown; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(formatValue(x.Index(i), maxElems, maxStr))
		}
		if shown < n {
			if shown > 0 {
				b.WriteString(", ")
			}
			b.WriteString("...")
		}
		b.WriteByte(']')
		return b.String()
	}
	return v.String()
}

// quoteCut quotes s, keeping at most max bytes (whole characters) of it.
func quoteCut(s string, max int) string {
	if max < 0 || len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

func formatShape(dims []uint64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// inspectDoc is the --json output.
type inspectDoc struct {
	File          string          `json:"file"`
	Size          int64           `json:"size"`
	Version       uint32          `json:"version"`
	Alignment     uint64          `json:"alignment"`
	DataOffset    int64           `json:"data_offset"`
	Metadata      []jsonKV        `json:"metadata"`
	TensorCount   int             `json:"tensor_count"`
	TotalElements int64           `json:"total_elements"`
	TotalBytes    int64           `json:"total_bytes"`
	Tensors       []jsonTensorRow `json:"tensors,omitempty"`
}

type jsonKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// jsonArray is an array value; Values holds the first elements (all with --full).
type jsonArray struct {
	Elem      string `json:"elem_type"`
	Len       int    `json:"len"`
	Values    []any  `json:"values"`
	Truncated bool   `json:"truncated,omitempty"`
}

type jsonTensorRow struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Shape    []uint64 `json:"shape"`
	Elements int64    `json:"elements"`
	Bytes    int64    `json:"bytes"`
	Offset   uint64   `json:"offset"`
}

func inspectJSON(w io.Writer, path string, f *gguf.File, opt inspectOptions) error {
	maxElems := inspectArrayElems
	if opt.full {
		maxElems = -1
	}
	doc := inspectDoc{
		File:        path,
		Size:        f.Size(),
		Version:     f.Version,
		Alignment:   f.Alignment,
		DataOffset:  f.DataOffset,
		Metadata:    make([]jsonKV, len(f.KVs)),
		TensorCount: len(f.Tensors),
	}
	for i, kv := range f.KVs {
		doc.Metadata[i] = jsonKV{Key: kv.Key, Type: kv.Value.Type.String(), Value: jsonValue(kv.Value, maxElems)}
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		doc.TotalElements += ti.Elems()
		doc.TotalBytes += ti.Size
		if !opt.noTensors {
			doc.Tensors = append(doc.Tensors, jsonTensorRow{
				Name: ti.Name, Type: ti.Type.String(), Shape: ti.Dims,
				Elements: ti.Elems(), Bytes: ti.Size, Offset: ti.Offset,
			})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // token strings like "<s>" stay readable
	return enc.Encode(doc)
}

// jsonValue converts a metadata value to something encoding/json accepts:
// non-finite floats (which JSON lacks) become the strings "NaN", "+Inf", "-Inf".
func jsonValue(v gguf.Value, maxElems int) any {
	switch x := v.V.(type) {
	case float32:
		return jsonFloat(float64(x), 32)
	case float64:
		return jsonFloat(x, 64)
	case gguf.Array:
		n := x.Len()
		shown := n
		if maxElems >= 0 {
			shown = min(n, maxElems)
		}
		a := jsonArray{Elem: x.Elem.String(), Len: n, Values: make([]any, shown), Truncated: shown < n}
		for i := range a.Values {
			a.Values[i] = jsonValue(x.Index(i), maxElems)
		}
		return a
	}
	return v.V
}

// jsonFloat prints x in the shortest form that reads back as the same
// float of the given bit size (so a float32 0.1 stays 0.1).
func jsonFloat(x float64, bitSize int) any {
	s := strconv.FormatFloat(x, 'g', -1, bitSize)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return s
	}
	return json.Number(s)
}
