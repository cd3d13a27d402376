// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DevAttestationVerifier} from "../../src/DevAttestationVerifier.sol";
import {PoseManager} from "../../src/PoseManager.sol";
import {Test} from "./Test.sol";

/// @notice A manager with a dev verifier and helpers to register attested enclaves.
abstract contract Fixture is Test {
    uint256 internal constant AUTHORITY_KEY = 0xA11CE;
    bytes32 internal constant MEASUREMENT = keccak256("enclave bundle");
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant FEE = 0.001 ether;

    DevAttestationVerifier internal verifier;
    PoseManager internal manager;

    function setUp() public virtual {
        bytes32[] memory allowed = new bytes32[](1);
        allowed[0] = MEASUREMENT;
        verifier = new DevAttestationVerifier(vm.addr(AUTHORITY_KEY), allowed);
        manager = new PoseManager(verifier, MIN_STAKE, FEE, 60, 600);
    }

    function operatorAddr(uint256 i) internal pure returns (address) {
        return address(uint160(0x1000 + i));
    }

    function enclaveKey(uint256 i) internal pure returns (uint256) {
        return 0xE0000 + i;
    }

    function encKey(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("enc", i));
    }

    function evidence(address operator, address signer, bytes32 enc, bytes32 measurement, uint256 authority)
        internal
        view
        returns (bytes memory)
    {
        bytes32 digest = verifier.reportHash(block.chainid, address(manager), measurement, signer, enc, operator);
        return abi.encode(measurement, sig(authority, digest));
    }

    function registerOperator(uint256 i) internal {
        address op = operatorAddr(i);
        address signer = vm.addr(enclaveKey(i));
        bytes memory ev = evidence(op, signer, encKey(i), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        manager.register{value: MIN_STAKE}(signer, encKey(i), "http://127.0.0.1:1", ev);
    }

    function createAndDraw(uint8 watchdogs) internal returns (uint256 id) {
        vm.deal(address(this), FEE);
        id = manager.createContract{value: FEE}(watchdogs, keccak256("code"));
        vm.roll(block.number + 2);
        vm.setBlockhash(block.number - 1, keccak256(abi.encode("seed", id)));
        manager.drawPool(id);
    }

    /// @notice The private key of the enclave in `slot` of instance `id`.
    function slotKey(uint256 id, uint256 slot, uint256 registered) internal view returns (uint256) {
        address signer = manager.getInstance(id).signers[slot];
        for (uint256 i; i < registered; ++i) {
            if (vm.addr(enclaveKey(i)) == signer) return enclaveKey(i);
        }
        revert("slot key not found");
    }
}
