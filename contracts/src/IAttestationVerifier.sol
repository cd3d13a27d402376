// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAttestationVerifier
/// @notice Checks TEE attestation evidence at registration (SPEC §3). Evidence must bind
/// `keccak256(abi.encode("POSE-ATTEST-v1", chainId, manager, measurement, enclaveSigner,
/// encryptionKey, operator))`, where `manager` is the caller.
interface IAttestationVerifier {
    /// @notice Verifies `evidence` for an enclave and returns its measurement; reverts if invalid.
    function verify(bytes calldata evidence, address enclaveSigner, bytes32 encryptionKey, address operator)
        external
        view
        returns (bytes32 measurement);
}
