/**
 * Option parsers shared by the runners' command lines (chaos.ts, soak.ts): each throws commander's
 * InvalidArgumentError on a value it cannot take, which commander prints as a one-line error (exit 1).
 */
import { InvalidArgumentError } from 'commander';
import ms from 'ms';

/** A duration: whole milliseconds ("400") or an ms-style text ("60s", "5m", "1h"). */
export const duration = (v: string): number => {
  const n = /^\d+$/.test(v) ? Number(v) : ms(v as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`not a duration: ${v}`);
  return n;
};

/** A whole number of at least `min`. */
export const integerAtLeast =
  (min: number) =>
  (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`not a whole number of at least ${min}: ${v}`);
    return n;
  };

/** A comma-separated list of `allowed` names for `flag`, without repeats; "none" (or nothing) is the empty list. */
export const listOf =
  <T extends string>(flag: string, allowed: readonly T[]) =>
  (v: string): T[] => {
    const list = v.split(',').map((x) => x.trim()).filter((x) => x !== '' && x !== 'none');
    for (const f of list) if (!allowed.includes(f as T)) throw new InvalidArgumentError(`${flag} takes ${allowed.join(',')} (or none), not ${f}`);
    return [...new Set(list)] as T[];
  };
