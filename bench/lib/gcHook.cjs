/**
 * Garbage collection on request for the `memory` section, preloaded into the devnet's operator
 * and enclave processes with `NODE_OPTIONS=--require` (an enclave process inherits its
 * operator's environment): nothing in src/ changes and no ecall is added. Nothing happens
 * unless BENCH_GC_DIR is set. On SIGWINCH (ignored by default, so a process without the hook
 * is unharmed) the process runs two full collections and then writes how many requests it
 * has served to `$BENCH_GC_DIR/gc-<pid>`, so the harness knows when to read its RSS.
 */
'use strict'
const dir = process.env.BENCH_GC_DIR
if (dir) {
  const { writeFileSync } = require('node:fs')
  const { join } = require('node:path')
  // `--expose-gc` is not allowed in NODE_OPTIONS on Node 20; set here it exposes `gc` to
  // contexts created afterwards.
  require('node:v8').setFlagsFromString('--expose-gc')
  const gc = require('node:vm').runInNewContext('gc')
  let served = 0
  process.on('SIGWINCH', () => {
    gc()
    gc()
    served++
    try {
      writeFileSync(join(dir, `gc-${process.pid}`), String(served))
    } catch {}
  })
}
