/**
 * Binary search over a monotone predicate: the first index i in [0, n) for which `at(i)` holds,
 * or n when none does (`at` must be false then true along the range). The checker's and the
 * bench's sorted look-ups are all this one search with another predicate.
 */
export function firstIndex(n: number, at: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (at(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
