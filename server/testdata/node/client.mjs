// Runs the official openai npm client against a rocmforge server:
// ROCMFORGE_BASE_URL (e.g. http://127.0.0.1:8080/v1), ROCMFORGE_API_KEY and
// ROCMFORGE_MODEL from the environment. Exits non-zero on the first failed
// check. Driven by ../../node_test.go.
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.ROCMFORGE_BASE_URL;
const model = process.env.ROCMFORGE_MODEL;
assert.ok(baseURL, "ROCMFORGE_BASE_URL is not set");
assert.ok(model, "ROCMFORGE_MODEL is not set");
const client = new OpenAI({ baseURL, apiKey: process.env.ROCMFORGE_API_KEY || "none", maxRetries: 0 });

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [model]);

// Non-streamed chat, greedy: the reference for the streamed one.
const params = {
  model,
  messages: [{ role: "user", content: "Tell me a story." }],
  max_tokens: 12,
  temperature: 0,
};
const whole = await client.chat.completions.create(params);
assert.match(whole.id, /^chatcmpl-/);
assert.equal(whole.object, "chat.completion");
assert.equal(whole.choices.length, 1);
assert.equal(whole.choices[0].message.role, "assistant");
assert.ok(["stop", "length"].includes(whole.choices[0].finish_reason));
assert.ok(whole.usage.prompt_tokens > 0);
assert.ok(whole.usage.completion_tokens > 0 && whole.usage.completion_tokens <= 12);

const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
let text = "";
let finish = null;
let usage = null;
let id = null;
for await (const chunk of stream) {
  assert.equal(chunk.object, "chat.completion.chunk");
  assert.match(chunk.id, /^chatcmpl-/);
  id ??= chunk.id;
  assert.equal(chunk.id, id, "every chunk of a stream has the stream's id");
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(text, whole.choices[0].message.content);
assert.equal(finish, whole.choices[0].finish_reason);
assert.equal(usage.completion_tokens, whole.usage.completion_tokens);

const cmpl = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 2 });
assert.equal(cmpl.object, "text_completion");
assert.ok(cmpl.choices[0].text.length > 0);
assert.equal(cmpl.choices[0].logprobs.tokens.length, cmpl.usage.completion_tokens);

// An error comes back as the client's typed error.
await assert.rejects(
  client.chat.completions.create({ ...params, temperature: 3 }),
  (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.type === "invalid_request_error",
);

console.log(`ok: ${JSON.stringify(text)}`);
