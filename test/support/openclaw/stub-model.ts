import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Recorder } from '../recorder.js';

export interface ChatRequest {
  readonly model?: string;
  readonly stream?: boolean;
  readonly messages?: { readonly role: string }[];
  readonly tools?: { readonly function?: { readonly name?: string } }[];
}

/** A request the stub answered: when, and its messages as JSON. */
export interface StubRequest {
  readonly at: number;
  readonly all: string;
}

/** What the stub answers: text, or calls of vigil's `vigil_process` tool with these arguments. */
export type Reply = { readonly text: string } | { readonly calls: readonly Record<string, unknown>[] };

export interface StubModel extends AsyncDisposable {
  /** The OpenAI-compatible base URL. */
  readonly url: string;
  /** The first request, received already or later, whose messages satisfy `match`. */
  next(match: (all: string) => boolean): Promise<StubRequest>;
}

/** A minimal OpenAI-compatible `/v1/chat/completions` (streamed or not) on 127.0.0.1, scripted by `decide`. */
export async function startStubModel(decide: (body: ChatRequest) => Reply): Promise<StubModel> {
  const requests = new Recorder<StubRequest>();
  let n = 0;
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (!req.url?.endsWith('/chat/completions')) {
      res.writeHead(req.url?.endsWith('/models') ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'stub-1', object: 'model' }] }));
      return;
    }
    const body = JSON.parse(raw || '{}') as ChatRequest;
    requests.push({ at: Date.now(), all: JSON.stringify(body.messages ?? []) });
    const reply = decide(body);
    const head = {
      id: `chatcmpl-${++n}`,
      created: Math.floor(Date.now() / 1000),
      model: body.model ?? 'stub-1',
    };
    const calls =
      'calls' in reply
        ? reply.calls.map((args, index) => ({
            index,
            id: `call_${n}_${index}`,
            type: 'function',
            function: { name: 'vigil_process', arguments: JSON.stringify(args) },
          }))
        : undefined;
    const message =
      'text' in reply
        ? { role: 'assistant', content: reply.text }
        : { role: 'assistant', content: null, tool_calls: calls };
    const finish = calls ? 'tool_calls' : 'stop';
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...head,
          object: 'chat.completion',
          choices: [{ index: 0, message, finish_reason: finish }],
          usage,
        }),
      );
      return;
    }
    const event = (choice: unknown, extra = {}) =>
      `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [choice], ...extra })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(
      event({
        index: 0,
        delta: calls ? { role: 'assistant', tool_calls: calls } : message,
        finish_reason: null,
      }),
    );
    res.write(event({ index: 0, delta: {}, finish_reason: finish }, { usage }));
    res.end('data: [DONE]\n\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    next: (match) => requests.next((request) => match(request.all)),
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
