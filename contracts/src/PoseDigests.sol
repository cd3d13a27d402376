// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PoseDigests
/// @notice The digests enclaves sign for the manager, and one step of the running event hash.
/// Each digest binds the chain, the manager and the instance, and names a running-hash point
/// (`eventIndex`, `eventHash`) the manager still remembers. `src/protocol/messages.ts` computes
/// the same values; `contracts/test/Vectors.t.sol` and `test/unit/vectors.test.ts` pin both.
/// @dev Internal functions, so they cost the manager no bytecode beyond its own uses.
library PoseDigests {
    /// @notice The digest the executor enclave signs in `activate`.
    function activation(
        address manager,
        uint256 id,
        bytes32 contractEncryptionKey,
        bytes32 genesisDigest,
        uint256 ackedMask,
        uint64 eventIndex,
        bytes32 eventHash
    ) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                "POSE-ACTIVATE-v1",
                block.chainid,
                manager,
                id,
                contractEncryptionKey,
                genesisDigest,
                ackedMask,
                eventIndex,
                eventHash
            )
        );
    }

    /// @notice The digest an executor enclave signs to answer a challenge.
    function respond(address manager, uint256 id, bytes32 responseHash, uint64 eventIndex, bytes32 eventHash)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode("POSE-RESPOND-v1", block.chainid, manager, id, responseHash, eventIndex, eventHash));
    }

    /// @notice The digest a watchdog enclave signs to answer a watchdog challenge.
    function watchdogResponse(address manager, uint256 id, uint8 slot, uint64 eventIndex, bytes32 eventHash)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode("POSE-WATCHDOG-v1", block.chainid, manager, id, slot, eventIndex, eventHash));
    }

    /// @notice The digest a member enclave signs to authorise a withdrawal.
    function withdraw(
        address manager,
        uint256 id,
        address recipient,
        uint256 cumulativeAmount,
        uint64 eventIndex,
        bytes32 eventHash
    ) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                "POSE-WITHDRAW-v1", block.chainid, manager, id, recipient, cumulativeAmount, eventIndex, eventHash
            )
        );
    }

    /// @notice The digest the executor enclave signs for a page of final balances in
    /// `terminate`: `page` is the page count << 16 | the page's index, `leavesHash` the page's.
    function terminate(
        address manager,
        uint256 id,
        bytes32 root,
        uint256 page,
        bytes32 leavesHash,
        uint64 eventIndex,
        bytes32 eventHash
    ) internal view returns (bytes32) {
        return keccak256(
            abi.encode("POSE-TERMINATE-v2", block.chainid, manager, id, root, page, leavesHash, eventIndex, eventHash)
        );
    }

    /// @notice One step of the running hash: what enclaves recompute from the events.
    function nextEventHash(bytes32 prev, uint256 id, uint64 index, uint8 kind, bytes memory data)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(prev, id, index, kind, keccak256(data)));
    }
}
