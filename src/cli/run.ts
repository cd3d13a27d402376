/**
 * Implementations of the `pose` commands; each delegates to the SDK, operator or devnet. They
 * receive commands already validated by src/cli/program.ts.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { type Address, createPublicClient, type Hex, http } from 'viem'
import { devAttestationVerifierAbi } from '../chain/abi.generated.ts'
import { poseManagerAbi, readInstance, readOperator } from '../chain/manager.ts'
import { redactUrls } from '../chain/sender.ts'
import { createPoseClient, privateKeyToPoseAccount } from '../client/index.ts'
import { runDemo } from '../devnet/demo.ts'
import { onInterrupt } from '../devnet/interrupt.ts'
import { claimOperatorPayout, exitPool, withdrawStake } from '../operator/exit.ts'
import { OperatorNode } from '../operator/node.ts'
import { bytesToHex, hexToBytes, keccak256, Phase } from '../protocol/index.ts'
import { DEV_TEE_WARNING } from '../tee/attestation.ts'
import { buildEnclaveBundle, DEFAULT_BUNDLE_PATH, measureBundle } from '../tee/measurement.ts'
import type { CliCommand } from './program.ts'
import { printable } from './validate.ts'

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)

/**
 * A command that failed while running for a reason the CLI itself found (no contract at an
 * address, no such instance, a receipt whose status is `error`): printed as
 * `error [CODE]: message` and `details: ...`, exit code 1.
 */
export class CommandError extends Error {
  override name = 'CommandError'
  readonly shortMessage: string
  constructor(
    readonly code: 'NO_CONTRACT' | 'NO_INSTANCE' | 'TX_FAILED' | 'NO_BUNDLE' | 'OPERATOR_START',
    message: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.shortMessage = message
  }
}

/** A chain reader for `rpc` (reads only: status, code checks, the verifier). */
const readerOf = (rpc: string) =>
  createPublicClient({ transport: http(rpc, { retryCount: 2, timeout: 20_000 }) })

/**
 * Fails unless code is deployed at `address` (the address given as `option`): a wrong address
 * otherwise ends in a read that "returned no data" far from its cause.
 */
export async function assertContract(rpc: string, address: Address, option: string) {
  const client = readerOf(rpc)
  const [chainId, code] = await Promise.all([client.getChainId(), client.getCode({ address })])
  if (code === undefined || code === '0x')
    throw new CommandError(
      'NO_CONTRACT',
      `no contract at ${option} ${address} on chain ${chainId}`,
      `check the address, and that --rpc is the chain it was deployed on`,
    )
}

/**
 * An error from starting an operator node as it is logged and printed: its first line, with
 * every URL cut to its origin (an RPC provider's URL carries its API key in the path or query,
 * and viem's messages name the URL they failed on; src/operator/node.ts logs chain errors so).
 */
function redactedError(e: unknown): CommandError {
  const { shortMessage, details, code } = (e ?? {}) as {
    shortMessage?: unknown
    details?: unknown
    code?: unknown
  }
  const text = (x: string) => redactUrls(x.split('\n')[0]!.slice(0, 500))
  const message = text(
    typeof shortMessage === 'string' ? shortMessage : e instanceof Error ? e.message : String(e),
  )
  const error = new CommandError(
    'OPERATOR_START',
    message,
    typeof details === 'string' && details ? text(details) : undefined,
  )
  // Keep the node's own code (UNSAFE_DELTA, WRONG_ROLE, ...), which says what to do.
  if (typeof code === 'string') Object.defineProperty(error, 'code', { value: code })
  return error
}

/** The user's SDK client of a command that acts for an account. */
const userClient = async (c: { rpc: string; manager: Address; key: Hex }) => {
  await assertContract(c.rpc, c.manager, '--manager')
  return createPoseClient({
    rpcUrl: c.rpc,
    manager: c.manager,
    account: privateKeyToPoseAccount(c.key),
  })
}

export async function runCommand(c: CliCommand): Promise<void> {
  switch (c.cmd) {
    case 'devnet':
      return runDemo({
        operators: c.operators,
        watchdogs: c.watchdogs,
        txs: c.txs,
        keep: c.keep,
        ...(c.dir ? { dir: c.dir } : {}),
      })
    case 'operator-start': {
      console.error(`WARNING: ${DEV_TEE_WARNING}`)
      const logger = pino({ name: 'pose-operator', level: process.env.POSE_LOG_LEVEL ?? 'info' })
      const node = new OperatorNode({
        rpcUrl: c.rpc,
        ...(c.rpcWs ? { rpcWsUrl: c.rpcWs } : {}),
        manager: c.manager,
        privateKey: c.key,
        devAuthorityKey: c.devAuthorityKey,
        dataDir: c.dataDir,
        host: c.host,
        port: c.port,
        ...(c.publicUrl ? { publicUrl: c.publicUrl } : {}),
        ...(c.stake !== undefined ? { stake: c.stake } : {}),
        ...(c.confirmations !== undefined ? { confirmations: c.confirmations } : {}),
        ...(c.allowShortDelta ? { allowShortDelta: true } : {}),
        ...(c.peerSourceAddress ? { peerSourceAddress: c.peerSourceAddress } : {}),
        logger,
      })
      // In place before the start and for the whole run: a second signal (from a supervisor
      // or an impatient Ctrl-C) must not end the node while it stops. A clean stop exits 0; a
      // stop that failed, or a signal while a failed start or a failure is being stopped, exits 1.
      let startFailed = false
      const interrupt = onInterrupt(
        async (signal) => {
          logger.info({ signal }, 'Shutting down')
          try {
            await node.stop()
          } catch (e) {
            throw redactedError(e)
          }
          if (startFailed) throw new Error('the node had failed to start')
          // The node was already stopping on a failure of its own (its enclave exited, a record
          // could not be sealed): it set the exit code, which a clean exit must not override.
          if (process.exitCode !== undefined && process.exitCode !== 0)
            throw new Error('the node had stopped on a failure')
        },
        {
          exitCode: 0,
          via: {
            signals: process,
            exit: (code) => process.exit(code),
            log: (line) => logger.warn(line),
          },
          message: (signal) => `${signal}: stopping the node`,
        },
      )
      try {
        await assertContract(c.rpc, c.manager, '--manager')
        await node.start()
      } catch (e) {
        // A signal during the start stops the node; the handler ends the process.
        if (interrupt.interrupted) await new Promise(() => undefined)
        startFailed = true
        const error = redactedError(e)
        logger.error({ err: error.message, code: error.code }, 'Operator node failed to start')
        await node.stop().catch((s: unknown) => {
          logger.error({ err: redactedError(s).message }, 'Operator node did not stop cleanly')
        })
        throw error
      }
      writeFileSync(join(c.dataDir, 'operator.pid'), String(process.pid))
      return
    }
    case 'deploy': {
      const client = await userClient(c)
      const r = await client.deployContract({
        abi: c.abi,
        bytecode: c.bytecode,
        args: c.args,
        watchdogCount: c.watchdogs,
        onProgress: (s: string) => console.error(`… ${s}`),
      } as never)
      console.log(json(r))
      return
    }
    case 'send':
    case 'call': {
      const client = await userClient(c)
      const started = performance.now()
      const call = { instance: c.instance, abi: c.abi, functionName: c.functionName, args: c.args }
      const r =
        c.cmd === 'send'
          ? await client.writeContract({ ...call, value: c.value } as never)
          : await client.readContract(call as never)
      console.log(json(r))
      console.error(`(${(performance.now() - started).toFixed(1)} ms)`)
      // A receipt that says the transaction ran out of gas (or passed a limit) is returned by
      // the SDK, not thrown: the command still failed.
      const receipt = r as { status?: unknown; txHash?: unknown; seq?: unknown }
      if (c.cmd === 'send' && receipt.status === 'error')
        throw new CommandError(
          'TX_FAILED',
          `transaction ${String(receipt.txHash)} (seq ${String(receipt.seq)}) ended with status error`,
          'it ran out of gas or passed a limit of the world (docs/limits.md); its nonce is used and its gas counted, and nothing it wrote was kept',
        )
      return
    }
    case 'status': {
      await assertContract(c.rpc, c.manager, '--manager')
      const client = readerOf(c.rpc)
      const manager = c.manager
      const count = (await client.readContract({
        address: manager,
        abi: poseManagerAbi,
        functionName: 'instanceCount',
      })) as bigint
      const ids =
        c.instance !== undefined
          ? [c.instance]
          : Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1))
      console.log(`manager ${manager}: ${count} instance(s)`)
      for (const id of ids) {
        const info = await readInstance(client as never, manager, id)
        if (info.phase === Phase.None)
          throw new CommandError(
            'NO_INSTANCE',
            `instance ${id} does not exist on manager ${manager}`,
            `the manager has ${count} instance(s), numbered from 1`,
          )
        console.log(
          `\ninstance ${id}: phase ${info.phaseName}, s = ${info.watchdogCount}, event index ${info.eventIndex}`,
        )
        const now = (await client.getBlock({ blockTag: 'latest' })).timestamp
        const due = (t: bigint) => (t > now ? `in ${t - now} s` : `passed ${now - t} s ago`)
        if (info.challengeDeadline > 0n) {
          console.log(
            `  executor challenged by ${info.challenger}; deadline ${due(info.challengeDeadline)}`,
          )
        }
        if (info.watchdogMask !== 0) {
          console.log(
            `  watchdogs challenged (mask ${info.watchdogMask}, answered ${info.respondedMask}); deadline ${due(info.watchdogDeadline)}`,
          )
        }
        if (info.refillBlock > 0n) console.log(`  refill scheduled from block ${info.refillBlock}`)
        for (let slot = 0; slot < info.signers.length; slot++) {
          const signer = info.signers[slot]!
          const operator = info.operators[slot]!
          const role = /^0x0{40}$/.test(operator)
            ? 'empty'
            : slot === info.executorSlot
              ? 'executor'
              : 'watchdog'
          let extra = ''
          if (!/^0x0{40}$/.test(operator)) {
            const op = await readOperator(client as never, manager, operator)
            try {
              const res = await fetch(`${op.endpoint}/v1/instances/${id}/digest`, {
                signal: AbortSignal.timeout(2000),
              })
              const d = (await res.json()) as { seq?: unknown } | null
              extra = ` seq ${printable(String(d?.seq ?? '?'))} at ${printable(op.endpoint)}`
            } catch {
              extra = ` unreachable at ${printable(op.endpoint)}`
            }
          }
          console.log(
            `  slot ${slot} ${role.padEnd(8)} enclave ${signer} operator ${operator}${extra}`,
          )
        }
      }
      return
    }
    case 'claim':
    case 'operator-claim': {
      if (c.cmd === 'operator-claim') await assertContract(c.rpc, c.manager, '--manager')
      const r =
        c.cmd === 'claim'
          ? await (await userClient(c)).claim()
          : await claimOperatorPayout({ rpcUrl: c.rpc, manager: c.manager, privateKey: c.key })
      console.log(json({ claimed: r.amount, ...(r.hash ? { hash: r.hash } : {}) }))
      if (r.amount === 0n)
        console.error('Nothing to claim: the manager holds no payout for this account.')
      return
    }
    case 'operator-exit':
    case 'operator-withdraw': {
      const opts = {
        rpcUrl: c.rpc,
        manager: c.manager,
        privateKey: c.key,
        log: (l: string) => console.error(`… ${l}`),
      }
      await assertContract(c.rpc, c.manager, '--manager')
      if (c.cmd === 'operator-exit') {
        const r = await exitPool({ ...opts, force: c.force })
        console.log(json(r))
        console.error(
          r.kept.length > 0
            ? `Instances ${r.kept.join(', ')} were kept (see above): the stake stays until they are left.`
            : `Withdraw the stake with \`pose operator withdraw\` after chain time ${r.readyAt}.`,
        )
      } else {
        console.log(json({ withdrawn: await withdrawStake(opts) }))
      }
      return
    }
    case 'deposit':
      console.log(
        json({
          hash: await (await userClient(c)).deposit({ instance: c.instance, value: c.value }),
        }),
      )
      return
    case 'balance':
      console.log(
        json({ balance: await (await userClient(c)).getBalance({ instance: c.instance }) }),
      )
      return
    case 'withdraw': {
      const r = await (await userClient(c)).withdraw({
        instance: c.instance,
        ...(c.amount !== undefined ? { amount: c.amount } : {}),
        submit: c.submit,
      })
      console.log(json(r))
      return
    }
    case 'challenge': {
      const client = await userClient(c)
      const payload = hexToBytes(c.payload, '--payload')
      const hash = await client.challengeExecutor({ instance: c.instance, payload })
      const info = await client.getInstance({ instance: c.instance, refresh: true })
      console.log(json({ hash, phase: info.phaseName, deadline: info.challengeDeadline }))
      console.error(
        `The executor must answer before the deadline; afterwards anyone (operators by default) can call executorTimeout.`,
      )
      return
    }
    case 'verify-measurement': {
      if (c.expected === undefined && !existsSync(DEFAULT_BUNDLE_PATH))
        throw new CommandError(
          'NO_BUNDLE',
          `the built enclave bundle ${DEFAULT_BUNDLE_PATH} is missing`,
          'run `npm run build` first, or pass --expected with the measurement to compare with',
        )
      if (c.rpc && c.verifier) await assertContract(c.rpc, c.verifier, '--verifier')
      const rebuilt = keccak256(await buildEnclaveBundle())
      const expected = c.expected ?? bytesToHex(measureBundle())
      console.log(`rebuilt measurement:  ${bytesToHex(rebuilt)}`)
      console.log(`expected measurement: ${expected}`)
      let ok = bytesToHex(rebuilt).toLowerCase() === expected.toLowerCase()
      if (c.rpc && c.verifier) {
        const client = readerOf(c.rpc)
        const allowed = (await client.readContract({
          address: c.verifier,
          abi: devAttestationVerifierAbi,
          functionName: 'allowedMeasurements',
          args: [bytesToHex(rebuilt)],
        })) as boolean
        console.log(`allowed by verifier ${c.verifier}: ${allowed}`)
        ok &&= allowed
      }
      console.log(ok ? 'OK: the measurement matches' : 'MISMATCH')
      if (!ok) process.exitCode = 1
      return
    }
  }
}
