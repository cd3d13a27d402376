/** Resource limits enforced at every boundary; documented in docs/limits.md. */
export const LIMITS = {
  /** Largest encrypted transaction or view call a client may send (bytes of the box). */
  maxTxBoxBytes: 128 * 1024,
  /** Largest deploy box (creation bytecode plus constructor arguments). */
  maxDeployBoxBytes: 1024 * 1024,
  /** Largest peer message (state updates and handovers). */
  maxPeerMessageBytes: 64 * 1024 * 1024,
  /**
   * Largest HTTP request body accepted by an operator: a deploy box of `maxDeployBoxBytes` as
   * hex in its JSON body (`{"box":"0x…"}`), with room to spare for whitespace.
   */
  maxHttpBodyBytes: 2 * 1024 * 1024 + 1024,
  /**
   * Longest payload of an on-chain challenge (MAX_CHALLENGE_PAYLOAD in PoseTypes.sol): a user's
   * largest request box. Members keep the open challenges' payloads in their sealed chain view.
   */
  maxChallengePayloadBytes: 128 * 1024,
  /** Largest call data of one transaction. */
  maxTxDataBytes: 64 * 1024,
  /** Transactions executed in one replicated batch. */
  maxBatchTxs: 256,
  /**
   * Largest plain payload of an update (decision 0028): deflated, sealed and framed it stays
   * within `maxChallengePayloadBytes` (the room left covers DEFLATE's worst case, ≈ 50 bytes
   * here, the seal's nonce and tag, the update's header and the challenge's signature), so an
   * executor can always challenge its watchdogs with the update it waits for. A batch whose next
   * transaction would pass it leaves the rest to the next update; a transaction that passes it
   * alone ends as an error.
   */
  maxUpdatePayloadBytes: 127 * 1024,
  /**
   * Most accounts final balances may list: PoseManager's MAX_FINAL_PAGES pages of
   * MAX_FINAL_ACCOUNTS. With more, the executor cannot publish them, and withdrawals to the
   * system address are served after termination instead (decision 0027).
   */
  maxFinalAccounts: 128 * 1024,
  /** Transactions an executor queues before it rejects new ones with UNAVAILABLE. */
  maxQueuedTxs: 4096,
  /** Updates an executor keeps in flight before it waits for acks. */
  maxInFlightUpdates: 4,
  /**
   * Transactions that must be queued before an executor starts an update while another is in
   * flight; fewer wait for the next acknowledgement and then go as one batch. 32 rather than 8
   * since 2026-12-03: larger batches spread each update's signatures, sealing and messages over
   * more transactions (bench/README.md, "night").
   */
  pipelineMinBatchTxs: 32,
  /**
   * Consecutive `tx` ecalls the enclave queues before it executes them (group commit, see
   * `Enclave.call`): a run of tx ecalls ends at the last one queued, before any other kind of
   * ecall, or once this many transactions wait. With no cap, a saturated devnet's
   * transactions clump into one batch that travels from process to process while the others
   * idle (bench/README.md, 2026-12-04). 128 rather than 64 since 2026-12-05 (late night): at
   * saturation (512 clients) CPU per transfer fell 5–9 % (each update's signatures, seal, acks
   * and messages over twice the transactions) and the rate rose 3–8 %; at 256 clients it was
   * 1.6 % lower, within an A/B's noise.
   */
  groupCommitTxs: 128,
  /** Sealed updates appended after a snapshot before a member seals a fresh snapshot. */
  snapshotEveryUpdates: 512,
  /** Ecalls (or responses) in one message over the ecall channel. */
  maxEcallBatch: 1024,
  /** Pool size ceiling (executor plus watchdogs), as in the manager. */
  maxPoolSize: 16,
} as const
