// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Protocol constants of PoseManager, at file level so that tests and other contracts read them
// without a getter each in the manager's code (EIP-170 leaves it little room).

// Number of recent running-hash values kept per instance.
uint64 constant EVENT_HISTORY = 32;
// Most accounts a page of final balances may list (their leaves travel in calldata).
uint256 constant MAX_FINAL_ACCOUNTS = 1024;
// Watchdog challenge rounds an executor may start while itself challenged.
uint8 constant MAX_WATCHDOG_ROUNDS = 2;
// Longest payload of a challenge, in bytes: a user's largest request box (128 KiB). Every
// member's enclave takes the payload into its chain view and seals it; a longer one could be an
// event no enclave takes in, stopping every operator's chain feed.
uint256 constant MAX_CHALLENGE_PAYLOAD = 128 * 1024;

/// @notice Lifecycle of a POSE instance (SPEC §4).
enum Phase {
    None,
    Drawing,
    Creating,
    Active,
    ExecutorChallenged,
    WatchdogsChallenged,
    Frozen,
    Terminated
}

/// @notice Kinds of the per-instance running-hash events; enclaves decode `data` by kind.
enum EventKind {
    None,
    Created,
    PoolDrawn,
    Activated,
    MemberRemoved,
    Deposit,
    Withdrawal,
    ExecutorChallenged,
    ExecutorResponded,
    ExecutorTimedOut,
    WatchdogsChallenged,
    WatchdogResponded,
    WatchdogChallengeFinalized,
    Refilled,
    Terminated
}
