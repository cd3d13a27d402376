#!/usr/bin/env node
// A native-solc stand-in for Foundry backed by solc-js from npm (see ../shared/STACK.md).
// Foundry calls `solc --version` and `solc --standard-json`; nothing else is needed.
const solc = require('solc')
const args = process.argv.slice(2)
if (args.includes('--version')) {
  process.stdout.write(
    `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`,
  )
  process.exit(0)
}
if (args.includes('--standard-json')) {
  const chunks = []
  process.stdin.on('data', (c) => chunks.push(c))
  process.stdin.on('end', () => {
    const input = Buffer.concat(chunks).toString('utf8')
    const out = solc.compile(input, {
      import: (p) => ({ error: `import callback not supported: ${p}` }),
    })
    // Write with a callback before exiting, or a pipe cuts the output at 64 KiB.
    process.stdout.write(out, () => process.exit(0))
  })
} else {
  process.stderr.write(`solc-shim: unsupported arguments: ${args.join(' ')}\n`)
  process.exit(1)
}
