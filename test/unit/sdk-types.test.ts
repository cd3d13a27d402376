/**
 * The SDK is typed by the contract's ABI: wrong function names or argument types fail
 * type-checking (`npm run typecheck` fails if any `@ts-expect-error` below stops erroring).
 * At run time the test only checks that the typed calls are well-formed functions.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { privateTokenAbi } from '../../examples/contracts.generated.ts'
import type { PoseClient } from '../../src/client/index.ts'

function typedCalls(client: PoseClient) {
  const abi = privateTokenAbi
  const to = '0x0000000000000000000000000000000000000001' as const
  const w = client.writeContract
  const r = client.readContract
  return [
    () => w({ instance: 1n, abi, functionName: 'transfer', args: [to, 5n] }),
    // @ts-expect-error: no such function
    () => w({ instance: 1n, abi, functionName: 'transferAll', args: [] }),
    // @ts-expect-error: the amount must be a bigint
    () => w({ instance: 1n, abi, functionName: 'transfer', args: [to, 'five'] }),
    // @ts-expect-error: view functions are read, not written
    () => w({ instance: 1n, abi, functionName: 'myBalance', args: [] }),
    async () => {
      const b: bigint = await r({ instance: 1n, abi, functionName: 'myBalance' })
      // @ts-expect-error: balances are bigints, not strings
      const s: string = await r({ instance: 1n, abi, functionName: 'myBalance' })
      return [b, s]
    },
  ]
}

test('ABI-typed actions compile as expected', () => {
  assert.equal(typedCalls({} as PoseClient).length, 5)
})
