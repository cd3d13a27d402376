// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DevAttestationVerifier} from "../../src/DevAttestationVerifier.sol";
import {PoseDigests} from "../../src/PoseDigests.sol";
import {PoseManager} from "../../src/PoseManager.sol";
import {Test} from "./Test.sol";

/// @notice A manager with a dev verifier and helpers to register attested enclaves.
abstract contract Fixture is Test {
    uint256 internal constant AUTHORITY_KEY = 0xA11CE;
    bytes32 internal constant MEASUREMENT = keccak256("enclave bundle");
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant FEE = 0.001 ether;
    uint256 internal constant CHALLENGE_FEE = 0.01 ether;
    uint256 internal constant SLASH = 0.5 ether;
    uint64 internal constant DELTA = 60;
    uint64 internal constant EXIT_DELAY = 600;

    DevAttestationVerifier internal verifier;
    PoseManager internal manager;

    function setUp() public virtual {
        bytes32[] memory allowed = new bytes32[](1);
        allowed[0] = MEASUREMENT;
        verifier = new DevAttestationVerifier(vm.addr(AUTHORITY_KEY), allowed);
        manager = new PoseManager(verifier, params());
    }

    function params() internal pure returns (PoseManager.Params memory) {
        return PoseManager.Params({
            minStake: MIN_STAKE,
            creationFee: FEE,
            challengeFee: CHALLENGE_FEE,
            slashAmount: SLASH,
            delta: DELTA,
            exitDelay: EXIT_DELAY
        });
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

    /// @notice Registers `operators` operators and returns an active instance with `watchdogs`.
    function activeInstance(uint256 operators_, uint8 watchdogs) internal returns (uint256 id) {
        for (uint256 i; i < operators_; ++i) {
            registerOperator(i);
        }
        id = createAndDraw(watchdogs);
        activateAll(id, watchdogs, operators_);
    }

    function activateAll(uint256 id, uint8 watchdogs, uint256 operators_) internal {
        uint64 index = manager.getInstance(id).eventIndex;
        uint256 mask = (1 << (uint256(watchdogs) + 1)) - 1;
        bytes32 eventHash = manager.eventHashAt(id, index);
        bytes32 digest = PoseDigests.activation(
            address(manager), id, keccak256("cek"), keccak256("genesis"), mask, index, eventHash
        );
        uint256 key = slotKey(id, 0, operators_);
        manager.activate(id, keccak256("cek"), keccak256("genesis"), mask, index, sig(key, digest));
    }

    /// @notice What the manager holds outside instances while no payout, slash or challenge is
    /// outstanding: the stakes of operators `0..operators_-1` and every creation fee.
    function stakesAndFees(uint256 operators_) internal view returns (uint256 sum) {
        for (uint256 i; i < operators_; ++i) {
            sum += manager.getOperator(operatorAddr(i)).stake;
        }
        sum += FEE * manager.instanceCount();
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
