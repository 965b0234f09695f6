// Server-sent events as OpenAI streams them: each event is one line `data: <json>` and a blank
// line; the stream ends with `data: [DONE]`. Events are written as soon as they are produced (a slow
// client's events buffer here, so it never holds up the batch other streams are in).
import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";

export class SseStream {
  readonly stream = new PassThrough();
  private ended = false;

  /** Sends the stream as the reply, with the SSE headers. */
  constructor(reply: FastifyReply) {
    reply
      .code(200)
      .header("content-type", "text/event-stream; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("connection", "keep-alive")
      .header("x-accel-buffering", "no");
    void reply.send(this.stream);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  send(data: unknown): void {
    if (this.ended || this.stream.destroyed) return;
    this.stream.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** A comment line (ignored by clients); keeps proxies from timing out. */
  comment(text: string): void {
    if (this.ended || this.stream.destroyed) return;
    this.stream.write(`: ${text.replace(/[\r\n]+/g, " ")}\n\n`);
  }

  /** Writes `data: [DONE]` and ends the stream. */
  done(): void {
    if (this.ended) return;
    if (!this.stream.destroyed) this.stream.end("data: [DONE]\n\n");
    this.ended = true;
  }

  /** Ends without [DONE] (the client is gone). */
  abort(): void {
    this.ended = true;
    this.stream.destroy();
  }
}
