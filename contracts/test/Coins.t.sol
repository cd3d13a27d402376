// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {Phase} from "../src/PoseTypes.sol";
import {Fixture} from "./utils/Fixture.sol";

contract CoinsTest is Fixture {
    uint256 internal constant OPS = 5;
    uint256 internal id;
    address internal alice = address(0xA11);
    address internal bob = address(0xB0B);

    function setUp() public override {
        super.setUp();
        id = activeInstance(OPS, 2);
        vm.deal(alice, 100 ether);
    }

    function authorise(uint256 slot, address recipient, uint256 cumulative)
        internal
        view
        returns (uint64, bytes memory)
    {
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d =
            PoseDigests.withdraw(address(manager), id, recipient, cumulative, index, manager.eventHashAt(id, index));
        return (index, sig(slotKey(id, slot, OPS), d));
    }

    function test_deposit_succeeds_extendsRunningHash() public {
        uint64 before = manager.getInstance(id).eventIndex;
        vm.prank(alice);
        manager.deposit{value: 3 ether}(id);
        (uint256 deposited,) = manager.balanceOfInstance(id);
        assertEq(deposited, 3 ether, "deposited");
        assertEq(address(manager).balance - stakesAndFees(OPS), 3 ether, "held by the manager");
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.eventIndex, before + 1, "deposit event");
        assertEq(
            v.eventHash,
            PoseDigests.nextEventHash(manager.eventHashAt(id, before), id, before + 1, 5, abi.encode(alice, 3 ether)),
            "hash"
        );
    }

    function test_deposit_zero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_ZeroDeposit.selector));
        manager.deposit(id);
    }

    function test_deposit_notLive_reverts() public {
        vm.deal(address(this), FEE);
        uint256 other = manager.createContract{value: FEE}(1, keccak256("code"));
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, other, Phase.Drawing, Phase.Active)
        );
        manager.deposit{value: 1}(other);
    }

    function test_withdraw_paysDifference_once() public {
        vm.prank(alice);
        manager.deposit{value: 5 ether}(id);
        (uint64 i1, bytes memory s1) = authorise(0, bob, 2 ether);
        manager.withdraw(id, bob, 2 ether, i1, s1);
        assertEq(bob.balance, 2 ether, "first payment");
        // The same authorisation again pays nothing.
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_NothingToWithdraw.selector, id, bob, 2 ether, 2 ether)
        );
        manager.withdraw(id, bob, 2 ether, i1, s1);
        // A newer, higher cumulative authorisation pays the difference.
        (uint64 i2, bytes memory s2) = authorise(0, bob, 3 ether);
        manager.withdraw(id, bob, 3 ether, i2, s2);
        assertEq(bob.balance, 3 ether, "difference paid");
        // An older authorisation after a newer one pays nothing more.
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_NothingToWithdraw.selector, id, bob, 2 ether, 3 ether)
        );
        manager.withdraw(id, bob, 2 ether, i1, s1);
    }

    function test_withdraw_byFormerMember_afterReplacement() public {
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        (uint64 index, bytes memory s) = authorise(0, bob, 1 ether);
        // The executor is replaced (timed out); its earlier authorisation still pays.
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, "");
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        manager.withdraw(id, bob, 1 ether, index, s);
        assertEq(bob.balance, 1 ether, "paid");
    }

    function test_deposit_beyondUint96_reverts() public {
        uint256 huge = uint256(type(uint96).max) + 1;
        vm.deal(alice, huge);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 96, huge));
        manager.deposit{value: huge}(id);
    }

    function test_withdraw_byWatchdog_succeeds() public {
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        (uint64 index, bytes memory s) = authorise(2, bob, 1 ether);
        manager.withdraw(id, bob, 1 ether, index, s);
        assertEq(bob.balance, 1 ether, "paid on a watchdog's authorisation");
    }

    function test_withdraw_byEnclaveOutsideThePool_reverts() public {
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        address[] memory pool = manager.getInstance(id).signers;
        uint256 outsider;
        for (uint256 i; i < OPS && outsider == 0; ++i) {
            bool inPool;
            for (uint256 j; j < pool.length; ++j) {
                if (pool[j] == vm.addr(enclaveKey(i))) inPool = true;
            }
            if (!inPool) outsider = enclaveKey(i);
        }
        assertTrue(outsider != 0, "a registered enclave outside the pool");
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.withdraw(address(manager), id, bob, 1 ether, index, manager.eventHashAt(id, index));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotAMember.selector, id, vm.addr(outsider)));
        manager.withdraw(id, bob, 1 ether, index, sig(outsider, d));
    }

    function test_withdraw_forged_reverts() public {
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.withdraw(address(manager), id, bob, 1 ether, index, manager.eventHashAt(id, index));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotAMember.selector, id, vm.addr(0xBAD)));
        manager.withdraw(id, bob, 1 ether, index, sig(0xBAD, d));
    }

    function test_withdraw_insolvent_reverts() public {
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        (uint64 index, bytes memory s) = authorise(0, bob, 2 ether);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_Insolvent.selector, id, 2 ether, 1 ether));
        manager.withdraw(id, bob, 2 ether, index, s);
    }

    function test_withdraw_staleIndex_reverts() public {
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_StaleEventIndex.selector, id, 999, manager.getInstance(id).eventIndex
            )
        );
        manager.withdraw(id, bob, 1 ether, 999, "");
    }

    /// P16: a cumulative authorisation pays only its difference, once: replayed, or older and
    /// smaller than one already paid, it pays nothing, also while the instance holds the coins
    /// to pay it again (other users' deposits). Either order of the two authorisations.
    function testFuzz_withdraw_replayedOrOlderAuthorisationPaysNothing(
        uint96 first,
        uint96 second,
        uint8 slots,
        bool olderFirst
    ) public {
        uint256 older = 1 + uint256(first) % 10 ether;
        uint256 newer = older + 1 + uint256(second) % 10 ether;
        (uint64 i1, bytes memory s1) = authorise(slots % 3, bob, older);
        // Coins for three times the newer amount: a replay would find them.
        vm.deal(alice, 3 * newer);
        vm.prank(alice);
        manager.deposit{value: 3 * newer}(id);
        (uint64 i2, bytes memory s2) = authorise((slots >> 2) % 3, bob, newer);
        if (olderFirst) {
            manager.withdraw(id, bob, older, i1, s1);
            assertEq(bob.balance, older, "older paid");
            // The same authorisation again pays nothing.
            vm.expectRevert(
                abi.encodeWithSelector(PoseManager.PoseManager_NothingToWithdraw.selector, id, bob, older, older)
            );
            manager.withdraw(id, bob, older, i1, s1);
        }
        manager.withdraw(id, bob, newer, i2, s2);
        assertEq(bob.balance, newer, "the newer authorisation pays only its difference");
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_NothingToWithdraw.selector, id, bob, newer, newer)
        );
        manager.withdraw(id, bob, newer, i2, s2);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_NothingToWithdraw.selector, id, bob, older, newer)
        );
        manager.withdraw(id, bob, older, i1, s1);
        assertEq(bob.balance, newer, "paid once");
        assertEq(manager.withdrawnBy(id, bob), newer, "counted as withdrawn");
        (, uint256 withdrawn) = manager.balanceOfInstance(id);
        assertEq(withdrawn, newer, "withdrawn from the instance");
    }

    function testFuzz_withdraw_neverMoreThanDeposited(uint96 dep, uint96[4] calldata cumulatives) public {
        vm.assume(dep > 0);
        vm.deal(alice, dep);
        vm.prank(alice);
        manager.deposit{value: dep}(id);
        uint256 paidTotal;
        for (uint256 k; k < 4; ++k) {
            address r = k % 2 == 0 ? bob : alice;
            (uint64 index, bytes memory s) = authorise(k % 3, r, cumulatives[k]);
            uint256 before = r.balance;
            try manager.withdraw(id, r, cumulatives[k], index, s) {
                paidTotal += r.balance - before;
            } catch {}
        }
        (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
        assertEq(withdrawn, paidTotal, "withdrawn equals what was paid");
        assertTrue(withdrawn <= deposited, "solvent");
    }
}
