// The gateway of `vigil demo`, in a process of its own so that the demo can kill it with SIGKILL
// and start it again. It talks to the demo over IPC (see `demo-protocol.ts`): it takes its state
// directory and token, says where it serves, hands each notification to the demo and acknowledges
// it (resolves `deliver`) only once the demo says the agent took it.
import type { Notification } from '@vigil/core';
import type { DemoCommand, DemoEvent } from './demo-protocol.js';
import { type EmbeddedGateway, startGateway } from './gateway.js';

const send = (event: DemoEvent): void => {
  process.send?.(event);
};

/** Notifications handed to the demo and not acknowledged yet, by id. */
const waiting = new Map<string, () => void>();
let gateway: EmbeddedGateway | undefined;

async function start(stateDir: string, token: string): Promise<void> {
  gateway = await startGateway({
    port: 0,
    token,
    config: { stateDir, watch: { cooldownMs: 0 } },
    onNotification: (_sessionId, message) =>
      new Promise<void>((resolve) => {
        const notification: Notification = message.notification;
        waiting.set(notification.id, resolve);
        send({ type: 'notification', notification, text: message.text });
      }),
  });
  send({ type: 'serving', url: gateway.url, restored: [...gateway.restored] });
}

/** A full stop (every command ended, the journal emptied), then exit. */
async function stop(): Promise<never> {
  await gateway?.close();
  process.exit(0);
}

process.on('message', (command: DemoCommand) => {
  if (command.type === 'start') {
    start(command.stateDir, command.token).catch((error: unknown) => {
      send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
      process.exit(1);
    });
  } else if (command.type === 'ack') {
    waiting.get(command.id)?.();
    waiting.delete(command.id);
  } else {
    void stop();
  }
});
// The demo went away without saying so: nothing of this gateway may outlive it.
process.on('disconnect', () => void stop());
