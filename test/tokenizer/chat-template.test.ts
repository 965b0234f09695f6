// Chat templates rendered with @huggingface/jinja for a system + user conversation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ChatTemplateError, FALLBACK_CHAT_TEMPLATE, renderChat, renderChatFor, strftime, type ChatMessage } from "../../src/tokenizer/chat-template.ts";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { FIXTURES, ggufGetter, readJson, vocabPath } from "./helpers.ts";

const MESSAGES: ChatMessage[] = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "What is 2+2?" },
];
const NOW = new Date(2024, 6, 26, 9, 5, 7); // 26 Jul 2024, local time

// SmolLM2-135M-Instruct's tokenizer_config.json chat_template (the fixture folder ships no config).
const SMOLLM2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

test("Llama 3.2 template", () => {
  const template = readFileSync(FIXTURES + "templates/meta-llama-Llama-3.2-3B-Instruct.jinja", "utf8");
  const out = renderChat(template, MESSAGES, { bosToken: "<|begin_of_text|>", now: NOW });
  assert.equal(out,
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
    "You are a helpful assistant.<|eot_id|>" +
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
    "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // date_string passed explicitly wins over strftime_now
  assert.match(renderChat(template, MESSAGES, { extra: { date_string: "01 Jan 2030" } }), /Today Date: 01 Jan 2030\n/);
});

test("Qwen2.5 template", () => {
  const cfg = readJson(FIXTURES + "hf/Qwen2.5-Instruct/tokenizer_config.json");
  const template = cfg.chat_template as string;
  assert.equal(renderChat(template, MESSAGES),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  // default system prompt when there is none; no generation prompt on request
  assert.equal(renderChat(template, [MESSAGES[1]], { addGenerationPrompt: false }),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n");
});

test("Phi-3 templates (tokenizer_config.json and the GGUF's)", () => {
  const cfg = readJson(FIXTURES + "hf/Phi-3-mini_onnxruntime-extensions/tokenizer_config.json");
  assert.equal(renderChat(cfg.chat_template as string, MESSAGES, { eosToken: "<|endoftext|>" }),
    "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n");
  assert.equal(renderChat(cfg.chat_template as string, MESSAGES, { eosToken: "<|endoftext|>", addGenerationPrompt: false }),
    "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|endoftext|>");
  // the phi-3 vocab GGUF carries an older template that drops system messages; BOS from the vocab
  const tok = Tokenizer.fromMetadata(ggufGetter(vocabPath("phi-3")));
  assert.equal(renderChatFor(tok, MESSAGES), "<s><|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n");
});

test("SmolLM2 template", () => {
  assert.equal(renderChat(SMOLLM2_TEMPLATE, MESSAGES),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  assert.equal(renderChat(SMOLLM2_TEMPLATE, [MESSAGES[1]]),
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
});

test("fallback template is ChatML", () => {
  const expected = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
  assert.equal(renderChat(undefined, MESSAGES), expected);
  assert.equal(renderChat("", MESSAGES), expected);
  assert.equal(renderChat(FALLBACK_CHAT_TEMPLATE, MESSAGES, { addGenerationPrompt: false }), expected.slice(0, -"<|im_start|>assistant\n".length));
  const spm = Tokenizer.fromMetadata(ggufGetter(vocabPath("llama-spm"))); // no chat_template
  assert.equal(renderChatFor(spm, MESSAGES), expected);
});

test("raise_exception and template errors", () => {
  const alternating =
    "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    "[{{ m['role'] }}]{{ m['content'] }}{% endfor %}";
  assert.equal(renderChat(alternating, [{ role: "user", content: "a" }, { role: "assistant", content: "b" }]), "[user]a[assistant]b");
  assert.throws(() => renderChat(alternating, [{ role: "user", content: "a" }, { role: "user", content: "b" }]),
    (e: unknown) => e instanceof ChatTemplateError && /roles must alternate/.test(e.message));
  assert.throws(() => renderChat("{% for %}", MESSAGES), ChatTemplateError);
});

test("strftime in the C locale", () => {
  assert.equal(strftime(NOW, "%d %b %Y"), "26 Jul 2024");
  assert.equal(strftime(NOW, "%A, %B %-d %H:%M:%S %p %y %j %%"), "Friday, July 26 09:05:07 AM 24 208 %");
  assert.equal(renderChat("{{ strftime_now('%Y-%m-%d') }}", [], { now: NOW }), "2024-07-26");
});
