// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {EventKind, Phase} from "../src/PoseTypes.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Test.sol";

/// @notice `terminate` and `withdrawFinal` (SPEC §4 Coins): final balances signed by the
/// executor, paid against their Merkle root, never more than was deposited.
contract TerminationTest is Fixture {
    uint256 internal constant OPS = 5;
    uint256 internal id;
    address internal alice = address(0xA11);
    address internal bob = address(0xB0B);

    function setUp() public override {
        super.setUp();
        id = activeInstance(OPS, 2);
        vm.deal(alice, 100 ether);
        vm.prank(alice);
        manager.deposit{value: 5 ether}(id);
    }

    function leaf(address account, uint256 cumulative) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
    }

    /// Two leaves: the root is their commutative hash, each proof the other leaf.
    function finalBalances(uint256 a, uint256 b)
        internal
        view
        returns (bytes32 root, address[] memory accounts, uint256[] memory amounts)
    {
        accounts = new address[](2);
        amounts = new uint256[](2);
        (accounts[0], accounts[1], amounts[0], amounts[1]) = (alice, bob, a, b);
        root = Hashes.commutativeKeccak256(leaf(alice, a), leaf(bob, b));
    }

    /// The whole final balances as one page.
    function one(bytes32 root, address[] memory accounts, uint256[] memory amounts)
        internal
        pure
        returns (PoseManager.FinalBalances memory)
    {
        return PoseManager.FinalBalances(root, 0, 1, accounts, amounts);
    }

    /// The signature of slot `slot`'s enclave over page `b` at the latest event.
    function signPage(uint256 slot, PoseManager.FinalBalances memory b)
        internal
        view
        returns (uint64 index, bytes memory s)
    {
        return signPageBy(slotKey(id, slot, OPS), b);
    }

    /// The signature of the enclave key `key` over page `b` at the latest event.
    function signPageBy(uint256 key, PoseManager.FinalBalances memory b)
        internal
        view
        returns (uint64 index, bytes memory s)
    {
        index = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.terminate(
            address(manager),
            id,
            b.root,
            (b.pages << 16) | b.page,
            keccak256(abi.encode(b.root, b.accounts, b.cumulatives)),
            index,
            manager.eventHashAt(id, index)
        );
        s = sig(key, d);
    }

    function signTermination(uint256 slot, bytes32 root, address[] memory accounts, uint256[] memory amounts)
        internal
        view
        returns (uint64 index, bytes memory s)
    {
        return signPage(slot, one(root, accounts, amounts));
    }

    function withdrawBob(uint256 cumulative) internal returns (bool ok) {
        uint64 wi = manager.getInstance(id).eventIndex;
        bytes32 wd = PoseDigests.withdraw(address(manager), id, bob, cumulative, wi, manager.eventHashAt(id, wi));
        try manager.withdraw(id, bob, cumulative, wi, sig(slotKey(id, 0, OPS), wd)) {
            ok = true;
        } catch {}
    }

    /// Terminates with final balances (alice `a`, bob `b`) signed by the executor.
    function terminateWith(uint256 a, uint256 b) internal returns (bool ok) {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(a, b);
        (uint64 index, bytes memory s) = signTermination(0, root, accounts, amounts);
        try manager.terminate(id, one(root, accounts, amounts), index, s) {
            ok = true;
        } catch {}
    }

    function proofFor(bytes32 sibling) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](1);
        p[0] = sibling;
    }

    function test_terminate_releasesPool_paysFinalBalancesOnce() public {
        // bob already took 1 ether out with an ordinary authorisation.
        assertTrue(withdrawBob(1 ether), "ordinary withdrawal");
        PoseManager.InstanceView memory before = manager.getInstance(id);
        assertTrue(terminateWith(3 ether, 2 ether), "terminated by the executor");
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(3 ether, 2 ether);
        uint64 index = before.eventIndex;

        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Terminated, "terminated");
        assertEq(v.eventIndex, index + 1, "one event");
        assertEq(
            v.eventHash,
            PoseDigests.nextEventHash(before.eventHash, id, index + 1, 14, abi.encode(root, accounts, amounts)),
            "hash"
        );
        assertEq(manager.finalRoot(id), root, "root stored");
        for (uint256 i; i < before.operators.length; ++i) {
            assertEq(v.operators[i], address(0), "slot released");
            assertEq(manager.getOperator(before.operators[i]).memberships, 0, "membership ended");
        }

        // bob gets the rest of his final 2 ether, alice her 3; replays pay nothing.
        manager.withdrawFinal(id, bob, 2 ether, proofFor(leaf(alice, 3 ether)));
        assertEq(bob.balance, 2 ether, "bob final");
        uint256 aliceBefore = alice.balance;
        manager.withdrawFinal(id, alice, 3 ether, proofFor(leaf(bob, 2 ether)));
        assertEq(alice.balance - aliceBefore, 3 ether, "alice final");
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_NothingToWithdraw.selector, id, alice, 3 ether, 3 ether)
        );
        manager.withdrawFinal(id, alice, 3 ether, proofFor(leaf(bob, 2 ether)));
        (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
        assertEq(withdrawn, deposited, "instance emptied");
        assertEq(address(manager).balance, stakesAndFees(OPS), "nothing held for the instance");

        // The instance takes no more coins; a released operator can leave with its stake.
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Terminated, Phase.Active)
        );
        vm.prank(alice);
        manager.deposit{value: 1}(id);
        address op = before.operators[0];
        vm.prank(op);
        manager.requestExit();
        vm.warp(block.timestamp + EXIT_DELAY + 1);
        vm.prank(op);
        manager.withdrawStake();
        assertEq(manager.getOperator(op).stake, 0, "stake withdrawn");
    }

    /// A member's authorisation signed before termination still pays once its pool is released.
    function test_withdraw_byReleasedMember_afterTermination() public {
        uint64 wi = manager.getInstance(id).eventIndex;
        bytes32 wd = PoseDigests.withdraw(address(manager), id, bob, 1 ether, wi, manager.eventHashAt(id, wi));
        bytes memory s = sig(slotKey(id, 1, OPS), wd);
        assertTrue(terminateWith(3 ether, 2 ether), "terminated");
        manager.withdraw(id, bob, 1 ether, wi, s);
        assertEq(bob.balance, 1 ether, "paid on a released watchdog's authorisation");
        manager.withdrawFinal(id, bob, 2 ether, proofFor(leaf(alice, 3 ether)));
        assertEq(bob.balance, 2 ether, "the final balance pays only the rest");
    }

    function test_terminate_twice_reverts() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(1, 2);
        (uint64 index, bytes memory s) = signTermination(0, root, accounts, amounts);
        manager.terminate(id, one(root, accounts, amounts), index, s);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Terminated, Phase.Active)
        );
        manager.terminate(id, one(root, accounts, amounts), index, s);
    }

    function test_terminate_moreThanDeposited_reverts() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(3 ether, 2 ether + 1);
        (uint64 index, bytes memory s) = signTermination(0, root, accounts, amounts);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_FinalBalancesExceedHeld.selector, id, 5 ether + 1, 5 ether)
        );
        manager.terminate(id, one(root, accounts, amounts), index, s);
    }

    function test_terminate_depositAfterSigning_reverts() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(1, 2);
        (uint64 index, bytes memory s) = signTermination(0, root, accounts, amounts);
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_TerminationNotLatest.selector, id, index, index + 1)
        );
        manager.terminate(id, one(root, accounts, amounts), index, s);
    }

    function test_terminate_byWatchdog_reverts() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(1, 2);
        (uint64 index, bytes memory s) = signTermination(1, root, accounts, amounts);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_BadSignature.selector, v.signers[1], v.signers[0])
        );
        manager.terminate(id, one(root, accounts, amounts), index, s);
    }

    function test_terminate_leavesNotSigned_reverts() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(1, 2);
        (uint64 index, bytes memory s) = signTermination(0, root, accounts, amounts);
        amounts[1] = 3;
        vm.expectRevert();
        manager.terminate(id, one(root, accounts, amounts), index, s);
    }

    function test_terminate_lengthMismatch_reverts() public {
        (bytes32 root, address[] memory accounts,) = finalBalances(1, 2);
        uint256[] memory amounts = new uint256[](1);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadFinalBalances.selector, 2, 1));
        manager.terminate(id, one(root, accounts, amounts), 0, "");
    }

    function test_withdrawFinal_beforeTermination_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Active, Phase.Terminated)
        );
        manager.withdrawFinal(id, bob, 1, new bytes32[](0));
    }

    function test_withdrawFinal_wrongAmountOrProof_reverts() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(3 ether, 2 ether);
        (uint64 index, bytes memory s) = signTermination(0, root, accounts, amounts);
        manager.terminate(id, one(root, accounts, amounts), index, s);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotInFinalBalances.selector, id, bob, 3 ether));
        manager.withdrawFinal(id, bob, 3 ether, proofFor(leaf(alice, 3 ether)));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotInFinalBalances.selector, id, bob, 2 ether));
        manager.withdrawFinal(id, bob, 2 ether, proofFor(keccak256("other")));
    }

    /// Three pages of one account each (alice, bob, carol) of the tree ((alice, bob), carol).
    function threePages(uint256 a, uint256 b, uint256 c)
        internal
        view
        returns (PoseManager.FinalBalances[3] memory pages, bytes32[3] memory leaves)
    {
        address carol = address(0xCA201);
        leaves = [leaf(alice, a), leaf(bob, b), leaf(carol, c)];
        bytes32 root = Hashes.commutativeKeccak256(Hashes.commutativeKeccak256(leaves[0], leaves[1]), leaves[2]);
        address[3] memory who = [alice, bob, carol];
        uint256[3] memory amount = [a, b, c];
        for (uint256 i; i < 3; ++i) {
            address[] memory accounts = new address[](1);
            uint256[] memory amounts = new uint256[](1);
            (accounts[0], amounts[0]) = (who[i], amount[i]);
            pages[i] = PoseManager.FinalBalances(root, i, 3, accounts, amounts);
        }
    }

    /// A copy (memory structs are references).
    function copyOf(PoseManager.FinalBalances memory b) internal pure returns (PoseManager.FinalBalances memory) {
        return PoseManager.FinalBalances(b.root, b.page, b.pages, b.accounts, b.cumulatives);
    }

    function submit(PoseManager.FinalBalances memory b) internal {
        (uint64 index, bytes memory s) = signPage(0, b);
        manager.terminate(id, b, index, s);
    }

    function test_terminate_inPages_anyOrder_paysOnlyOnceTheLastIsIn() public {
        (PoseManager.FinalBalances[3] memory pages, bytes32[3] memory leaves) = threePages(1 ether, 2 ether, 1 ether);
        vm.expectEmit(true, true, true, true, address(manager));
        emit PoseManager.FinalBalancesPage(id, 2, abi.encode(pages[2].root, pages[2].accounts, pages[2].cumulatives));
        submit(pages[2]);
        submit(pages[0]);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Active, "not terminated before its last page");
        assertEq(manager.finalRoot(id), pages[0].root, "the root is fixed");
        bytes32[] memory proof = new bytes32[](2);
        (proof[0], proof[1]) = (leaves[0], leaves[2]);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Active, Phase.Terminated)
        );
        manager.withdrawFinal(id, bob, 2 ether, proof);
        // Deposits are closed: the final balances' first page is in.
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_Terminating.selector, id));
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        // A page already in, a page out of range, other final balances: refused.
        (uint64 index, bytes memory s) = signPage(0, pages[0]);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadFinalPage.selector, 0, 3));
        manager.terminate(id, pages[0], index, s);
        PoseManager.FinalBalances memory beyond = copyOf(pages[1]);
        beyond.page = 3;
        (index, s) = signPage(0, beyond);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadFinalPage.selector, 3, 3));
        manager.terminate(id, beyond, index, s);
        PoseManager.FinalBalances memory other = copyOf(pages[1]);
        other.root = keccak256("other");
        (index, s) = signPage(0, other);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_OtherFinalBalances.selector, id, other.root, 3));
        manager.terminate(id, other, index, s);
        other = copyOf(pages[1]);
        other.pages = 4;
        (index, s) = signPage(0, other);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_OtherFinalBalances.selector, id, other.root, 4));
        manager.terminate(id, other, index, s);
        // The last page terminates; each leaf is paid once.
        submit(pages[1]);
        assertTrue(manager.getInstance(id).phase == Phase.Terminated, "terminated");
        manager.withdrawFinal(id, bob, 2 ether, proof);
        assertEq(bob.balance, 2 ether, "bob paid");
        vm.expectRevert();
        manager.withdrawFinal(id, bob, 2 ether, proof);
        proof = new bytes32[](1);
        proof[0] = Hashes.commutativeKeccak256(leaves[0], leaves[1]);
        manager.withdrawFinal(id, address(0xCA201), 1 ether, proof);
        assertEq(address(0xCA201).balance, 1 ether, "carol paid");
    }

    /// Once the contract ended, a page answers an open executor challenge (decision 0030): its
    /// operator earns the fee, the challenge closes with an (empty) response, and the next page
    /// names the event after it. Past the deadline no page answers and the executor is timed out.
    function test_terminate_pageAnswersAnOpenExecutorChallenge() public {
        (PoseManager.FinalBalances[3] memory pages,) = threePages(1 ether, 2 ether, 1 ether);
        address executorOp = manager.getInstance(id).operators[0];
        vm.prank(alice);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        uint64 challengedAt = manager.getInstance(id).eventIndex;
        uint256 before = manager.payouts(executorOp);
        vm.recordLogs();
        submit(pages[0]);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        (uint8 kind, bytes memory data,) = abi.decode(logs[1].data, (uint8, bytes, bytes32));
        assertEq(kind, uint8(EventKind.ExecutorResponded), "the fee, then the response, then the page");
        assertEq(abi.decode(data, (bytes)).length, 0, "an empty response: the page is in its own event");
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Active, "the challenge is answered");
        assertEq(v.eventIndex, challengedAt + 1, "one response event");
        assertEq(manager.payouts(executorOp) - before, CHALLENGE_FEE, "the executor's operator earns the fee");
        // A second challenge, answered by the last page: the response, then the termination.
        vm.prank(alice);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        submit(pages[1]);
        assertEq(manager.payouts(executorOp) - before, 2 * CHALLENGE_FEE, "each answer earns its fee");
        vm.prank(alice);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        vm.warp(manager.getInstance(id).challengeDeadline + 1);
        (uint64 index, bytes memory s) = signPage(0, pages[2]);
        vm.expectRevert();
        manager.terminate(id, pages[2], index, s);
        manager.executorTimeout(id);
        assertTrue(manager.getInstance(id).executorSlot != 0, "the executor was replaced");
    }

    /// Once the first page is in, the rest may name any remembered event: pages signed together
    /// before a challenge and its answer still go in (decision 0030). The first may not.
    function test_terminate_laterPagesNameAnyRememberedEvent() public {
        (PoseManager.FinalBalances[3] memory pages,) = threePages(1 ether, 2 ether, 1 ether);
        uint64[3] memory at;
        bytes[3] memory sigs;
        for (uint256 i; i < 3; ++i) {
            (at[i], sigs[i]) = signPage(0, pages[i]);
        }
        // Another event before the first page: the first page must name the latest.
        vm.prank(alice);
        manager.deposit{value: 1 ether}(id);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_TerminationNotLatest.selector, id, at[0], at[0] + 1)
        );
        manager.terminate(id, pages[0], at[0], sigs[0]);
        (at[0], sigs[0]) = signPage(0, pages[0]);
        manager.terminate(id, pages[0], at[0], sigs[0]);
        // A challenge and its answer between pages: the pages signed before them still count.
        vm.prank(alice);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d =
            PoseDigests.respond(address(manager), id, keccak256("answer"), index, manager.eventHashAt(id, index));
        manager.respondExecutor(id, "answer", index, sig(slotKey(id, 0, OPS), d));
        manager.terminate(id, pages[1], at[1], sigs[1]);
        manager.terminate(id, pages[2], at[2], sigs[2]);
        assertTrue(manager.getInstance(id).phase == Phase.Terminated, "terminated");
    }

    /// The executor is replaced between two pages: its successor signs the rest at the latest
    /// event; the old executor's signature no longer counts; a page already in stays counted once.
    function test_terminate_executorReplacedMidPublication_successorFinishes() public {
        (PoseManager.FinalBalances[3] memory pages, bytes32[3] memory leaves) = threePages(1 ether, 2 ether, 1 ether);
        submit(pages[0]);
        uint256 oldKey = slotKey(id, 0, OPS);
        address oldSigner = manager.getInstance(id).signers[0];
        // The executor goes silent: challenged, timed out, the lowest live watchdog promoted.
        vm.deal(alice, 100 ether);
        vm.prank(alice);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d =
            PoseDigests.respond(address(manager), id, keccak256("answer"), index, manager.eventHashAt(id, index));
        manager.respondExecutor(id, "answer", index, sig(slotKey(id, 1, OPS), d));
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Active && v.executorSlot == 1, "slot 1 executes");
        // The old executor's page, even at the latest event, is not the executor's any more.
        (uint64 at, bytes memory oldSig) = signPageBy(oldKey, pages[1]);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadSignature.selector, oldSigner, v.signers[1]));
        manager.terminate(id, pages[1], at, oldSig);
        // The successor computes the same pages: page 0 is in already, the rest complete the set.
        bytes memory signature;
        (index, signature) = signPage(1, pages[0]);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadFinalPage.selector, 0, 3));
        manager.terminate(id, pages[0], index, signature);
        for (uint256 i = 1; i < 3; ++i) {
            (index, signature) = signPage(1, pages[i]);
            manager.terminate(id, pages[i], index, signature);
        }
        assertTrue(manager.getInstance(id).phase == Phase.Terminated, "terminated");
        bytes32[] memory proof = new bytes32[](2);
        (proof[0], proof[1]) = (leaves[1], leaves[2]);
        manager.withdrawFinal(id, alice, 1 ether, proof);
    }

    function test_terminate_pagesOutOfRange_revert() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(1, 2);
        uint256[3] memory counts = [uint256(0), 129, 2];
        uint256[3] memory indexes = [uint256(0), 0, 2];
        for (uint256 i; i < 3; ++i) {
            PoseManager.FinalBalances memory b =
                PoseManager.FinalBalances(root, indexes[i], counts[i], accounts, amounts);
            (uint64 index, bytes memory s) = signPage(0, b);
            vm.expectRevert(
                abi.encodeWithSelector(PoseManager.PoseManager_BadFinalPage.selector, indexes[i], counts[i])
            );
            manager.terminate(id, b, index, s);
        }
    }

    /// Two full pages (1,024 accounts each): their gas is what
    /// `forge test --isolate --gas-report --match-test test_terminate_fullPages` reports.
    function test_terminate_fullPages() public {
        address[] memory accounts = new address[](1024);
        uint256[] memory amounts = new uint256[](1024);
        for (uint256 i; i < 1024; ++i) {
            (accounts[i], amounts[i]) = (address(uint160(0x10000 + i)), 1);
        }
        bytes32 root = keccak256("two full pages");
        submit(PoseManager.FinalBalances(root, 0, 2, accounts, amounts));
        submit(PoseManager.FinalBalances(root, 1, 2, accounts, amounts));
        assertTrue(manager.getInstance(id).phase == Phase.Terminated, "terminated");
    }

    function test_terminate_mostPages_taken() public {
        (bytes32 root, address[] memory accounts, uint256[] memory amounts) = finalBalances(1, 2);
        submit(PoseManager.FinalBalances(root, 127, 128, accounts, amounts));
        assertTrue(manager.getInstance(id).phase == Phase.Active, "127 pages to come");
    }

    function test_terminate_pagesPromisingMoreThanDeposited_revert() public {
        (PoseManager.FinalBalances[3] memory pages,) = threePages(2 ether, 2 ether, 1 ether + 1);
        submit(pages[0]);
        submit(pages[1]);
        (uint64 index, bytes memory s) = signPage(0, pages[2]);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_FinalBalancesExceedHeld.selector, id, 5 ether + 1, 5 ether)
        );
        manager.terminate(id, pages[2], index, s);
    }

    function test_terminate_pageSignedForAnotherPageOrInstance_reverts() public {
        (PoseManager.FinalBalances[3] memory pages,) = threePages(1, 2, 3);
        (uint64 index, bytes memory s) = signPage(0, pages[1]);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        // Page 1's signature does not pass for page 0's leaves under page 1's number, nor as page 0.
        PoseManager.FinalBalances memory moved = copyOf(pages[1]);
        moved.page = 0;
        vm.expectRevert();
        manager.terminate(id, moved, index, s);
        vm.expectRevert();
        manager.terminate(id, pages[0], index, s);
        assertEq(manager.getInstance(id).eventIndex, v.eventIndex, "nothing happened");
    }

    /// Whatever final balances an executor signs, payouts never exceed deposits.
    function testFuzz_terminate_neverPaysMoreThanDeposited(uint96 a, uint96 b, uint96 earlier) public {
        withdrawBob(earlier);
        if (terminateWith(a, b)) {
            try manager.withdrawFinal(id, alice, a, proofFor(leaf(bob, b))) {} catch {}
            try manager.withdrawFinal(id, bob, b, proofFor(leaf(alice, a))) {} catch {}
        } else {
            assertTrue(uint256(a) + b > 5 ether, "only over-promising terminations revert");
        }
        (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
        assertTrue(withdrawn <= deposited, "solvent");
        assertTrue(address(manager).balance >= deposited - withdrawn, "held is backed");
    }
}
