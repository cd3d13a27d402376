/**
 * Environment given on a command line as one string (`bench:ab --a-env`, `--b-env`):
 * `NAME=VALUE` pairs separated by spaces, where a value runs up to the next ` NAME=`. So
 * `NODE_OPTIONS=--max-semi-space-size=64 --require=./hook.cjs POSE_X=1` is two pairs, the
 * first with both flags in its value (a word such as `--require=…` is not a name).
 */
const NAME_PATTERN = '[A-Za-z_][A-Za-z0-9_]*'
const NAME = new RegExp(`^${NAME_PATTERN}$`)
/** The spaces before a `NAME=`: where one pair ends and the next begins. */
const PAIR_BREAK = new RegExp(`\\s+(?=${NAME_PATTERN}=)`)

export function parseEnvSpec(spec: string, flag: string): Record<string, string> {
  const env: Record<string, string> = {}
  const trimmed = spec.trim()
  if (trimmed === '') return env
  for (const part of trimmed.split(PAIR_BREAK)) {
    const eq = part.indexOf('=')
    const name = eq > 0 ? part.slice(0, eq) : ''
    if (!NAME.test(name)) {
      throw new Error(
        `${flag}: expected NAME=VALUE pairs separated by spaces (a NAME is letters, digits and _, not starting with a digit), got ${JSON.stringify(part)}`,
      )
    }
    if (Object.hasOwn(env, name)) throw new Error(`${flag}: ${name} is given twice`)
    env[name] = part.slice(eq + 1)
  }
  return env
}
