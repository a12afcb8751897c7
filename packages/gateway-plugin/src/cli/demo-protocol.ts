import type { Notification } from '@vigil/core';

/** What `vigil demo` tells its gateway process (`demo-gateway.ts`) over IPC. */
export type DemoCommand =
  | { readonly type: 'start'; readonly stateDir: string; readonly token: string }
  /** The agent took notification `id`: its `deliver` resolves, which acknowledges it. */
  | { readonly type: 'ack'; readonly id: string }
  | { readonly type: 'stop' };

/** What the gateway process tells the demo. */
export type DemoEvent =
  | { readonly type: 'serving'; readonly url: string; readonly restored: readonly string[] }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'notification'; readonly notification: Notification; readonly text: string };
