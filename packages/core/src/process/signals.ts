import { constants } from 'node:os';
import { z } from 'zod';

/** A signal name such as `SIGTERM` (any signal this platform knows). */
export const signalSchema = z
  .string()
  .refine((name) => Object.hasOwn(constants.signals, name), 'must be a signal name such as "SIGTERM"')
  .transform((name) => name as NodeJS.Signals);
