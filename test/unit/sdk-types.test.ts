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
  return [
    () =>
      client.writeContract({
        instance: 1n,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: ['0x0000000000000000000000000000000000000001', 5n],
      }),
    // @ts-expect-error: no such function
    () =>
      client.writeContract({
        instance: 1n,
        abi: privateTokenAbi,
        functionName: 'transferAll',
        args: [],
      }),
    // @ts-expect-error: amount must be a bigint
    () =>
      client.writeContract({
        instance: 1n,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: ['0x0000000000000000000000000000000000000001', 'five'],
      }),
    // @ts-expect-error: view functions are read, not written
    () =>
      client.writeContract({
        instance: 1n,
        abi: privateTokenAbi,
        functionName: 'myBalance',
        args: [],
      }),
    async () => {
      const b: bigint = await client.readContract({
        instance: 1n,
        abi: privateTokenAbi,
        functionName: 'myBalance',
      })
      // @ts-expect-error: balances are bigints, not strings
      const s: string = await client.readContract({
        instance: 1n,
        abi: privateTokenAbi,
        functionName: 'myBalance',
      })
      return [b, s]
    },
  ]
}

test('ABI-typed actions compile as expected', () => {
  assert.equal(typedCalls({} as PoseClient).length, 5)
})
