/** Least-squares fits for the benchmark's figures (kept free of I/O for unit tests). */

export type LinearFit = {
  /** Change of y per unit of x. */
  slope: number
  intercept: number
  /** Standard error of the slope (NaN with fewer than three points). */
  slopeStdErr: number
}

/**
 * The least-squares line through `(xs[i], ys[i])`. Every point weighs the same, so one reading
 * that the garbage collector happened to catch low or high moves the slope far less than a
 * difference between two points does.
 */
export function leastSquares(xs: readonly number[], ys: readonly number[]): LinearFit {
  if (xs.length !== ys.length) throw new Error(`leastSquares: ${xs.length} x, ${ys.length} y`)
  const n = xs.length
  if (n < 2) throw new Error(`leastSquares: need two points, got ${n}`)
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2
    sxy += (xs[i]! - mx) * (ys[i]! - my)
  }
  if (sxx === 0) throw new Error('leastSquares: every x is the same')
  const slope = sxy / sxx
  const intercept = my - slope * mx
  let sse = 0
  for (let i = 0; i < n; i++) sse += (ys[i]! - (intercept + slope * xs[i]!)) ** 2
  const slopeStdErr = n > 2 ? Math.sqrt(sse / (n - 2) / sxx) : Number.NaN
  return { slope, intercept, slopeStdErr }
}
