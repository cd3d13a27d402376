import assert from 'node:assert/strict'
import { test } from 'node:test'
import { freePort } from '../../src/devnet/anvil.ts'

// Regression: a devnet reserves every operator's and proxy's port before it starts them. A
// reserved port stays free until its process binds it, so a later reservation could get it
// too and one operator then failed with EADDRINUSE. 500 reservations out of 12,000 ports
// would repeat one with probability above 99.99 % if nothing remembered them.
test('freePort does not hand out a port twice before it is bound', async () => {
  const ports = new Set<number>()
  for (let i = 0; i < 500; i++) {
    const port = await freePort()
    assert.ok(!ports.has(port), `port ${port} handed out twice`)
    ports.add(port)
  }
})
