#!/usr/bin/env node
/**
 * The `pose` command (SPEC §2: CLI). It parses arguments and calls the SDK, the operator node
 * or the devnet; it holds no business logic of its own.
 */
import { Command, InvalidArgumentError } from 'commander'
import { runCommand } from './run.ts'

const program = new Command()
program
  .name('pose')
  .description(
    'POSE: Practical Off-chain Smart Contract Execution — run contracts in a pool of TEEs',
  )
  .showHelpAfterError('(run with --help for usage)')

const address = (v: string) => {
  if (!/^0x[0-9a-fA-F]{40}$/.test(v))
    throw new InvalidArgumentError('expected a 0x-prefixed 20-byte address')
  return v as `0x${string}`
}
const positiveInt = (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a non-negative integer')
  return n
}
const instanceId = (v: string) => {
  if (!/^[1-9][0-9]*$/.test(v)) throw new InvalidArgumentError('expected a positive instance id')
  return BigInt(v)
}

program
  .command('devnet')
  .description('start anvil, the manager and operators, and run the demo scenario')
  .option('--operators <n>', 'number of operators', positiveInt, 4)
  .option('--watchdogs <s>', 'watchdogs of the demo instance', positiveInt, 2)
  .option('--txs <n>', 'transactions in the demo scenario', positiveInt, 30)
  .option('--keep', 'keep the devnet running after the demo and print how to connect')
  .option('--dir <path>', 'data directory (default: a temporary directory)')
  .action((o) => runCommand('devnet', o))

const operator = program.command('operator').description('run an operator node')
operator
  .command('start')
  .description('start an operator node with its enclave; registers it on first start')
  .requiredOption('--rpc <url>', 'JSON-RPC endpoint of the chain')
  .requiredOption('--manager <address>', 'PoseManager address', address)
  .requiredOption('--data-dir <path>', 'data directory (sealed state, logs)')
  .option('--key <hex>', 'operator account private key (or env POSE_OPERATOR_KEY)')
  .option(
    '--dev-authority-key <hex>',
    'dev attestation authority key, INSECURE (or env POSE_DEV_AUTHORITY_KEY)',
  )
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'listen port (0 = any free port)', positiveInt, 0)
  .option('--public-url <url>', 'URL users and peers reach this node at')
  .option('--stake <wei>', 'stake to register with (default: the manager minimum)')
  .option(
    '--confirmations <n>',
    'blocks on top of an event before the enclave sees it (default: 0 on chain 31337, else 64)',
    positiveInt,
  )
  .option('--peer-source-address <ip>', 'local address for outbound peer connections')
  .action((o) => runCommand('operator-start', o))

operator
  .command('exit')
  .description('stop being drawn and hand over every membership (the stake stays until withdraw)')
  .requiredOption('--rpc <url>', 'JSON-RPC endpoint of the chain')
  .requiredOption('--manager <address>', 'PoseManager address', address)
  .option('--key <hex>', 'operator account private key (or env POSE_OPERATOR_KEY)')
  .action((o) => runCommand('operator-exit', o))
operator
  .command('withdraw')
  .description(
    'withdraw the stake after exit, once no membership is left and the exit delay passed',
  )
  .requiredOption('--rpc <url>', 'JSON-RPC endpoint of the chain')
  .requiredOption('--manager <address>', 'PoseManager address', address)
  .option('--key <hex>', 'operator account private key (or env POSE_OPERATOR_KEY)')
  .action((o) => runCommand('operator-withdraw', o))

const clientOptions = (c: Command) =>
  c
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint of the chain')
    .requiredOption('--manager <address>', 'PoseManager address', address)
    .option('--key <hex>', 'user account private key (or env POSE_KEY)')

clientOptions(
  program.command('deploy').description('create an instance from a Foundry or solc artifact'),
)
  .requiredOption(
    '--artifact <path>',
    'Foundry artifact JSON (out/X.sol/X.json) or solc output with abi and bytecode',
  )
  .option('--args <json>', 'constructor arguments as a JSON array (numbers as strings)', '[]')
  .option('--watchdogs <s>', 'number of watchdogs', positiveInt, 2)
  .action((o) => runCommand('deploy', o))

clientOptions(program.command('send').description('send a transaction to an instance'))
  .requiredOption('--instance <id>', 'instance id', instanceId)
  .requiredOption('--artifact <path>', 'artifact with the contract ABI')
  .requiredOption('--function <name>', 'function name')
  .option('--args <json>', 'arguments as a JSON array', '[]')
  .option('--value <wei>', 'value to send', '0')
  .action((o) => runCommand('send', o))

clientOptions(program.command('call').description('signed view call to an instance'))
  .requiredOption('--instance <id>', 'instance id', instanceId)
  .requiredOption('--artifact <path>', 'artifact with the contract ABI')
  .requiredOption('--function <name>', 'function name')
  .option('--args <json>', 'arguments as a JSON array', '[]')
  .action((o) => runCommand('call', o))

clientOptions(
  program
    .command('challenge')
    .description('challenge the executor of an instance on-chain (pays the challenge fee)'),
)
  .requiredOption('--instance <id>', 'instance id', instanceId)
  .option('--payload <hex>', 'what the executor must answer, e.g. an ignored transaction box')
  .action((o) => runCommand('challenge', o))

clientOptions(program.command('deposit').description('deposit coins (wei) into an instance'))
  .requiredOption('--instance <id>', 'instance id', instanceId)
  .requiredOption('--value <wei>', 'amount in wei')
  .action((o) => runCommand('deposit', o))

clientOptions(
  program.command('balance').description('your coin balance inside an instance (signed view)'),
)
  .requiredOption('--instance <id>', 'instance id', instanceId)
  .action((o) => runCommand('balance', o))

clientOptions(
  program
    .command('withdraw')
    .description(
      'withdraw coins from an instance to your account (after termination: your final balance)',
    ),
)
  .requiredOption('--instance <id>', 'instance id', instanceId)
  .option(
    '--amount <wei>',
    'coins to take out of the world first (default: only claim what is authorised)',
  )
  .option('--no-submit', 'print the authorisation instead of submitting it')
  .action((o) => runCommand('withdraw', o))

program
  .command('status')
  .description('show operators and instances of a manager')
  .requiredOption('--rpc <url>', 'JSON-RPC endpoint of the chain')
  .requiredOption('--manager <address>', 'PoseManager address', address)
  .option('--instance <id>', 'show one instance', instanceId)
  .action((o) => runCommand('status', o))

program
  .command('verify-measurement')
  .description('rebuild the enclave bundle and compare its measurement')
  .option('--expected <hex>', 'measurement to compare with (default: the built dist/enclave.mjs)')
  .option('--rpc <url>', 'also check the verifier of this chain')
  .option('--verifier <address>', 'DevAttestationVerifier address to check', address)
  .action((o) => runCommand('verify-measurement', o))

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`)
  process.exitCode = 1
})
