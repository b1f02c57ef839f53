/**
 * Made-up chaos event logs for the checker's tests (scripts/chaos-check.ts): one line per RPUSH, in
 * Redis order, of processes 1, 2, 3 on lock L, and the fenced store's accepted writes.
 */
export type Store = Map<string, { token: number; value: string }[]>;
/** The fenced store's accepted log for lock L: both writes of each [token, op], in this order. */
export const store = (...sections: [number, string][]): Store =>
  new Map([['L', sections.flatMap(([token, op]) => [{ token, value: `${op} b` }, { token, value: `${op} e` }])]]);
export const done = ['done 1', 'done 2', 'done 3'];
export const call = (pid: number, op: string) => `call ${pid} ${op} L`;
export const queued = (pid: number, op: string) => `queued ${pid} ${op} L 1`;
export const enter = (pid: number, op: string, token: number) => `enter ${pid} ${op} L ${token}`;
/** The end of a section: `leave` (entered=) and `verdict` (held=). */
export const leave = (pid: number, op: string, token: number, entered = 1, held = entered) => [
  `leave ${pid} ${op} L ${token} entered=${entered}`,
  `verdict ${pid} ${op} L ${token} held=${held}`,
];
/** A whole section: enter, leave, verdict (held). */
export const section = (pid: number, op: string, token: number) => [enter(pid, op, token), ...leave(pid, op, token)];
