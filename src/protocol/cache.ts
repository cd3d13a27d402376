/**
 * Bounded caches over `Map`, which keeps insertion order: the oldest entries go first.
 *
 * One eviction per insertion (`map.delete(map.keys().next().value)`) costs far more than it
 * looks: V8 leaves a deleted entry as a hole in the map's table until the table is rebuilt, and
 * a new iterator walks past every hole at the front. A cache that evicts its oldest entry on
 * every insertion keeps thousands of holes there, and each eviction cost ≈ 1.5 µs at 4,096
 * entries (microbenchmark, 2026-12-06), once per transaction in an executor's receipt cache
 * and in each watchdog's. Evicting a sixteenth of the bound at a time walks the holes once per
 * batch: ≈ 0.15 µs per insertion.
 */

/**
 * Sets `key` in `map` and, once the map holds more than `max` entries, deletes its oldest ones
 * (a sixteenth of `max`, at least one) so that it holds at most `max`. The entry just set is
 * never among them.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.set(key, value)
  if (map.size <= max) return
  const keep = Math.max(1, max - Math.max(1, Math.floor(max / 16)) + 1)
  for (const k of map.keys()) {
    if (map.size <= keep) break
    map.delete(k)
  }
}
