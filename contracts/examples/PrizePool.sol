// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PrizePool
/// @notice An example POSE dapp that holds users' coins and pays them out by rule: players
/// enter with a fixed stake; when the round is full, one of them wins the whole pot. Inside a
/// POSE instance `block.prevrandao` comes from enclave randomness and the entries are private,
/// so nobody can predict or bias the draw. Winners withdraw through the system contract. The
/// host may close the pool: open entries are refunded and the instance terminates, after which
/// everyone withdraws their final balance on-chain.
contract PrizePool {
    /// @notice The entry must be exactly `entry`.
    error PrizePool_WrongEntry(uint256 sent, uint256 entry);
    /// @notice Only the host may close the pool.
    error PrizePool_NotHost(address caller);

    /// @notice `player` entered round `round`.
    event Entered(uint256 indexed round, address indexed player);
    /// @notice `winner` won `pot` in round `round`.
    event Won(uint256 indexed round, address indexed winner, uint256 pot);

    /// @notice The pool closed; `refunded` entries of the open round were returned.
    event Closed(uint256 round, uint256 refunded);

    /// @notice The POSE system contract (SPEC §5) at its reserved address.
    address internal constant SYSTEM = 0x0000000000000000000000000000000000005053;

    address public immutable host;
    uint256 public immutable entry;
    uint256 public immutable players;
    uint256 public round;
    address[] internal entrants;

    constructor(uint256 entry_, uint256 players_) {
        host = msg.sender;
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

    /// @notice Ends the game: refunds the open round's entrants, then terminates the instance.
    function close() external {
        if (msg.sender != host) revert PrizePool_NotHost(msg.sender);
        uint256 n = entrants.length;
        address[] memory refund = entrants;
        delete entrants;
        emit Closed(round, n);
        for (uint256 i; i < n; ++i) {
            payable(refund[i]).transfer(entry);
        }
        IPoseSystem(SYSTEM).terminate();
    }

    /// @notice Entrants of the current round so far.
    function entered() external view returns (uint256) {
        return entrants.length;
    }
}

/// @notice The part of the POSE system contract a dapp calls to end its instance.
interface IPoseSystem {
    function terminate() external;
}
