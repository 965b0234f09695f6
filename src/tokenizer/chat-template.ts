// Chat templates: render `tokenizer.chat_template` (Jinja) for a conversation.
// Reference: Hugging Face transformers apply_chat_template (variables: messages, tools,
// documents, add_generation_prompt, bos_token/eos_token/... and extra kwargs; globals
// raise_exception and strftime_now), rendered with @huggingface/jinja. When a model has no
// template we use ChatML (FALLBACK_CHAT_TEMPLATE), which is also llama.cpp's default.

import { Template } from "@huggingface/jinja";
import type { Tokenizer } from "./tokenizer.ts";

export interface ChatMessage {
  role: string;
  /** Text, or content parts (e.g. [{ type: "text", text }]) for templates that take them. */
  content: string | unknown[] | null;
  [key: string]: unknown;
}

export interface RenderChatOptions {
  /** End with the header of an assistant turn (default true). */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Tool definitions (OpenAI function schemas), passed as `tools`. */
  tools?: unknown[];
  /** Clock for strftime_now (default: now). */
  now?: Date;
  /** Further template variables (e.g. enable_thinking, date_string). */
  extra?: Record<string, unknown>;
}

/**
 * ChatML, used when the model has no template:
 * `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then `<|im_start|>assistant\n`.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{%- for message in messages -%}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/** A template raised an error (raise_exception) or failed to render. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

const cache = new Map<string, Template>();

// @huggingface/jinja predefines strftime_now (system-locale month names, real clock) and does not
// let render() redeclare globals, so the template starts by rebinding it to ours.
const PRELUDE = "{% set strftime_now = __llmesh_strftime_now %}";

function compile(source: string): Template {
  let t = cache.get(source);
  if (!t) {
    try {
      t = new Template(PRELUDE + source);
    } catch (e) {
      throw new ChatTemplateError(`cannot parse chat template: ${(e as Error).message}`);
    }
    if (cache.size > 32) cache.clear();
    cache.set(source, t);
  }
  return t;
}

/**
 * Render a conversation with a Jinja chat template (FALLBACK_CHAT_TEMPLATE when `template` is
 * empty). Errors, including the template's own raise_exception(msg), throw ChatTemplateError.
 */
export function renderChat(template: string | undefined | null, messages: readonly ChatMessage[], opts: RenderChatOptions = {}): string {
  const now = opts.now ?? new Date();
  const vars: Record<string, unknown> = {
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    bos_token: opts.bosToken ?? "",
    eos_token: opts.eosToken ?? "",
    __llmesh_strftime_now: (format: unknown) => strftime(now, String(format)),
    ...opts.extra,
  };
  if (opts.tools !== undefined) vars.tools = opts.tools;
  const t = compile(template || FALLBACK_CHAT_TEMPLATE);
  try {
    return t.render(vars);
  } catch (e) {
    throw new ChatTemplateError((e as Error).message);
  }
}

/** Render with a tokenizer's own template and BOS/EOS texts. */
export function renderChatFor(tokenizer: Tokenizer, messages: readonly ChatMessage[], opts: RenderChatOptions = {}): string {
  const text = (id: number | undefined) => (id === undefined ? "" : tokenizer.tokenText(id));
  return renderChat(tokenizer.chatTemplate, messages, {
    bosToken: text(tokenizer.bos),
    eosToken: text(tokenizer.eos),
    ...opts,
  });
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** Python strftime in the C locale (local time), for the directives chat templates use;
 * "%-d"-style (no padding) is accepted as glibc does. Unknown directives are left as is. */
export function strftime(d: Date, format: string): string {
  return format.replace(/%(-?)([a-zA-Z%])/g, (all, dash: string, c: string) => {
    const pad = (n: number, w = 2) => (dash ? String(n) : String(n).padStart(w, "0"));
    switch (c) {
      case "a": return DAYS[d.getDay()].slice(0, 3);
      case "A": return DAYS[d.getDay()];
      case "b": case "h": return MONTHS[d.getMonth()].slice(0, 3);
      case "B": return MONTHS[d.getMonth()];
      case "d": return pad(d.getDate());
      case "e": return dash ? String(d.getDate()) : String(d.getDate()).padStart(2, " ");
      case "H": return pad(d.getHours());
      case "I": return pad(d.getHours() % 12 || 12);
      case "j": return pad(Math.round((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - new Date(d.getFullYear(), 0, 1).getTime()) / 86_400_000) + 1, 3);
      case "m": return pad(d.getMonth() + 1);
      case "M": return pad(d.getMinutes());
      case "p": return d.getHours() < 12 ? "AM" : "PM";
      case "S": return pad(d.getSeconds());
      case "y": return pad(d.getFullYear() % 100);
      case "Y": return String(d.getFullYear());
      case "z": case "Z": return "";
      case "%": return "%";
      default: return all;
    }
  });
}
