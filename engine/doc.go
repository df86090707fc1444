// Package engine is the continuous-batching scheduler of the inference
// server: it queues requests, runs them together through one model.Forward
// per step, samples each sequence's next token and streams the results as
// events.
//
// # Notes for callers (differences from the first API sketch)
//
//   - Config.EnablePrefixCache cannot default to true in a zero Config (a
//     bool's zero value is false). Start from [DefaultConfig], which sets it;
//     a Config literal without it runs with the prefix cache off.
//   - An empty prompt, out-of-vocabulary token ids, a negative MaxTokens and
//     invalid sampling parameters are [ErrInvalid] (added), not ErrTooLong.
//     ErrTooLong is only about lengths.
//   - The Done event carries no token: its Token is -1, and its Text is the
//     text held back until the end (an incomplete UTF-8 character or a
//     possible stop-string prefix that turned out not to be one), which may
//     be non-empty. Every other event carries exactly one generated token.
//   - model.Cache.CopyBlock takes no backend argument: the cache already
//     knows its backend.
//
// # Scheduling
//
// One goroutine (started by Engine.Start) owns the model and the KV cache.
// Each step it builds one batch of at most Config.MaxBatchTokens rows:
//
//  1. one row for every running sequence that is decoding (oldest first);
//  2. a chunk of every running sequence whose prompt is not yet fully
//     computed (chunked prefill: a long prompt is spread over steps);
//  3. new requests from the queue, in order, while fewer than
//     Config.MaxSeqs sequences run and their first chunk's blocks can be
//     allocated. On admission the prompt is matched against the prefix
//     cache and the matched tokens are not computed again
//     (Usage.CachedTokens).
//
// Prompt rows (2 and 3) next to decode rows are capped, so that streams
// in progress are not held for a whole MaxBatchTokens of prefill: by
// Config.MaxPrefillTokens when set, else by what a cost model of the
// recent steps (step time against rows) predicts to fit in
// Config.TargetStepLatency, but never fewer than the step's decode rows or
// 64, so that waiting prompts still advance. A step without
// decodes fills MaxBatchTokens. Config.OnStep sees each step's StepStats.
//
// The batch runs as one model.Forward; logits are computed only for the
// last row of each sequence that reaches the end of its known tokens, and
// each of those sequences samples its next token with its own seeded
// sampler. When every sequence sampled in a step is pure greedy and the
// model can end a pass with each output row's argmax (ForwardArgmax), the
// engine takes the ids instead of copying the logit rows out.
//
// When a decoding sequence needs a new KV block and none is free, the
// newest running sequence is preempted: its blocks are released (full ones
// stay in the prefix cache) and it goes back to the front of the queue with
// its prompt and the tokens generated so far, to be recomputed when it is
// admitted again. Its sampler, detokenizer and stop-string state are kept,
// so the output is the same as if it had never been preempted.
//
// Batch invariance: the reference and CPU backends compute every row from
// that row's data only, so a request gives the same tokens and logprobs
// alone or batched, chunked or not, preempted or not, bit for bit (tested
// on stories260K). The GPU backend's kernels may sum in another order for
// another number of rows: there the tokens agreed and logprobs differed by
// at most 2.2e-6 (TestBatchInvarianceGPU on an H200).
//
// # Events
//
// Each request's events go through a buffered channel. The scheduler never
// blocks on it: when the channel is full, events wait in a per-request
// backlog that is flushed between steps. A reader that takes nothing for
// Config.SlowReaderTimeout is cancelled: its request ends with
// FinishReason "cancelled" and Err wrapping [ErrSlowReader], undelivered
// token events are dropped to make room for that final event, and the
// channel is closed.
package engine
