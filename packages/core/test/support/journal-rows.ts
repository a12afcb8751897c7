import type { Notification } from '../../src/journal/notification.js';

/** A watch match notification of process `p`, as the store tests journal it. */
export const notificationOf = (sessionId: string, seq: number): Notification =>
  ({
    id: `p:match:${seq}`,
    sessionId,
    type: 'watch_match',
    seq,
    at: seq,
    processId: 'p',
    command: 'seq',
    data: { notificationId: `p:match:${seq}` },
  }) as unknown as Notification;
