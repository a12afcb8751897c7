import type { EmbeddedGateway } from '@vigil/gateway-plugin';
import type { BrowserContext, Page } from 'playwright-core';

/** What the browser measured while the page loaded (ms). */
export interface PageMeasures {
  readonly timeToInteractiveMs: number;
  /** The longest long task (tasks over 50 ms); 0 when there was none. */
  readonly longestTaskMs: number;
  readonly longTasks: number;
  readonly longestFrameGapMs: number;
}

export declare function sessionIds(count: number): string[];
export declare function processCounts(sessions: number, processes: number): number[];

/** An embedded gateway with open sessions whose processes ran `true` and exited. */
export declare function startScaledGateway(size: { sessions: number; processes: number }): Promise<{
  gateway: EmbeddedGateway;
  ids: string[];
  counts: number[];
}>;

export declare function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }>;

/** Opens the page and resolves once it is interactive, with the `/poll` URLs it requested. */
export declare function openMeasuredPage(
  context: BrowserContext,
  gateway: EmbeddedGateway,
  expected: { shown: number; heavy: number },
): Promise<{ page: Page; polls: string[] }>;

export declare function measured(page: Page): Promise<PageMeasures>;
