/** The SDK's call encoding: viem's `encodeFunctionData`, with each function prepared once per ABI. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { type Abi, AbiFunctionNotFoundError, encodeFunctionData, parseAbi } from 'viem'
import { privateTokenAbi } from '../../examples/contracts.generated.ts'
import { encodeCall } from '../../src/client/actions/encodeCall.ts'

const address = fc
  .uint8Array({ minLength: 20, maxLength: 20 })
  .map((b) => `0x${Buffer.from(b).toString('hex')}` as const)

test("a function's calls encode as viem encodes them, however often they are made", () => {
  fc.assert(
    fc.property(address, fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), (to, amount) => {
      const args = [to, amount] as const
      assert.equal(
        encodeCall(privateTokenAbi as Abi, 'transfer', args),
        encodeFunctionData({ abi: privateTokenAbi, functionName: 'transfer', args }),
      )
      assert.equal(
        encodeCall(privateTokenAbi as Abi, 'balanceOf', [to]),
        encodeFunctionData({ abi: privateTokenAbi, functionName: 'balanceOf', args: [to] }),
      )
    }),
    { numRuns: 50 },
  )
})

test('an overloaded function is chosen by its arguments; a missing one is refused as viem refuses it', () => {
  const abi = parseAbi([
    'function put(uint256 a)',
    'function put(address a, uint256 b)',
    'function one(bool b)',
  ])
  for (let i = 0; i < 3; i++) {
    assert.equal(
      encodeCall(abi, 'put', [5n]),
      encodeFunctionData({ abi, functionName: 'put', args: [5n] }),
    )
    const two = ['0x00000000000000000000000000000000000000aa', 7n] as const
    assert.equal(
      encodeCall(abi, 'put', two),
      encodeFunctionData({ abi, functionName: 'put', args: two }),
    )
    assert.notEqual(
      encodeCall(abi, 'put', [5n]).slice(0, 10),
      encodeCall(abi, 'put', two).slice(0, 10),
    )
    assert.throws(() => encodeCall(abi, 'nope', []), AbiFunctionNotFoundError)
    assert.equal(
      encodeCall(abi, 'one', [true]),
      encodeFunctionData({ abi, functionName: 'one', args: [true] }),
    )
  }
  // Arguments a function does not take are refused, prepared or not.
  assert.throws(() => encodeCall(abi, 'one', [1n, 2n]))
})
