// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {DevAttestationVerifier} from "../src/DevAttestationVerifier.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {EventKind, Phase} from "../src/PoseTypes.sol";
import {Vm} from "./utils/Test.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Fixture} from "./utils/Fixture.sol";

contract RegisterTest is Fixture {
    /// The manager must deploy on Ethereum: its runtime code stays within EIP-170's 24,576 bytes
    /// (forge does not enforce the limit; anvil and mainnet do).
    function test_runtimeCode_fitsEip170() public view {
        assertTrue(address(manager).code.length <= 24_576, "PoseManager runtime code exceeds EIP-170");
    }

    function test_register_succeeds() public {
        registerOperator(0);
        PoseManager.OperatorView memory v = manager.getOperator(operatorAddr(0));
        assertTrue(v.registered, "registered");
        assertEq(v.enclaveSigner, vm.addr(enclaveKey(0)), "signer");
        assertEq(v.stake, MIN_STAKE, "stake");
        assertEq(manager.operatorOfSigner(vm.addr(enclaveKey(0))), operatorAddr(0), "signer index");
        assertEq(manager.eligibleOperatorCount(), 1, "eligible");
        assertEq(address(manager).balance, MIN_STAKE, "stake held");
    }

    function test_register_twice_reverts() public {
        registerOperator(0);
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(9));
        bytes memory ev = evidence(op, signer, encKey(9), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_AlreadyRegistered.selector, op));
        manager.register{value: MIN_STAKE}(signer, encKey(9), "http://x", ev);
    }

    function test_register_stakeTooLow_reverts() public {
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StakeTooLow.selector, MIN_STAKE - 1, MIN_STAKE));
        manager.register{value: MIN_STAKE - 1}(signer, encKey(0), "http://x", ev);
    }

    function test_register_zeroKey_reverts() public {
        vm.deal(operatorAddr(0), MIN_STAKE);
        vm.prank(operatorAddr(0));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_InvalidKey.selector));
        manager.register{value: MIN_STAKE}(address(0), encKey(0), "http://x", "");
    }

    function test_register_signerInUse_reverts() public {
        registerOperator(0);
        address op = operatorAddr(1);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_SignerInUse.selector, signer, operatorAddr(0)));
        manager.register{value: MIN_STAKE}(signer, encKey(0), "http://x", ev);
    }

    function test_register_badEndpoint_reverts() public {
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadEndpoint.selector, 0));
        manager.register{value: MIN_STAKE}(signer, encKey(0), "", ev);
    }

    function test_register_wrongAuthority_reverts() public {
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, 0xBAD);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert(
            abi.encodeWithSelector(
                DevAttestationVerifier.DevAttestationVerifier_WrongAuthority.selector, vm.addr(0xBAD)
            )
        );
        manager.register{value: MIN_STAKE}(signer, encKey(0), "http://x", ev);
    }

    function test_register_evidenceForAnotherKey_reverts() public {
        // Evidence made for one encryption key cannot register another.
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert();
        manager.register{value: MIN_STAKE}(signer, encKey(1), "http://x", ev);
    }

    function test_register_measurementNotAllowed_reverts() public {
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes32 other = keccak256("other build");
        bytes memory ev = evidence(op, signer, encKey(0), other, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        vm.expectRevert(
            abi.encodeWithSelector(DevAttestationVerifier.DevAttestationVerifier_MeasurementNotAllowed.selector, other)
        );
        manager.register{value: MIN_STAKE}(signer, encKey(0), "http://x", ev);
    }

    function test_register_malformedEvidence_reverts() public {
        vm.deal(operatorAddr(0), MIN_STAKE);
        vm.prank(operatorAddr(0));
        vm.expectRevert(
            abi.encodeWithSelector(DevAttestationVerifier.DevAttestationVerifier_MalformedEvidence.selector)
        );
        manager.register{value: MIN_STAKE}(vm.addr(enclaveKey(0)), encKey(0), "http://x", hex"1234");
    }

    function test_setEndpoint_succeeds() public {
        registerOperator(0);
        vm.prank(operatorAddr(0));
        // The endpoint is only in the event (docs/decisions/0009): clients read the latest one.
        vm.expectEmit(true, false, false, true, address(manager));
        emit PoseManager.EndpointChanged(operatorAddr(0), "http://127.0.0.1:2");
        manager.setEndpoint("http://127.0.0.1:2");
    }

    function test_setEndpoint_tooLong_reverts() public {
        registerOperator(0);
        vm.prank(operatorAddr(0));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadEndpoint.selector, 257));
        manager.setEndpoint(string(new bytes(257)));
    }

    function test_register_stakeNotWholeGwei_reverts() public {
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE + 1);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StakeNotWholeGwei.selector, MIN_STAKE + 1));
        manager.register{value: MIN_STAKE + 1}(signer, encKey(0), "http://x", ev);
    }

    /// Stake is kept in gwei in 48 bits: up to 281,474.976710655 ether; more is refused, not truncated.
    function test_register_stakeAboveCap_reverts() public {
        address op = operatorAddr(0);
        address signer = vm.addr(enclaveKey(0));
        bytes memory ev = evidence(op, signer, encKey(0), MEASUREMENT, AUTHORITY_KEY);
        uint256 cap = uint256(type(uint48).max) * 1 gwei;
        vm.deal(op, cap + 1 gwei);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 48, cap / 1 gwei + 1));
        manager.register{value: cap + 1 gwei}(signer, encKey(0), "http://x", ev);
        vm.prank(op);
        manager.register{value: cap}(signer, encKey(0), "http://x", ev);
        assertEq(manager.getOperator(op).stake, cap, "largest stake kept exactly");
    }

    function test_constructor_stakeParamsNotWholeGwei_revert() public {
        PoseManager.Params memory p = PoseManager.Params({
            minStake: 1 ether + 1, creationFee: 0, challengeFee: 0, slashAmount: 1 gwei, delta: 60, exitDelay: 600
        });
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StakeNotWholeGwei.selector, 1 ether + 1));
        new PoseManager(verifier, p);
        p.minStake = 1 ether;
        p.slashAmount = 1;
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StakeNotWholeGwei.selector, 1));
        new PoseManager(verifier, p);
    }

    /// Clients and operators search the manager's logs from the block it was created in.
    function test_constructor_recordsDeploymentBlock() public {
        assertEq(manager.deploymentBlock(), block.number, "fixture's manager");
        vm.roll(block.number + 1234);
        PoseManager later = new PoseManager(verifier, params());
        assertEq(later.deploymentBlock(), block.number, "manager created later");
        assertEq(manager.deploymentBlock(), block.number - 1234, "unchanged by later blocks");
    }

    function test_setEndpoint_notRegistered_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotRegistered.selector, address(this)));
        manager.setEndpoint("http://x");
    }

    function testFuzz_register_anyKeys(uint256 key, bytes32 enc) public {
        key = bound(key);
        vm.assume(enc != bytes32(0));
        address op = operatorAddr(7);
        address signer = vm.addr(key);
        bytes memory ev = evidence(op, signer, enc, MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, MIN_STAKE);
        vm.prank(op);
        manager.register{value: MIN_STAKE}(signer, enc, "http://x", ev);
        assertEq(manager.getOperator(op).encryptionKey, enc, "key stored");
    }

    function bound(uint256 key) internal pure returns (uint256) {
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        return 1 + (key % (n - 1));
    }
}

contract InstanceTest is Fixture {
    function setUp() public override {
        super.setUp();
        for (uint256 i; i < 5; ++i) {
            registerOperator(i);
        }
    }

    function test_createContract_succeeds() public {
        vm.deal(address(this), FEE);
        uint256 id = manager.createContract{value: FEE}(2, keccak256("code"));
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(id, 1, "first id");
        assertTrue(v.phase == Phase.Drawing, "phase");
        assertEq(v.drawBlock, block.number + 1, "draw block");
        assertEq(v.eventIndex, 1, "created event");
        assertEq(
            v.eventHash,
            PoseDigests.nextEventHash(0, id, 1, 1, abi.encode(address(this), uint8(2), keccak256("code"))),
            "running hash"
        );
    }

    function test_createContract_wrongFee_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_WrongFee.selector, 0, FEE));
        manager.createContract(2, keccak256("code"));
    }

    function test_createContract_badWatchdogCount_reverts() public {
        vm.deal(address(this), FEE);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadWatchdogCount.selector, 16));
        manager.createContract{value: FEE}(16, keccak256("code"));
    }

    function test_drawPool_tooEarly_reverts() public {
        vm.deal(address(this), FEE);
        uint256 id = manager.createContract{value: FEE}(2, keccak256("code"));
        vm.roll(block.number + 1);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_DrawTooEarly.selector, id, block.number, block.number)
        );
        manager.drawPool(id);
    }

    function test_drawPool_succeeds_distinctMembers() public {
        uint256 id = createAndDraw(2);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Creating, "phase");
        assertEq(v.signers.length, 3, "pool size");
        for (uint256 i; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                assertTrue(v.operators[i] != v.operators[j], "distinct");
            }
            assertEq(manager.operatorOfSigner(v.signers[i]), v.operators[i], "signer of operator");
        }
    }

    function test_drawPool_twice_reverts() public {
        uint256 id = createAndDraw(1);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Creating, Phase.Drawing)
        );
        manager.drawPool(id);
    }

    function test_drawPool_notEnoughOperators_reverts() public {
        vm.deal(address(this), FEE);
        uint256 id = manager.createContract{value: FEE}(5, keccak256("code"));
        vm.roll(block.number + 2);
        vm.setBlockhash(block.number - 1, keccak256("seed"));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotEnoughOperators.selector, 5, 6));
        manager.drawPool(id);
    }

    function test_drawPool_expiredBlockhash_reschedules() public {
        vm.deal(address(this), FEE);
        uint256 id = manager.createContract{value: FEE}(1, keccak256("code"));
        vm.roll(block.number + 300);
        vm.setBlockhash(manager.getInstance(id).drawBlock, bytes32(0));
        manager.drawPool(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Drawing, "still drawing");
        assertEq(v.drawBlock, block.number + 1, "rescheduled");
    }

    function testFuzz_drawPool_membersDistinctAndRegistered(bytes32 seed, uint8 watchdogs) public {
        watchdogs = uint8(bound(watchdogs, 0, 4));
        vm.deal(address(this), FEE);
        uint256 id = manager.createContract{value: FEE}(watchdogs, keccak256("code"));
        vm.roll(block.number + 2);
        vm.setBlockhash(block.number - 1, seed == bytes32(0) ? bytes32(uint256(1)) : seed);
        manager.drawPool(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.operators.length, uint256(watchdogs) + 1, "size");
        for (uint256 i; i < v.operators.length; ++i) {
            assertTrue(manager.getOperator(v.operators[i]).registered, "registered");
            for (uint256 j = i + 1; j < v.operators.length; ++j) {
                assertTrue(v.operators[i] != v.operators[j], "distinct");
            }
        }
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + (x % (hi - lo + 1));
    }

    function activationSig(uint256 id, uint256 mask, uint64 index, uint256 key) internal view returns (bytes memory) {
        bytes32 digest = PoseDigests.activation(
            address(manager), id, keccak256("cek"), keccak256("genesis"), mask, index, manager.eventHashAt(id, index)
        );
        return sig(key, digest);
    }

    function test_activate_succeeds() public {
        uint256 id = createAndDraw(2);
        uint64 index = manager.getInstance(id).eventIndex;
        vm.recordLogs();
        manager.activate(
            id, keccak256("cek"), keccak256("genesis"), 7, index, activationSig(id, 7, index, slotKey(id, 0, 5))
        );
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Active, "active");
        assertEq(v.eventIndex, index + 1, "activated event");
        // The contract encryption key is not stored (docs/decisions/0005): users read it from
        // the Activated event, the only log of this call.
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "one log");
        assertEq(logs[0].topics[1], bytes32(id), "instance topic");
        assertEq(logs[0].topics[2], bytes32(uint256(index + 1)), "index topic");
        (uint8 kind, bytes memory data,) = abi.decode(logs[0].data, (uint8, bytes, bytes32));
        assertEq(kind, uint8(EventKind.Activated), "kind");
        (bytes32 cek, bytes32 genesis, uint256 acked) = abi.decode(data, (bytes32, bytes32, uint256));
        assertEq(cek, keccak256("cek"), "cek");
        assertEq(genesis, keccak256("genesis"), "genesis");
        assertEq(acked, 7, "acked");
    }

    function test_activate_dropsMembersThatDidNotAck() public {
        uint256 id = createAndDraw(2);
        uint64 index = manager.getInstance(id).eventIndex;
        manager.activate(
            id, keccak256("cek"), keccak256("genesis"), 3, index, activationSig(id, 3, index, slotKey(id, 0, 5))
        );
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.operators[2], address(0), "slot 2 removed");
        assertEq(v.eventIndex, index + 2, "activated + removed events");
    }

    function test_activate_byWatchdog_reverts() public {
        uint256 id = createAndDraw(2);
        uint64 index = manager.getInstance(id).eventIndex;
        uint256 key = slotKey(id, 1, 5);
        bytes memory s = activationSig(id, 7, index, key);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_BadSignature.selector, vm.addr(key), manager.getInstance(id).signers[0]
            )
        );
        manager.activate(id, keccak256("cek"), keccak256("genesis"), 7, index, s);
    }

    function test_activate_badAckedMask_reverts() public {
        uint256 id = createAndDraw(2);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadAckedMask.selector, 6));
        manager.activate(id, 0, 0, 6, 2, "");
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadAckedMask.selector, 15));
        manager.activate(id, 0, 0, 15, 2, "");
    }

    /// The executor's valid signature naming an event the manager has not emitted yet is
    /// refused by the index check: it is over the hash the unchecked ring would return for that
    /// index (an unwritten slot, zero).
    function test_activate_futureEventIndex_reverts() public {
        uint256 id = createAndDraw(2);
        bytes32 digest =
            PoseDigests.activation(address(manager), id, keccak256("cek"), keccak256("genesis"), 7, 9, bytes32(0));
        bytes memory signature = sig(slotKey(id, 0, 5), digest);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StaleEventIndex.selector, id, 9, 2));
        manager.activate(id, keccak256("cek"), keccak256("genesis"), 7, 9, signature);
    }

    /// P5: the executor's signature over an older event the manager remembers (the creation,
    /// before the pool was drawn) activates, as one over the latest does.
    function test_activate_olderRememberedEvent_succeeds() public {
        uint256 id = createAndDraw(2);
        assertEq(manager.getInstance(id).eventIndex, 2, "created and drawn");
        manager.activate(id, keccak256("cek"), keccak256("genesis"), 7, 1, activationSig(id, 7, 1, slotKey(id, 0, 5)));
        assertTrue(manager.getInstance(id).phase == Phase.Active, "active");
    }

    /// P5: an activation counts only with the executor enclave's signature over an event the
    /// manager remembers, whichever that is (the latest, an older one such as the creation, or
    /// index 0, the empty hash): any other pool member's or a registered enclave's outside the
    /// pool is refused, as is a future index with a valid signature, or a signature made for
    /// another index.
    function testFuzz_activate_onlyTheExecutorOverARememberedEvent(uint8 probe, uint8 signer, bool otherIndex) public {
        uint256 id = createAndDraw(2);
        uint64 latest = manager.getInstance(id).eventIndex;
        uint64 index = uint64(probe % (latest + 4));
        // Operators 0..4 are registered; index 5 is an enclave nobody registered.
        uint256 key = enclaveKey(signer % 6);
        // A signature made for another index names that index's hash (a future one: zero, what
        // its unwritten ring slot holds).
        uint64 signedIndex = otherIndex ? (index == 0 ? 1 : index - 1) : index;
        bytes32 signedHash = signedIndex <= latest ? manager.eventHashAt(id, signedIndex) : bytes32(0);
        bytes32 digest = PoseDigests.activation(
            address(manager), id, keccak256("cek"), keccak256("genesis"), 7, signedIndex, signedHash
        );
        address executor = manager.getInstance(id).signers[0];
        if (index > latest) {
            vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StaleEventIndex.selector, id, index, latest));
        } else if (otherIndex) {
            vm.expectRevert(); // BadSignature: the digest recovers to some other address
        } else if (vm.addr(key) != executor) {
            vm.expectRevert(
                abi.encodeWithSelector(PoseManager.PoseManager_BadSignature.selector, vm.addr(key), executor)
            );
        }
        manager.activate(id, keccak256("cek"), keccak256("genesis"), 7, index, sig(key, digest));
        bool accepted = index <= latest && vm.addr(key) == executor && !otherIndex;
        assertTrue((manager.getInstance(id).phase == Phase.Active) == accepted, "activated exactly when accepted");
    }

    function test_activate_wrongPhase_reverts() public {
        vm.deal(address(this), FEE);
        uint256 id = manager.createContract{value: FEE}(2, keccak256("code"));
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Drawing, Phase.Creating)
        );
        manager.activate(id, 0, 0, 7, 1, "");
    }

    function test_activate_replayOnAnotherInstance_reverts() public {
        uint256 a = createAndDraw(2);
        uint256 b = createAndDraw(2);
        uint64 index = manager.getInstance(a).eventIndex;
        bytes memory s = activationSig(a, 7, index, slotKey(a, 0, 5));
        vm.expectRevert();
        manager.activate(b, keccak256("cek"), keccak256("genesis"), 7, index, s);
    }
}
