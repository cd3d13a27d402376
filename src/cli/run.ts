/** Implementations of the `pose` commands; each delegates to the SDK, operator or devnet. */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { type Abi, type AbiParameter, type Address, createPublicClient, type Hex, http } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { devAttestationVerifierAbi } from '../chain/abi.generated.ts'
import { poseManagerAbi, readInstance, readOperator } from '../chain/manager.ts'
import { createPoseClient } from '../client/index.ts'
import { runDemo } from '../devnet/demo.ts'
import { exitPool, withdrawStake } from '../operator/exit.ts'
import { OperatorNode } from '../operator/node.ts'
import { bytesToHex, hexToBytes, keccak256 } from '../protocol/index.ts'
import { DEV_TEE_WARNING } from '../tee/attestation.ts'
import { buildEnclaveBundle, measureBundle } from '../tee/measurement.ts'

type Opts = Record<string, unknown>

function hexKey(value: unknown, envName: string, what: string): Hex {
  const v = (value as string | undefined) ?? process.env[envName]
  if (!v)
    throw new Error(`${what} is required: pass --${what.replace(/ /g, '-')} or set ${envName}`)
  if (!/^0x[0-9a-fA-F]{64}$/.test(v))
    throw new Error(`${what}: expected 0x followed by 64 hex digits`)
  return v as Hex
}

export function loadArtifact(path: string): { abi: Abi; bytecode: Hex } {
  let json: Record<string, unknown>
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new Error(`artifact ${path}: cannot read JSON (${(e as Error).message})`)
  }
  const abi = json.abi as Abi | undefined
  const bc = json.bytecode as { object?: string } | string | undefined
  const evm = json.evm as { bytecode?: { object?: string } } | undefined
  let bytecode = typeof bc === 'string' ? bc : (bc?.object ?? evm?.bytecode?.object ?? '')
  if (bytecode && !bytecode.startsWith('0x')) bytecode = `0x${bytecode}`
  if (!Array.isArray(abi)) throw new Error(`artifact ${path}: no "abi" array`)
  return { abi, bytecode: bytecode as Hex }
}

/** JSON arguments → ABI values (integers may be given as strings). */
export function coerceArgs(inputs: readonly AbiParameter[], raw: string): unknown[] {
  let args: unknown
  try {
    args = JSON.parse(raw)
  } catch {
    throw new Error('--args: expected a JSON array, e.g. \'["0xabc...", "100"]\'')
  }
  if (!Array.isArray(args)) throw new Error('--args: expected a JSON array')
  if (args.length !== inputs.length)
    throw new Error(`--args: expected ${inputs.length} arguments, got ${args.length}`)
  return args.map((a, i) => {
    const t = inputs[i]!.type
    if (/^u?int\d*$/.test(t)) {
      try {
        return BigInt(a as string)
      } catch {
        throw new Error(`--args[${i}]: expected an integer for ${t}`)
      }
    }
    return a
  })
}

function fnInputs(abi: Abi, name: string): readonly AbiParameter[] {
  const f = abi.find((x) => x.type === 'function' && x.name === name)
  if (f?.type !== 'function') throw new Error(`function ${name} is not in the ABI`)
  return f.inputs
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)

export async function runCommand(cmd: string, o: Opts): Promise<void> {
  switch (cmd) {
    case 'devnet':
      return runDemo({
        operators: o.operators as number,
        watchdogs: o.watchdogs as number,
        txs: o.txs as number,
        keep: Boolean(o.keep),
        ...(o.dir ? { dir: o.dir as string } : {}),
      })
    case 'operator-start': {
      console.error(`WARNING: ${DEV_TEE_WARNING}`)
      const logger = pino({ name: 'pose-operator', level: process.env.POSE_LOG_LEVEL ?? 'info' })
      const node = new OperatorNode({
        rpcUrl: o.rpc as string,
        manager: o.manager as Address,
        privateKey: hexKey(o.key, 'POSE_OPERATOR_KEY', 'key'),
        devAuthorityKey: hexKey(o.devAuthorityKey, 'POSE_DEV_AUTHORITY_KEY', 'dev authority key'),
        dataDir: o.dataDir as string,
        host: o.host as string,
        port: o.port as number,
        ...(o.publicUrl ? { publicUrl: o.publicUrl as string } : {}),
        ...(o.stake ? { stake: BigInt(o.stake as string) } : {}),
        ...(o.confirmations !== undefined ? { confirmations: o.confirmations as number } : {}),
        ...(o.peerSourceAddress ? { peerSourceAddress: o.peerSourceAddress as string } : {}),
        logger,
      })
      const shutdown = async (signal: string) => {
        logger.info({ signal }, 'Shutting down')
        await node.stop()
        process.exit(0)
      }
      process.once('SIGTERM', () => void shutdown('SIGTERM'))
      process.once('SIGINT', () => void shutdown('SIGINT'))
      try {
        await node.start()
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'Operator node failed to start')
        await node.stop()
        throw e
      }
      writeFileSync(join(o.dataDir as string, 'operator.pid'), String(process.pid))
      return
    }
    case 'deploy': {
      const { abi, bytecode } = loadArtifact(o.artifact as string)
      const ctor = abi.find((x) => x.type === 'constructor')
      const args = coerceArgs(
        ctor && ctor.type === 'constructor' ? ctor.inputs : [],
        o.args as string,
      )
      const client = await createPoseClient({
        rpcUrl: o.rpc as string,
        manager: o.manager as Address,
        account: privateKeyToAccount(hexKey(o.key, 'POSE_KEY', 'key')),
      })
      const r = await client.deployContract({
        abi,
        bytecode,
        args,
        watchdogCount: o.watchdogs as number,
        onProgress: (s: string) => console.error(`… ${s}`),
      } as never)
      console.log(json(r))
      return
    }
    case 'send':
    case 'call': {
      const { abi } = loadArtifact(o.artifact as string)
      const args = coerceArgs(fnInputs(abi, o.function as string), o.args as string)
      const client = await createPoseClient({
        rpcUrl: o.rpc as string,
        manager: o.manager as Address,
        account: privateKeyToAccount(hexKey(o.key, 'POSE_KEY', 'key')),
      })
      const started = performance.now()
      const r =
        cmd === 'send'
          ? await client.writeContract({
              instance: o.instance as bigint,
              abi,
              functionName: o.function as string,
              args,
              value: BigInt(o.value as string),
            } as never)
          : await client.readContract({
              instance: o.instance as bigint,
              abi,
              functionName: o.function as string,
              args,
            } as never)
      console.log(json(r))
      console.error(`(${(performance.now() - started).toFixed(1)} ms)`)
      return
    }
    case 'status': {
      const client = createPublicClient({ transport: http(o.rpc as string) })
      const manager = o.manager as Address
      const count = (await client.readContract({
        address: manager,
        abi: poseManagerAbi,
        functionName: 'instanceCount',
      })) as bigint
      const ids = o.instance
        ? [o.instance as bigint]
        : Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1))
      console.log(`manager ${manager}: ${count} instance(s)`)
      for (const id of ids) {
        const info = await readInstance(client as never, manager, id)
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
              const d = (await res.json()) as { seq?: string }
              extra = ` seq ${d.seq ?? '?'} at ${op.endpoint}`
            } catch {
              extra = ` unreachable at ${op.endpoint}`
            }
          }
          console.log(
            `  slot ${slot} ${role.padEnd(8)} enclave ${signer} operator ${operator}${extra}`,
          )
        }
      }
      return
    }
    case 'operator-exit':
    case 'operator-withdraw': {
      const opts = {
        rpcUrl: o.rpc as string,
        manager: o.manager as Address,
        privateKey: hexKey(o.key, 'POSE_OPERATOR_KEY', 'key'),
        log: (l: string) => console.error(`… ${l}`),
      }
      if (cmd === 'operator-exit') {
        const r = await exitPool(opts)
        console.log(json(r))
        console.error(
          `Withdraw the stake with \`pose operator withdraw\` after chain time ${r.readyAt}.`,
        )
      } else {
        console.log(json({ withdrawn: await withdrawStake(opts) }))
      }
      return
    }
    case 'deposit':
    case 'balance':
    case 'withdraw': {
      const client = await createPoseClient({
        rpcUrl: o.rpc as string,
        manager: o.manager as Address,
        account: privateKeyToAccount(hexKey(o.key, 'POSE_KEY', 'key')),
      })
      const instance = o.instance as bigint
      if (cmd === 'deposit')
        console.log(
          json({ hash: await client.deposit({ instance, value: BigInt(o.value as string) }) }),
        )
      else if (cmd === 'balance')
        console.log(json({ balance: await client.getBalance({ instance }) }))
      else {
        const r = await client.withdraw({
          instance,
          ...(o.amount ? { amount: BigInt(o.amount as string) } : {}),
          submit: o.submit !== false,
        })
        console.log(json(r))
      }
      return
    }
    case 'challenge': {
      const client = await createPoseClient({
        rpcUrl: o.rpc as string,
        manager: o.manager as Address,
        account: privateKeyToAccount(hexKey(o.key, 'POSE_KEY', 'key')),
      })
      const payload = o.payload ? hexToBytes(o.payload as string, '--payload') : new Uint8Array()
      const hash = await client.challengeExecutor({ instance: o.instance as bigint, payload })
      const info = await client.getInstance({ instance: o.instance as bigint, refresh: true })
      console.log(json({ hash, phase: info.phaseName, deadline: info.challengeDeadline }))
      console.error(
        `The executor must answer before the deadline; afterwards anyone (operators by default) can call executorTimeout.`,
      )
      return
    }
    case 'verify-measurement': {
      const rebuilt = keccak256(await buildEnclaveBundle())
      const expected = (o.expected as string | undefined) ?? bytesToHex(measureBundle())
      console.log(`rebuilt measurement:  ${bytesToHex(rebuilt)}`)
      console.log(`expected measurement: ${expected}`)
      let ok = bytesToHex(rebuilt).toLowerCase() === expected.toLowerCase()
      if (o.rpc && o.verifier) {
        const client = createPublicClient({ transport: http(o.rpc as string) })
        const allowed = (await client.readContract({
          address: o.verifier as Address,
          abi: devAttestationVerifierAbi,
          functionName: 'allowedMeasurements',
          args: [bytesToHex(rebuilt)],
        })) as boolean
        console.log(`allowed by verifier ${o.verifier}: ${allowed}`)
        ok &&= allowed
      }
      console.log(ok ? 'OK: the measurement matches' : 'MISMATCH')
      if (!ok) process.exitCode = 1
      return
    }
    default:
      throw new Error(`unknown command ${cmd}`)
  }
}
