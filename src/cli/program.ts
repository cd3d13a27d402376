/**
 * The `pose` command line (SPEC §2: CLI) as a commander program with an injectable runner.
 * Parsing and validation end in a typed `CliCommand` before the runner sees anything, so a
 * rejected command line never reaches the network, a devnet or an operator. Every rejection is a
 * `CliError` (src/cli/validate.ts); `runCli` never exits the process.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import type { Abi, Address, Hex } from 'viem'
import { LIMITS } from '../protocol/limits.ts'
import {
  abiInputs,
  address,
  CliError,
  type CliErrorCode,
  coerceArgs,
  functionCall,
  host,
  httpUrl,
  instanceId,
  integer,
  ipAddress,
  keyFrom,
  loadAbi,
  loadArtifact,
  measurement,
  path,
  payload,
  privateKey,
  stakeWei,
  wei,
  wsUrl,
} from './validate.ts'

type Chain = { rpc: string; manager: Address }
type User = Chain & { key: Hex }

/** A validated command, as the runner receives it. */
export type CliCommand =
  | {
      cmd: 'devnet'
      operators: number
      watchdogs: number
      txs: number
      keep: boolean
      dir?: string
    }
  | (Chain & {
      cmd: 'operator-start'
      rpcWs?: string
      key: Hex
      devAuthorityKey: Hex
      dataDir: string
      host: string
      port: number
      publicUrl?: string
      stake?: bigint
      confirmations?: number
      /** Start even though the manager's Δ is too short for the confirmations (unsafe). */
      allowShortDelta?: true
      peerSourceAddress?: string
    })
  | (User & { cmd: 'operator-exit'; force: boolean })
  | (User & { cmd: 'operator-withdraw' | 'operator-claim' })
  | (User & { cmd: 'claim' })
  | (User & { cmd: 'deploy'; abi: Abi; bytecode: Hex; args: unknown[]; watchdogs: number })
  | (User & {
      cmd: 'send'
      instance: bigint
      abi: Abi
      functionName: string
      args: unknown[]
      value: bigint
    })
  | (User & { cmd: 'call'; instance: bigint; abi: Abi; functionName: string; args: unknown[] })
  | (User & { cmd: 'challenge'; instance: bigint; payload: Hex })
  | (User & { cmd: 'deposit'; instance: bigint; value: bigint })
  | (User & { cmd: 'balance'; instance: bigint })
  | (User & { cmd: 'withdraw'; instance: bigint; amount?: bigint; submit: boolean })
  | (Chain & { cmd: 'status'; instance?: bigint })
  | { cmd: 'verify-measurement'; expected?: Hex; rpc?: string; verifier?: Address }

export type CliDeps = {
  /** Carries out a validated command (src/cli/run.ts in the `pose` binary). */
  run: (c: CliCommand) => Promise<void>
  /** Where `POSE_KEY`, `POSE_OPERATOR_KEY` and `POSE_DEV_AUTHORITY_KEY` are read from. */
  env?: Readonly<Record<string, string | undefined>>
  /** Help and version output (default: stdout). */
  writeOut?: (s: string) => void
  /** Help shown on errors (default: stderr). Error messages are not written: they are thrown. */
  writeErr?: (s: string) => void
}

export const USAGE_HINT = '(run with --help for usage)'

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version

/** An option whose value is checked by `check`, which names the option in its errors. */
function opt<T>(
  flags: string,
  description: string,
  check?: (value: string, name: string) => T,
): Option {
  const o = new Option(flags, description)
  if (check) o.argParser((v: string) => check(v, o.long ?? flags))
  return o
}

const required = <T>(flags: string, description: string, check?: (v: string, n: string) => T) =>
  opt(flags, description, check).makeOptionMandatory()

const maxWatchdogs = LIMITS.maxPoolSize - 1
const count = (max: number) => integer(0, max)

/** Builds the `pose` program; actions validate their options and hand a `CliCommand` to `run`. */
export function buildProgram(deps: CliDeps): Command {
  const env = deps.env ?? process.env
  const run = deps.run
  const program = new Command()
  program
    .name('pose')
    .description(
      'POSE: Practical Off-chain Smart Contract Execution — run contracts in a pool of TEEs',
    )
    .version(VERSION)
    .configureOutput({
      writeOut: deps.writeOut ?? ((s) => process.stdout.write(s)),
      writeErr: deps.writeErr ?? ((s) => process.stderr.write(s)),
      // Errors are thrown as CliError and printed once by the caller.
      outputError: () => {},
    })

  const chainOptions = (c: Command) =>
    c
      .addOption(required('--rpc <url>', 'JSON-RPC endpoint of the chain', httpUrl))
      .addOption(required('--manager <address>', 'PoseManager address', address))
  const operatorKey = (c: Command) =>
    c.addOption(
      opt('--key <hex>', 'operator account private key (or env POSE_OPERATOR_KEY)', privateKey),
    )
  const userOptions = (c: Command) =>
    chainOptions(c).addOption(
      opt('--key <hex>', 'user account private key (or env POSE_KEY)', privateKey),
    )
  const userKey = (o: Record<string, unknown>) =>
    keyFrom(o.key as Hex | undefined, env, 'POSE_KEY', 'key')
  const user = (o: Record<string, unknown>): User => ({
    rpc: o.rpc as string,
    manager: o.manager as Address,
    key: userKey(o),
  })
  const instance = () => required('--instance <id>', 'instance id', instanceId)
  const artifact = (description: string) => required('--artifact <path>', description, path)
  const argsOption = (description: string) => opt('--args <json>', description).default('[]')

  program
    .command('devnet')
    .description('start anvil, the manager and operators, and run the demo scenario')
    .addOption(opt('--operators <n>', 'number of operators', integer(1, 64)).default(4))
    .addOption(
      opt('--watchdogs <s>', 'watchdogs of the demo instance', count(maxWatchdogs)).default(2),
    )
    .addOption(opt('--txs <n>', 'transactions in the demo scenario', count(1_000_000)).default(30))
    .option('--keep', 'keep the devnet running after the demo and print how to connect')
    .addOption(opt('--dir <path>', 'data directory (default: a temporary directory)', path))
    .action((o) => {
      if (o.watchdogs >= o.operators)
        throw new CliError(
          'BAD_OPTION',
          `--watchdogs: a pool of ${o.watchdogs} watchdogs and an executor needs at least ${o.watchdogs + 1} operators, got --operators ${o.operators}`,
        )
      return run({
        cmd: 'devnet',
        operators: o.operators,
        watchdogs: o.watchdogs,
        txs: o.txs,
        keep: Boolean(o.keep),
        ...(o.dir !== undefined ? { dir: o.dir } : {}),
      })
    })

  const operator = program.command('operator').description('run an operator node')
  operatorKey(
    chainOptions(
      operator
        .command('start')
        .description('start an operator node with its enclave; registers it on first start'),
    ).addOption(required('--data-dir <path>', 'data directory (sealed state, logs)', path)),
  )
    .addOption(
      opt(
        '--dev-authority-key <hex>',
        'dev attestation authority key, INSECURE (or env POSE_DEV_AUTHORITY_KEY)',
        privateKey,
      ),
    )
    .addOption(opt('--host <host>', 'listen address', host).default('127.0.0.1'))
    .addOption(opt('--port <port>', 'listen port (0 = any free port)', count(65_535)).default(0))
    .addOption(opt('--public-url <url>', 'URL users and peers reach this node at', httpUrl))
    .addOption(
      opt(
        '--stake <wei>',
        'stake to register with, in whole gwei (default: the manager minimum)',
        stakeWei,
      ),
    )
    .addOption(
      opt(
        '--confirmations <n>',
        "blocks on top of an event before the enclave sees it (default: 0 on chain 31337, else 64); the node refuses to start if the manager's Δ leaves no time to answer a challenge this late",
        count(100_000),
      ),
    )
    .option(
      '--allow-short-delta',
      "start even though the manager's Δ is too short for --confirmations at the chain's block interval (UNSAFE: this node's members would be slashed on challenges)",
    )
    .addOption(
      opt('--peer-source-address <ip>', 'local address for outbound peer connections', ipAddress),
    )
    .addOption(
      opt(
        '--rpc-ws <url>',
        'WebSocket JSON-RPC endpoint of the same chain: the chain is read when a new block is announced (eth_subscribe newHeads) instead of every 200 ms; polling resumes while it is unreachable',
        wsUrl,
      ),
    )
    .action((o) =>
      run({
        cmd: 'operator-start',
        rpc: o.rpc,
        ...(o.rpcWs !== undefined ? { rpcWs: o.rpcWs } : {}),
        manager: o.manager,
        key: keyFrom(o.key, env, 'POSE_OPERATOR_KEY', 'key'),
        devAuthorityKey: keyFrom(
          o.devAuthorityKey,
          env,
          'POSE_DEV_AUTHORITY_KEY',
          'dev authority key',
        ),
        dataDir: o.dataDir,
        host: o.host,
        port: o.port,
        ...(o.publicUrl !== undefined ? { publicUrl: o.publicUrl } : {}),
        ...(o.stake !== undefined ? { stake: o.stake } : {}),
        ...(o.confirmations !== undefined ? { confirmations: o.confirmations } : {}),
        ...(o.allowShortDelta === true ? { allowShortDelta: true as const } : {}),
        ...(o.peerSourceAddress !== undefined ? { peerSourceAddress: o.peerSourceAddress } : {}),
      }),
    )

  operatorKey(
    chainOptions(
      operator
        .command('exit')
        .description(
          'stop being drawn and hand over every membership (the stake stays until withdraw)',
        ),
    ),
  )
    .option(
      '--force',
      'also leave instances this operator is the last live member of while they hold coins (each freezes with its coins)',
    )
    .action((o) =>
      run({
        cmd: 'operator-exit',
        rpc: o.rpc,
        manager: o.manager,
        key: keyFrom(o.key, env, 'POSE_OPERATOR_KEY', 'key'),
        force: o.force === true,
      }),
    )
  for (const [name, description] of [
    [
      'withdraw',
      'withdraw the stake after exit, once no membership is left and the exit delay passed',
    ],
    ['claim', 'claim the challenge fees and slash rewards the manager credited the operator'],
  ] as const) {
    operatorKey(chainOptions(operator.command(name).description(description))).action((o) =>
      run({
        cmd: `operator-${name}`,
        rpc: o.rpc,
        manager: o.manager,
        key: keyFrom(o.key, env, 'POSE_OPERATOR_KEY', 'key'),
      }),
    )
  }

  userOptions(
    program.command('deploy').description('create an instance from a Foundry or solc artifact'),
  )
    .addOption(
      artifact('Foundry artifact JSON (out/X.sol/X.json) or solc output with abi and bytecode'),
    )
    .addOption(argsOption('constructor arguments as a JSON array (numbers as strings)'))
    .addOption(opt('--watchdogs <s>', 'number of watchdogs', count(maxWatchdogs)).default(2))
    .action((o) => {
      const { abi, bytecode } = loadArtifact(o.artifact)
      const args = coerceArgs(abiInputs(abi, undefined, o.artifact), o.args)
      return run({ cmd: 'deploy', ...user(o), abi, bytecode, args, watchdogs: o.watchdogs })
    })

  const functionCallOf = (o: Record<string, unknown>) => {
    const functionName = o.function as string
    const { abi, args } = functionCall(
      loadAbi(o.artifact as string),
      functionName,
      o.args as string,
      o.artifact as string,
    )
    return { ...user(o), instance: o.instance as bigint, abi, functionName, args }
  }
  userOptions(program.command('send').description('send a transaction to an instance'))
    .addOption(instance())
    .addOption(artifact('artifact with the contract ABI'))
    .addOption(
      required(
        '--function <name>',
        'function name (an overloaded one is chosen by the number and form of --args)',
      ),
    )
    .addOption(argsOption('arguments as a JSON array'))
    .addOption(opt('--value <wei>', 'value to send', wei()).default(0n, '"0"'))
    .action((o) => run({ cmd: 'send', ...functionCallOf(o), value: o.value }))

  userOptions(program.command('call').description('signed view call to an instance'))
    .addOption(instance())
    .addOption(artifact('artifact with the contract ABI'))
    .addOption(
      required(
        '--function <name>',
        'function name (an overloaded one is chosen by the number and form of --args)',
      ),
    )
    .addOption(argsOption('arguments as a JSON array'))
    .action((o) => run({ cmd: 'call', ...functionCallOf(o) }))

  userOptions(
    program
      .command('challenge')
      .description('challenge the executor of an instance on-chain (pays the challenge fee)'),
  )
    .addOption(instance())
    .addOption(
      opt(
        '--payload <hex>',
        'what the executor must answer, e.g. an ignored transaction box',
        payload,
      ),
    )
    .action((o) =>
      run({ cmd: 'challenge', ...user(o), instance: o.instance, payload: o.payload ?? '0x' }),
    )

  userOptions(
    program
      .command('claim')
      .description(
        'claim what the manager credited your account (refunded fees, rewards for proving an offence)',
      ),
  ).action((o) => run({ cmd: 'claim', ...user(o) }))

  userOptions(program.command('deposit').description('deposit coins (wei) into an instance'))
    .addOption(instance())
    .addOption(required('--value <wei>', 'amount in wei', wei(1n)))
    .action((o) => run({ cmd: 'deposit', ...user(o), instance: o.instance, value: o.value }))

  userOptions(
    program.command('balance').description('your coin balance inside an instance (signed view)'),
  )
    .addOption(instance())
    .action((o) => run({ cmd: 'balance', ...user(o), instance: o.instance }))

  userOptions(
    program
      .command('withdraw')
      .description(
        'withdraw coins from an instance to your account (after termination: your final balance)',
      ),
  )
    .addOption(instance())
    .addOption(
      opt(
        '--amount <wei>',
        'coins to take out of the world first (default: only claim what is authorised)',
        wei(),
      ),
    )
    .option('--no-submit', 'print the authorisation instead of submitting it')
    .action((o) =>
      run({
        cmd: 'withdraw',
        ...user(o),
        instance: o.instance,
        ...(o.amount !== undefined ? { amount: o.amount } : {}),
        submit: o.submit !== false,
      }),
    )

  chainOptions(program.command('status').description('show operators and instances of a manager'))
    .addOption(opt('--instance <id>', 'show one instance', instanceId))
    .action((o) =>
      run({
        cmd: 'status',
        rpc: o.rpc,
        manager: o.manager,
        ...(o.instance !== undefined ? { instance: o.instance } : {}),
      }),
    )

  program
    .command('verify-measurement')
    .description('rebuild the enclave bundle and compare its measurement')
    .addOption(
      opt(
        '--expected <hex>',
        'measurement to compare with (default: the built dist/enclave.mjs)',
        measurement,
      ),
    )
    .addOption(opt('--rpc <url>', 'also check the verifier of this chain', httpUrl))
    .addOption(opt('--verifier <address>', 'DevAttestationVerifier address to check', address))
    .action((o) => {
      if ((o.rpc === undefined) !== (o.verifier === undefined))
        throw new CliError(
          'MISSING_OPTION',
          o.rpc === undefined
            ? '--verifier needs --rpc (the chain to read it on)'
            : '--rpc needs --verifier (the DevAttestationVerifier to check)',
        )
      return run({
        cmd: 'verify-measurement',
        ...(o.expected !== undefined ? { expected: o.expected } : {}),
        ...(o.rpc !== undefined ? { rpc: o.rpc, verifier: o.verifier } : {}),
      })
    })

  return program
}

const COMMANDER_CODES: Record<string, CliErrorCode> = {
  'commander.unknownCommand': 'UNKNOWN_COMMAND',
  'commander.unknownOption': 'UNKNOWN_OPTION',
  'commander.missingMandatoryOptionValue': 'MISSING_OPTION',
  'commander.optionMissingArgument': 'MISSING_OPTION',
  'commander.missingArgument': 'MISSING_OPTION',
  'commander.excessArguments': 'UNEXPECTED_ARGUMENT',
  'commander.invalidArgument': 'BAD_OPTION',
}

/** Commander's exit for `c`, as a CliError (or nothing for help and version, which exit 0). */
function fromCommander(e: CommanderError, c: Command): CliError | undefined {
  if (e.exitCode === 0) return undefined
  if (e.code === 'commander.help') {
    const path: string[] = []
    for (let x: Command | null = c; x; x = x.parent) path.unshift(x.name())
    const names = c.commands.map((s) => s.name()).filter((n) => n !== 'help')
    return new CliError(
      'MISSING_COMMAND',
      `${path.join(' ')}: expected a command, one of ${names.join(', ')}`,
    )
  }
  return new CliError(COMMANDER_CODES[e.code] ?? 'USAGE', e.message.replace(/^error: /, ''))
}

/**
 * `help <topic>` for a topic that is not a command: commander would print the whole help and
 * call it a missing command, so it is named as the unknown command it is.
 */
function unknownHelpTopic(program: Command, argv: readonly string[]): CliError | undefined {
  let c = program
  const path = [program.name()]
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === 'help') {
      const topic = argv[i + 1]
      if (topic === undefined || topic.startsWith('-') || topic === 'help') return undefined
      if (c.commands.some((s) => s.name() === topic)) return undefined
      return new CliError(
        'UNKNOWN_COMMAND',
        `${path.join(' ')} help: unknown command ${JSON.stringify(topic.slice(0, 40))}`,
      )
    }
    const sub = c.commands.find((s) => s.name() === a)
    if (!sub) return undefined
    c = sub
    path.push(a)
  }
  return undefined
}

/**
 * Parses `argv` (the arguments after `pose`) and runs the command through `deps.run`.
 * Resolves after the command, or after help or the version was shown; rejects with a CliError
 * for any usage error (nothing has run then) and with the runner's own error otherwise.
 */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<void> {
  // parse: commander and the option checks; check: an action validating across options and
  // files; run: the runner was called, so whatever it throws is a runtime failure.
  const at: { phase: 'parse' | 'check' | 'run' } = { phase: 'parse' }
  const program = buildProgram({
    ...deps,
    run: (c) => {
      at.phase = 'run'
      return deps.run(c)
    },
  })
  program.hook('preAction', () => {
    at.phase = 'check'
  })
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)]
  for (const c of all(program))
    c.exitOverride((e) => {
      throw fromCommander(e, c) ?? e
    })
  try {
    const helpTopic = unknownHelpTopic(program, argv)
    if (helpTopic) throw helpTopic
    await program.parseAsync([...argv], { from: 'user' })
  } catch (e) {
    if (at.phase === 'run') throw e
    if (e instanceof CommanderError && e.exitCode === 0) return
    // Commander's errors and option values checked while it parses show its usage hint, as
    // before (a missing command already printed the whole help).
    if (e instanceof CliError && at.phase === 'parse') e.hint = e.code !== 'MISSING_COMMAND'
    throw e
  }
}
