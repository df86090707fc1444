package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes results as a table, one row per level. Latencies are
// in milliseconds.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\treqs\terrors\tshort\telapsed s\treq/s\tgen tok/s\tprompt tok\tTTFT p50\tTTFT p99\tITL p50\tITL p99\tlatency p50\tlatency p99\t")
	for _, r := range results {
		prompt := 0.0
		if r.Requests > 0 {
			prompt = float64(r.PromptTokens) / float64(r.Requests)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t\n",
			r.Concurrency, r.Requests, r.Errors, r.ShortRequests, r.ElapsedSeconds, r.RequestsPerSec, r.GenTokensPerSec, prompt,
			r.TTFT.P50, r.TTFT.P99, r.ITL.P50, r.ITL.P99, r.Latency.P50, r.Latency.P99)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, e := range r.ErrorSamples {
			if _, err := fmt.Fprintf(w, "clients %d: error: %s\n", r.Concurrency, e); err != nil {
				return err
			}
		}
	}
	return nil
}
