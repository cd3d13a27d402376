// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

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
