// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PrizePool
/// @notice An example POSE dapp that holds users' coins and pays them out by rule: players
/// enter with a fixed stake; when the round is full, one of them wins the whole pot. Inside a
/// POSE instance `block.prevrandao` comes from enclave randomness and the entries are private,
/// so nobody can predict or bias the draw. Winners withdraw through the system contract.
contract PrizePool {
    /// @notice The entry must be exactly `entry`.
    error PrizePool_WrongEntry(uint256 sent, uint256 entry);

    /// @notice `player` entered round `round`.
    event Entered(uint256 indexed round, address indexed player);
    /// @notice `winner` won `pot` in round `round`.
    event Won(uint256 indexed round, address indexed winner, uint256 pot);

    uint256 public immutable entry;
    uint256 public immutable players;
    uint256 public round;
    address[] internal entrants;

    constructor(uint256 entry_, uint256 players_) {
        entry = entry_;
        players = players_;
    }

    /// @notice Enters the current round; the last entrant triggers the draw and the payout.
    function enter() external payable {
        if (msg.value != entry) revert PrizePool_WrongEntry(msg.value, entry);
        entrants.push(msg.sender);
        emit Entered(round, msg.sender);
        if (entrants.length < players) return;
        address winner = entrants[block.prevrandao % players];
        uint256 pot = address(this).balance;
        delete entrants;
        emit Won(round, winner, pot);
        ++round;
        payable(winner).transfer(pot);
    }

    /// @notice Entrants of the current round so far.
    function entered() external view returns (uint256) {
        return entrants.length;
    }
}
