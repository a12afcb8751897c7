import type { Notification } from '@vigil/core';

/** A notification as an agent reads it: clear text, plus the structured notification. */
export interface RenderedNotification {
  readonly text: string;
  /** The notification; for a batch, its first. */
  readonly notification: Notification;
  /** For a batch of several: all of them, in tape order (`text` joins their texts). */
  readonly notifications?: readonly Notification[];
}

/** Renders a batch as one message: the notifications' texts in tape order, one paragraph each. */
export function renderBatch(notifications: readonly Notification[]): RenderedNotification {
  if (notifications.length === 1) return renderNotification(notifications[0]!);
  const text = notifications.map((notification) => renderNotification(notification).text).join('\n\n');
  return { text, notification: notifications[0]!, notifications };
}

const fence = (text: string): string => `\`\`\`\n${text.replace(/```/g, '`\u200b``').trimEnd()}\n\`\`\``;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Renders a notification as text for an agent: what happened, which process, the output, and how to get more. */
export function renderNotification(notification: Notification): RenderedNotification {
  const { processId, command } = notification;
  const who = `process ${processId} (\`${command}\`)`;
  const more = `Use the process tool (action "log", processId "${processId}") for the full output.`;
  let text: string;
  switch (notification.type) {
    case 'completion': {
      const { state, reason, durationMs, outputTail } = notification.data;
      const headline =
        state === 'failed_start'
          ? `${who} could not start: ${String(reason)}.`
          : state === 'denied'
            ? `${who} did not run: ${String(reason)}.`
            : state === 'lost'
              ? `${who} was lost: ${String(reason)}.`
              : `${who} ${reason ?? 'finished'} after ${seconds(durationMs)}.`;
      text = [
        `[vigil] Background ${headline}`,
        outputTail ? `Last output:\n${fence(outputTail)}` : 'It printed nothing.',
        more,
      ].join('\n');
      break;
    }
    case 'watch_match': {
      const { pattern, lines, suppressed } = notification.data;
      text = [
        `[vigil] Watch pattern ${String(pattern)} matched in ${who}:`,
        fence(lines.join('\n')),
        suppressed > 0 ? `(${suppressed} more matches were suppressed by the cooldown.)` : '',
        'The process is still running.',
      ]
        .filter(Boolean)
        .join('\n');
      break;
    }
    case 'watch_disabled':
      text = `[vigil] Stopped watching ${who}: ${notification.data.message}.`;
      break;
    case 'heartbeat':
      text = [
        `[vigil] ${who} is still running. Output since the last update:`,
        fence(notification.data.output),
        more,
      ].join('\n');
      break;
    case 'watch_paused':
    case 'watch_resumed':
      text = `[vigil] ${notification.data.message}.`;
      break;
  }
  return { text, notification };
}
