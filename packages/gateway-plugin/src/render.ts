import type { Notification } from '@vigil/core';

/** A notification as an agent reads it: clear text, plus the structured notification. */
export interface RenderedNotification {
  readonly text: string;
  readonly notification: Notification;
}

const fence = (text: string): string => `\`\`\`\n${text.replace(/```/g, '`\u200b``').trimEnd()}\n\`\`\``;

function seconds(ms: unknown): string {
  return typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : 'an unknown time';
}

/** Renders a notification as text for an agent: what happened, which process, the output, and how to get more. */
export function renderNotification(notification: Notification): RenderedNotification {
  const { processId, command, data } = notification;
  const who = `process ${processId} (\`${command}\`)`;
  const more = `Use the process tool (action "log", processId "${processId}") for the full output.`;
  let text: string;
  switch (notification.type) {
    case 'completion': {
      const tail = String(data.outputTail ?? '');
      const headline =
        data.state === 'failed_start'
          ? `${who} could not start: ${String(data.reason)}.`
          : data.state === 'denied'
            ? `${who} did not run: ${String(data.reason)}.`
            : `${who} ${String(data.reason ?? 'finished')} after ${seconds(data.durationMs)}.`;
      text = [
        `[vigil] Background ${headline}`,
        tail ? `Last output:\n${fence(tail)}` : 'It printed nothing.',
        more,
      ].join('\n');
      break;
    }
    case 'watch_match': {
      const lines = Array.isArray(data.lines) ? (data.lines as string[]) : [];
      const suppressed = Number(data.suppressed ?? 0);
      text = [
        `[vigil] Watch pattern ${String(data.pattern)} matched in ${who}:`,
        fence(lines.join('\n')),
        suppressed > 0 ? `(${suppressed} more matches were suppressed by the cooldown.)` : '',
        'The process is still running.',
      ]
        .filter(Boolean)
        .join('\n');
      break;
    }
    case 'watch_disabled':
      text = `[vigil] Stopped watching ${who}: ${String(data.message ?? data.reason)}.`;
      break;
    case 'heartbeat':
      text = [
        `[vigil] ${who} is still running. Output since the last update:`,
        fence(String(data.output ?? '')),
        more,
      ].join('\n');
      break;
  }
  return { text, notification };
}
