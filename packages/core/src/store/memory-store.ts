import type { JournalStore, RestoredSession } from './store.js';

/**
 * The store of a vigil without `stateDir`: nothing is kept, so everything is visible as soon as
 * it happens and nothing survives the process (vigil's behaviour before restart safety).
 */
export class MemoryStore implements JournalStore {
  readonly durable = false;

  restore(): RestoredSession[] {
    return [];
  }

  putSession(): void {}
  appendEvent(): void {}
  trimEvents(): void {}
  putNotification(): void {}
  setNotificationState(): void {}
  putApproval(): void {}
  resolveApproval(): void {}
  putProcess(): void {}
  deleteProcess(): void {}
  deleteSession(): void {}

  afterCommit(callback: () => void): void {
    callback();
  }

  commitNow(): void {}
  freeze(): void {}
  close(): void {}
}
