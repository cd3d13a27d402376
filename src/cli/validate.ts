/**
 * Validation of the `pose` command line. Everything here runs before any network or process
 * work, and every rejection is a `CliError` with a code from `CLI_ERROR_CODES` and a one-line
 * message naming the option and what was expected.
 */
import { readFileSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { type Abi, type AbiParameter, type Address, encodeAbiParameters, type Hex } from 'viem'
import { nestingDepth } from '../protocol/codec.ts'
import { LIMITS } from '../protocol/limits.ts'

export const CLI_ERROR_CODES = [
  /** The command (or subcommand) does not exist. */
  'UNKNOWN_COMMAND',
  /** A command that only groups subcommands was given none (`pose`, `pose operator`). */
  'MISSING_COMMAND',
  /** An option the command does not have. */
  'UNKNOWN_OPTION',
  /** A required option or key (flag or environment) is missing, or an option has no value. */
  'MISSING_OPTION',
  /** A positional argument where the command takes none. */
  'UNEXPECTED_ARGUMENT',
  /** An option value of the wrong form or out of range (address, count, id, wei, URL, host, hex). */
  'BAD_OPTION',
  /** A private key that is not 32 bytes of hex or not a valid secp256k1 scalar. */
  'BAD_KEY',
  /** The artifact is missing, unreadable, not JSON, or lacks a usable ABI or bytecode. */
  'BAD_ARTIFACT',
  /** `--function` names no function of the artifact's ABI. */
  'UNKNOWN_FUNCTION',
  /**
   * `--args` is not a JSON array matching the function's (or constructor's) inputs; for an
   * overloaded function, it matches none of its overloads or more than one.
   */
  'BAD_ARGS_JSON',
  /** Any other usage error commander reports. */
  'USAGE',
] as const

export type CliErrorCode = (typeof CLI_ERROR_CODES)[number]

/** A rejected command line: printed as `error [CODE]: message`, exit code 2. */
export class CliError extends Error {
  override name = 'CliError'
  readonly code: CliErrorCode
  /** Whether to print the usage hint after the message (set for commander's parse errors). */
  hint = false

  constructor(code: CliErrorCode, message: string) {
    super(oneLine(message))
    this.code = code
  }
}

const MAX_MESSAGE = 500
const MAX_SHOWN = 60

/** One line, no control characters, bounded length. */
function oneLine(s: string): string {
  const flat = s
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .replace(/[\p{Cc}\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE)}…` : flat
}

/**
 * Text from outside (an operator's endpoint or answer) as the CLI prints it: one line, its
 * control characters escaped, so that it cannot move the cursor or forge lines of output.
 */
export function printable(s: string): string {
  return oneLine(s)
}

const cut = (s: string) =>
  s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}… (${s.length} chars)` : s

/** A user-supplied string as it appears in a message: quoted, escaped, shortened. */
const show = (s: string): string => JSON.stringify(cut(s))

/** A parsed JSON value as it appears in a message. */
const showJson = (v: unknown): string => cut(JSON.stringify(v) ?? String(v))

const bad = (name: string, expected: string, value: string) =>
  new CliError('BAD_OPTION', `${name}: expected ${expected}, got ${show(value)}`)

export function address(value: string, name: string): Address {
  if (!/^0x[0-9a-fA-F]{40}$/.test(value)) throw bad(name, 'a 0x-prefixed 20-byte address', value)
  return value as Address
}

/** A checker for a decimal integer in [min, max]. */
export const integer =
  (min: number, max: number) =>
  (value: string, name: string): number => {
    const n = /^[0-9]{1,16}$/.test(value) ? Number(value) : Number.NaN
    if (!(n >= min && n <= max))
      throw bad(name, `an integer from ${min} to ${max.toLocaleString('en-US')}`, value)
    return n
  }

const UINT256_LIMIT = 1n << 256n

export function instanceId(value: string, name: string): bigint {
  const n = /^[1-9][0-9]{0,77}$/.test(value) ? BigInt(value) : 0n
  if (n === 0n || n >= UINT256_LIMIT) throw bad(name, 'a positive instance id', value)
  return n
}

/** An amount in wei: a decimal (or 0x-hex) integer below 2^256, at least `min`. */
export const wei =
  (min = 0n) =>
  (value: string, name: string): bigint => {
    const n = /^(?:[0-9]{1,78}|0x[0-9a-fA-F]{1,64})$/.test(value) ? BigInt(value) : -1n
    if (n < 0n || n >= UINT256_LIMIT)
      throw bad(name, 'an amount in wei (a non-negative decimal integer below 2^256)', value)
    if (n < min) throw bad(name, `at least ${min} wei`, value)
    return n
  }

const GWEI = 10n ** 9n
/** The largest stake the manager keeps: it stores stake in gwei in 48 bits. */
export const MAX_STAKE = ((1n << 48n) - 1n) * GWEI

/** A stake in wei: whole gwei, at most `MAX_STAKE` (the manager's stake record). */
export function stakeWei(value: string, name: string): bigint {
  const n = wei()(value, name)
  if (n % GWEI !== 0n) throw bad(name, 'a stake in whole gwei (a multiple of 10^9 wei)', value)
  if (n > MAX_STAKE) throw bad(name, `a stake of at most ${MAX_STAKE} wei`, value)
  return n
}

const MAX_URL = 2048

/** An absolute http(s) URL without whitespace or control characters. */
export function httpUrl(value: string, name: string): string {
  return urlOf(value, name, ['http:', 'https:'])
}

/** An absolute ws(s) URL without whitespace or control characters. */
export function wsUrl(value: string, name: string): string {
  return urlOf(value, name, ['ws:', 'wss:'])
}

function urlOf(value: string, name: string, protocols: readonly string[]): string {
  const expected = `a ${protocols.map((p) => `${p}//`).join(' or ')} URL`
  if (value.length > MAX_URL || /[\s\p{Cc}]/u.test(value)) throw bad(name, expected, value)
  let u: URL
  try {
    u = new URL(value)
  } catch {
    throw bad(name, expected, value)
  }
  if (!protocols.includes(u.protocol) || !u.hostname) throw bad(name, expected, value)
  return value
}

const LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?'
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`)

/** A listen address: an IP address or a host name. */
export function host(value: string, name: string): string {
  if (isIP(value) === 0 && !HOSTNAME.test(value))
    throw bad(name, 'an IP address or host name', value)
  return value
}

export function ipAddress(value: string, name: string): string {
  if (isIP(value) === 0) throw bad(name, 'an IPv4 or IPv6 address', value)
  return value
}

const MAX_PATH = 4096

export function path(value: string, name: string): string {
  if (value.length === 0 || value.length > MAX_PATH || value.includes('\0'))
    throw bad(name, `a file path (1 to ${MAX_PATH} characters, no NUL)`, value)
  return value
}

/** 0x-prefixed even-length hex of at most `maxBytes` bytes (exactly, with `exact`). */
export const hexBytes =
  (maxBytes: number, exact = false) =>
  (value: string, name: string): Hex => {
    const digits = value.length - 2
    const ok =
      /^0x(?:[0-9a-fA-F]{2})*$/.test(value) &&
      (exact ? digits === maxBytes * 2 : digits <= maxBytes * 2)
    if (!ok)
      throw bad(
        name,
        exact
          ? `0x followed by ${maxBytes * 2} hex digits`
          : `0x-prefixed even-length hex of at most ${maxBytes.toLocaleString('en-US')} bytes`,
        value,
      )
    return value as Hex
  }

export const payload = hexBytes(LIMITS.maxTxBoxBytes)
export const measurement = hexBytes(32, true)

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/** A secp256k1 private key: 32 bytes of hex, neither zero nor at or above the curve order. */
export function privateKey(value: string, name: string): Hex {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value))
    throw new CliError('BAD_KEY', `${name}: expected 0x followed by 64 hex digits`)
  const k = BigInt(value)
  if (k === 0n || k >= SECP256K1_N)
    throw new CliError('BAD_KEY', `${name}: not a valid secp256k1 private key (zero or ≥ n)`)
  return value as Hex
}

/** The key from `--<flag>` (already validated) or else from the environment variable. */
export function keyFrom(
  value: Hex | undefined,
  env: Readonly<Record<string, string | undefined>>,
  envName: string,
  what: string,
): Hex {
  if (value !== undefined) return value
  const fromEnv = env[envName]
  if (!fromEnv)
    throw new CliError(
      'MISSING_OPTION',
      `${what} is required: pass --${what.replace(/ /g, '-')} or set ${envName}`,
    )
  return privateKey(fromEnv, envName)
}

const MAX_ARTIFACT_BYTES = 64 * 1024 * 1024

function readArtifact(file: string) {
  const fail = (why: string) => new CliError('BAD_ARTIFACT', `artifact ${show(file)}: ${why}`)
  let json: unknown
  try {
    const st = statSync(file)
    if (!st.isFile()) throw new Error('not a regular file')
    if (st.size > MAX_ARTIFACT_BYTES) throw new Error(`larger than ${MAX_ARTIFACT_BYTES} bytes`)
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    throw fail(`cannot read JSON (${(e as Error).message})`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw fail('expected a JSON object')
  const o = json as Record<string, unknown>
  const abi = o.abi
  if (!Array.isArray(abi)) throw fail('no "abi" array')
  for (const [i, entry] of abi.entries()) {
    if (typeof entry !== 'object' || entry === null || typeof entry.type !== 'string')
      throw fail(`abi[${i}] is not an ABI entry (an object with a "type")`)
  }
  return { o, abi: abi as Abi, fail }
}

/** The ABI of a Foundry artifact or solc output (each entry checked for shape). */
export const loadAbi = (file: string): Abi => readArtifact(file).abi

/** The ABI and the creation bytecode of a Foundry artifact or solc output. */
export function loadArtifact(file: string): { abi: Abi; bytecode: Hex } {
  const { o, abi, fail } = readArtifact(file)
  const bc = o.bytecode as { object?: unknown } | string | undefined
  const evm = o.evm as { bytecode?: { object?: unknown } } | undefined
  const raw = typeof bc === 'string' ? bc : (bc?.object ?? evm?.bytecode?.object ?? '')
  if (typeof raw !== 'string') throw fail('bytecode is not a string')
  const bytecode = raw.startsWith('0x') ? raw : `0x${raw}`
  if (bytecode === '0x') throw fail('no bytecode (an interface or abstract contract?)')
  if (!/^0x(?:[0-9a-fA-F]{2})+$/.test(bytecode))
    throw fail('bytecode is not even-length hex (an unlinked library placeholder?)')
  return { abi, bytecode: bytecode as Hex }
}

const BITS = Array.from({ length: 32 }, (_, i) => (i + 1) * 8).join('|')
const ABI_TYPE = new RegExp(
  `^(?:u?int(?:${BITS})?|address|bool|string|function|tuple|bytes(?:[1-9]|[12][0-9]|3[0-2])?)(?:\\[(?:[1-9][0-9]{0,5})?\\])*$`,
)

type Param = { name?: string; type: string; components?: readonly Param[] }

function checkParams(params: unknown, where: string, depth = 0): readonly Param[] {
  const fail = (why: string) => new CliError('BAD_ARTIFACT', `${where}: ${why}`)
  if (!Array.isArray(params)) throw fail('"inputs" is not an array')
  if (depth > 8) throw fail('tuples nested too deeply')
  for (const p of params) {
    if (typeof p !== 'object' || p === null || typeof p.type !== 'string' || !ABI_TYPE.test(p.type))
      throw fail(`input ${showJson(p)} has no valid Solidity type`)
    if (p.type.startsWith('tuple')) checkParams(p.components, where, depth + 1)
  }
  return params as readonly Param[]
}

/** The inputs of the constructor (empty if it has none) or of the named function. */
export function abiInputs(
  abi: Abi,
  fn: string | undefined,
  artifact: string,
): readonly AbiParameter[] {
  const inputs = (x: unknown) => (x as { inputs?: unknown }).inputs
  if (fn === undefined) {
    const ctor = abi.find((x) => x.type === 'constructor')
    return (
      ctor ? checkParams(inputs(ctor), `artifact ${show(artifact)}: constructor`) : []
    ) as readonly AbiParameter[]
  }
  const f = abi.find((x) => x.type === 'function' && x.name === fn)
  if (!f) {
    const name = /^[A-Za-z_$][A-Za-z0-9_$]{0,99}$/.test(fn) ? fn : show(fn)
    throw new CliError('UNKNOWN_FUNCTION', `function ${name} is not in the ABI`)
  }
  return checkParams(
    inputs(f),
    `artifact ${show(artifact)}: function ${fn}`,
  ) as readonly AbiParameter[]
}

/** A parameter's type as a function signature spells it: `(uint64,address)[]` for a tuple. */
function canonicalType(p: Param): string {
  if (!p.type.startsWith('tuple')) return p.type
  return `(${(p.components ?? []).map(canonicalType).join(',')})${p.type.slice('tuple'.length)}`
}

/**
 * The function `fn` of the ABI called with `--args` `raw`, its arguments converted. An
 * overloaded name is resolved by the arguments: the one overload they fit is taken, and the ABI
 * handed on keeps that overload alone (besides the errors and events), so that nothing later
 * picks another. Arguments that fit none of the overloads, or several (`put(uint8)` and
 * `put(uint16)` given `[1]`), are refused naming every overload: the CLI cannot choose between
 * overloads of the same shape (the SDK can, by the arguments' types).
 */
export function functionCall(
  abi: Abi,
  fn: string,
  raw: string,
  artifact: string,
): { abi: Abi; args: unknown[] } {
  const overloads = abi.filter((x) => x.type === 'function' && x.name === fn)
  if (overloads.length <= 1) return { abi, args: coerceArgs(abiInputs(abi, fn, artifact), raw) }
  const signature = (inputs: readonly Param[]) => `${fn}(${inputs.map(canonicalType).join(',')})`
  const fits: { entry: (typeof overloads)[number]; args: unknown[] }[] = []
  const signatures: string[] = []
  for (const entry of overloads) {
    const inputs = checkParams(
      (entry as { inputs?: unknown }).inputs,
      `artifact ${show(artifact)}: function ${fn}`,
    )
    signatures.push(signature(inputs))
    try {
      fits.push({ entry, args: coerceArgs(inputs as readonly AbiParameter[], raw) })
    } catch (e) {
      if (!(e instanceof CliError)) throw e
    }
  }
  const listed = signatures.join(', ')
  if (fits.length === 0) throw argsError(`--args: fit none of the overloads of ${fn}: ${listed}`)
  if (fits.length > 1)
    throw argsError(
      `--args: fit ${fits.length} overloads of ${fn} (${listed}); the CLI cannot choose between overloads that take arguments of the same shape: call it through the SDK`,
    )
  const [only] = fits
  return {
    abi: abi.filter((x) => x.type !== 'function' || x === only!.entry) as Abi,
    args: only!.args,
  }
}

const MAX_ARGS_CHARS = 1024 * 1024
const MAX_ARGS_DEPTH = 32

const argsError = (message: string) => new CliError('BAD_ARGS_JSON', message)

function toInteger(v: unknown, at: string, type: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
  if (typeof v === 'string' && /^(?:-?[0-9]{1,80}|0x[0-9a-fA-F]{1,64})$/.test(v)) return BigInt(v)
  throw argsError(
    `${at}: expected an integer for ${type} (a safe integer or an integer string), got ${showJson(v)}`,
  )
}

type Check = readonly [expected: string, ok: (v: unknown) => boolean]
const SCALARS: Record<string, Check> = {
  bool: ['true or false', (v) => typeof v === 'boolean'],
  string: ['a string', (v) => typeof v === 'string'],
  address: ['an address string', (v) => typeof v === 'string'],
}
/** bytes, bytesN and function values. */
const HEX_VALUE: Check = [
  '0x-prefixed even-length hex',
  (v) => typeof v === 'string' && /^0x(?:[0-9a-fA-F]{2})*$/.test(v),
]

/** Converts integers given as strings (at any depth of arrays and tuples) into bigints. */
function coerce(p: Param, v: unknown, at: string): unknown {
  const array = /^(.*)\[([0-9]*)\]$/.exec(p.type)
  if (array) {
    if (!Array.isArray(v)) throw argsError(`${at}: expected an array for ${p.type}`)
    if (array[2] && v.length !== Number(array[2]))
      throw argsError(`${at}: expected ${array[2]} elements for ${p.type}, got ${v.length}`)
    const inner = { ...p, type: array[1]! }
    return v.map((x, i) => coerce(inner, x, `${at}[${i}]`))
  }
  if (p.type === 'tuple') {
    const parts = p.components ?? []
    if (Array.isArray(v)) {
      if (v.length !== parts.length)
        throw argsError(`${at}: expected ${parts.length} tuple fields, got ${v.length}`)
      return v.map((x, i) => coerce(parts[i]!, x, `${at}[${i}]`))
    }
    if (typeof v !== 'object' || v === null) throw argsError(`${at}: expected a tuple`)
    const o = v as Record<string, unknown>
    return Object.fromEntries(
      parts.map((c) => {
        if (!c.name) throw argsError(`${at}: give this tuple as an array (unnamed fields)`)
        return [c.name, coerce(c, o[c.name], `${at}.${c.name}`)]
      }),
    )
  }
  if (/^u?int/.test(p.type)) return toInteger(v, at, p.type)
  const [expected, ok] = SCALARS[p.type] ?? HEX_VALUE
  if (!ok(v)) throw argsError(`${at}: expected ${expected} for ${p.type}, got ${showJson(v)}`)
  return v
}

/** `--args` JSON → ABI values: integers may be given as strings; values are test-encoded. */
export function coerceArgs(inputs: readonly AbiParameter[], raw: string): unknown[] {
  if (raw.length > MAX_ARGS_CHARS)
    throw argsError(`--args: longer than ${MAX_ARGS_CHARS.toLocaleString('en-US')} characters`)
  if (nestingDepth(raw) > MAX_ARGS_DEPTH)
    throw argsError(`--args: nested deeper than ${MAX_ARGS_DEPTH} levels`)
  let args: unknown
  try {
    args = JSON.parse(raw)
  } catch {
    throw argsError('--args: expected a JSON array, e.g. \'["0xabc...", "100"]\'')
  }
  if (!Array.isArray(args)) throw argsError('--args: expected a JSON array')
  if (args.length !== inputs.length)
    throw argsError(`--args: expected ${inputs.length} arguments, got ${args.length}`)
  const values = args.map((a, i) => coerce(inputs[i] as Param, a, `--args[${i}]`))
  try {
    encodeAbiParameters(inputs, values)
  } catch (e) {
    const m = (e as { shortMessage?: string; message?: string }).shortMessage ?? String(e)
    throw argsError(`--args: ${m}`)
  }
  return values
}
