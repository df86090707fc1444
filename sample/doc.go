// Package sample turns a step's logits into the next token of one request.
//
// A [Sampler] is created per request from [Params]. It owns the request's
// random number generator (a PCG from math/rand/v2 seeded with Params.Seed)
// and the window of recent tokens used by the penalties, so sampling is
// deterministic given the seed and the same sequence of [Sampler.Accept] and
// [Sampler.Sample] calls. Every non-greedy Sample draws exactly one random
// number, however many candidates survive truncation.
//
// Processing order, following llama.cpp's common sampler chain:
//
//  1. logit bias: LogitBias[id] is added to the logit (-Inf bans the token);
//  2. penalties over the tokens in the window (the last PenaltyLastN accepted
//     tokens, prompt included): the repetition penalty divides a positive
//     logit by RepeatPenalty and multiplies a non-positive one by it, then
//     logit -= PresencePenalty + FrequencyPenalty*count;
//  3. if Temperature == 0: the argmax, ties going to the lower token id;
//  4. top-k: keep the TopK highest logits (ties to the lower id);
//  5. top-p: of what is left, keep the smallest prefix (by descending
//     probability, softmax without temperature) whose mass is >= TopP;
//  6. min-p: of what is left, drop tokens whose probability is below
//     MinP times the most probable token's;
//  7. temperature: divide the surviving logits by Temperature;
//  8. softmax over the survivors and one draw from the request's RNG.
//
// Truncation happens before temperature (as in llama.cpp), so top-p and min-p
// see the distribution the model produced, not one flattened or sharpened by
// the temperature.
//
// Logprobs: [Result].Logprob and [Result].Top are taken from the log-softmax
// over the whole vocabulary of the logits after bias and penalties, before
// temperature and truncation (vLLM's "raw" convention, with the request's
// logit processors applied). These numbers do not depend on the temperature
// or truncation settings, are finite for every token that can be sampled, and
// agree between greedy and sampled runs. Tokens banned with a -Inf bias have
// logprob -Inf and are never listed in Top.
//
// Candidates: a sampler without logit bias or penalties that is greedy or
// samples with a top-k below the vocabulary size needs only the row's best
// [Sampler.Candidates] tokens and its log-sum-exp, which a device can find
// where the logits are (compute.TopKer); [Sampler.SampleCandidates] then
// gives exactly Sample's result. For that, top-k survivors (k up to 128)
// are drawn from in sorted order, never in selection order.
//
// [StopMatcher] finds stop strings in the detokenized text as it streams and
// holds back text that could be the start of one.
package sample
