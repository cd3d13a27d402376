// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PoseSystem
/// @notice The reserved system contract inside every POSE world (SPEC §5), placed at
/// 0x…5053 at genesis. Native coins in the world are deposited coins; sending them here with
/// `withdraw()` burns them and raises the sender's cumulative withdrawal, which a member enclave
/// then authorises on the manager. The enclave itself writes `lastCreditedEvent` when it credits
/// deposits, so every member agrees on which deposits were credited.
contract PoseSystem {
    /// @notice The instance's own contract address inside the world.
    address internal constant INSTANCE = 0x000000000000000000000000000000000000c0DE;

    /// @notice Cumulative amount each account has withdrawn (slot 0).
    mapping(address => uint256) public withdrawn;
    /// @notice Index of the last manager event whose deposit was credited (slot 1).
    uint256 public lastCreditedEvent;
    /// @notice Whether the instance ended itself (slot 2).
    bool public terminated;

    /// @notice Only the instance contract may terminate the instance.
    error PoseSystem_NotInstance(address caller);
    /// @notice A withdrawal of nothing.
    error PoseSystem_ZeroWithdrawal();

    /// @notice `account` withdrew `amount`; its cumulative withdrawal is now `cumulative`.
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 cumulative);
    /// @notice The instance terminated.
    event Terminated();

    /// @notice Withdraws `msg.value` for the caller: the coins leave the world.
    function withdraw() external payable {
        if (msg.value == 0) revert PoseSystem_ZeroWithdrawal();
        uint256 cumulative = withdrawn[msg.sender] + msg.value;
        withdrawn[msg.sender] = cumulative;
        emit WithdrawalRequested(msg.sender, msg.value, cumulative);
    }

    /// @notice The caller's native balance in the world (only its own: balances are private).
    function balance() external view returns (uint256) {
        return msg.sender.balance;
    }

    /// @notice Ends the instance; callable only by the instance contract.
    function terminate() external {
        if (msg.sender != INSTANCE) revert PoseSystem_NotInstance(msg.sender);
        terminated = true;
        emit Terminated();
    }
}
