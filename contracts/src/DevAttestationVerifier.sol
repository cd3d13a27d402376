// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IAttestationVerifier} from "./IAttestationVerifier.sol";

/// @title DevAttestationVerifier — INSECURE, for development only
/// @notice A dev attestation authority key signs enclave reports in place of a hardware vendor.
/// This proves nothing about hardware: anyone holding the authority key can register any key.
/// A production deployment uses a different verifier contract (not a runtime flag).
contract DevAttestationVerifier is IAttestationVerifier, Ownable {
    /// @notice The evidence is not `abi.encode(bytes32 measurement, bytes signature)`.
    error DevAttestationVerifier_MalformedEvidence();
    /// @notice The report was signed by `recovered`, not by the dev authority.
    error DevAttestationVerifier_WrongAuthority(address recovered);
    /// @notice The enclave's measurement is not on the allow list.
    error DevAttestationVerifier_MeasurementNotAllowed(bytes32 measurement);

    /// @notice Emitted when a measurement is allowed or disallowed.
    event MeasurementAllowed(bytes32 indexed measurement, bool allowed);

    /// @notice The dev attestation authority.
    address public immutable authority;
    /// @notice Enclave builds (keccak256 of the bundle) accepted for registration.
    mapping(bytes32 => bool) public allowedMeasurements;

    constructor(address authority_, bytes32[] memory measurements) Ownable(msg.sender) {
        authority = authority_;
        for (uint256 i; i < measurements.length; ++i) {
            allowedMeasurements[measurements[i]] = true;
            emit MeasurementAllowed(measurements[i], true);
        }
    }

    /// @notice Allows or disallows an enclave measurement.
    function setMeasurement(bytes32 measurement, bool allowed) external onlyOwner {
        allowedMeasurements[measurement] = allowed;
        emit MeasurementAllowed(measurement, allowed);
    }

    /// @notice The report hash a dev quote signs (SPEC §3).
    function reportHash(
        uint256 chainId,
        address manager,
        bytes32 measurement,
        address enclaveSigner,
        bytes32 encryptionKey,
        address operator
    ) public pure returns (bytes32) {
        return keccak256(
            abi.encode("POSE-ATTEST-v1", chainId, manager, measurement, enclaveSigner, encryptionKey, operator)
        );
    }

    /// @inheritdoc IAttestationVerifier
    function verify(bytes calldata evidence, address enclaveSigner, bytes32 encryptionKey, address operator)
        external
        view
        returns (bytes32 measurement)
    {
        if (evidence.length < 128) revert DevAttestationVerifier_MalformedEvidence();
        bytes memory signature;
        (measurement, signature) = abi.decode(evidence, (bytes32, bytes));
        if (signature.length != 65) revert DevAttestationVerifier_MalformedEvidence();
        bytes32 digest = reportHash(block.chainid, msg.sender, measurement, enclaveSigner, encryptionKey, operator);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != authority) {
            revert DevAttestationVerifier_WrongAuthority(recovered);
        }
        if (!allowedMeasurements[measurement]) revert DevAttestationVerifier_MeasurementNotAllowed(measurement);
    }
}
