// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {MAX_CHALLENGE_PAYLOAD, MAX_WATCHDOG_ROUNDS, Phase} from "../src/PoseTypes.sol";
import {Fixture} from "./utils/Fixture.sol";

contract LivenessTest is Fixture {
    uint256 internal constant OPS = 5;
    uint256 internal id;
    address internal user = address(0xBEEF);

    function setUp() public override {
        super.setUp();
        id = activeInstance(OPS, 2);
        vm.deal(user, 10 ether);
    }

    function challenge() internal {
        vm.prank(user);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
    }

    function respond(uint256 slot, uint64 index) internal {
        bytes32 d =
            PoseDigests.respond(address(manager), id, keccak256("answer"), index, manager.eventHashAt(id, index));
        manager.respondExecutor(id, "answer", index, sig(slotKey(id, slot, OPS), d));
    }

    function opOf(uint256 slot) internal view returns (address) {
        return manager.getInstance(id).operators[slot];
    }

    // ------------------------------------------------------------ challengeExecutor

    function test_challengeExecutor_succeeds() public {
        uint256 held = address(manager).balance;
        challenge();
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.ExecutorChallenged, "phase");
        assertEq(v.challenger, user, "challenger");
        assertEq(v.challengeDeadline, block.timestamp + DELTA, "deadline");
        assertEq(address(manager).balance - held, CHALLENGE_FEE, "fee held");
    }

    function test_challengeExecutor_wrongFee_reverts() public {
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_WrongFee.selector, 1, CHALLENGE_FEE));
        manager.challengeExecutor{value: 1}(id, "");
    }

    function test_challengeExecutor_twice_reverts() public {
        challenge();
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.ExecutorChallenged, Phase.Active
            )
        );
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, "");
    }

    // ------------------------------------------------------------ respondExecutor

    function test_respondExecutor_succeeds_paysFee() public {
        challenge();
        respond(0, manager.getInstance(id).eventIndex);
        assertTrue(manager.getInstance(id).phase == Phase.Active, "active again");
        assertEq(manager.payouts(opOf(0)), CHALLENGE_FEE, "fee to the responding operator");
    }

    function test_respondExecutor_staleIndex_reverts() public {
        // An operator that hid the challenge from its enclave only has a signature over an
        // older event: rejected.
        uint64 before = manager.getInstance(id).eventIndex;
        challenge();
        bytes32 d =
            PoseDigests.respond(address(manager), id, keccak256("answer"), before, manager.eventHashAt(id, before));
        bytes memory s = sig(slotKey(id, 0, OPS), d);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_ResponseTooOld.selector, id, before, before + 1));
        manager.respondExecutor(id, "answer", before, s);
    }

    function depositMany(uint256 n) internal {
        for (uint256 k; k < n; ++k) {
            vm.prank(user);
            manager.deposit{value: 1}(id);
        }
    }

    /// `n` claims of one wei each (the coins deposited beforehand), each authorised by the
    /// executor enclave at the latest event: events anyone holding authorisations adds while the
    /// executor is challenged, when deposits are refused.
    function claimMany(uint256 n) internal {
        for (uint256 k; k < n; ++k) {
            uint64 index = manager.getInstance(id).eventIndex;
            bytes32 d = PoseDigests.withdraw(address(manager), id, user, k + 1, index, manager.eventHashAt(id, index));
            manager.withdraw(id, user, k + 1, index, sig(slotKey(id, 0, OPS), d));
        }
    }

    /// The manager takes no deposit while the executor is challenged (decision 0030, addendum).
    function test_deposit_refusedWhileTheExecutorIsChallenged() public {
        challenge();
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.ExecutorChallenged, Phase.Active
            )
        );
        manager.deposit{value: 1}(id);
    }

    /// Members see events only after their operators' confirmations; the events others add
    /// meanwhile (claims) must not push the challenge's own event out of reach of the answer
    /// that names it (decision 0024).
    function test_respondExecutor_namingTheChallenge_afterMoreEventsThanTheHistory() public {
        vm.prank(user);
        manager.deposit{value: 40}(id);
        challenge();
        uint64 c = manager.getInstance(id).eventIndex;
        bytes32 h = manager.eventHashAt(id, c);
        claimMany(40);
        assertEq(manager.eventHashAt(id, c), h, "the challenge's event is kept");
        // Any other forgotten event stays forgotten.
        uint64 latest = manager.getInstance(id).eventIndex;
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StaleEventIndex.selector, id, c + 1, latest));
        manager.eventHashAt(id, c + 1);
        respond(0, c);
        assertTrue(manager.getInstance(id).phase == Phase.Active, "answered");
    }

    function test_respondWatchdog_namingTheChallenge_afterMoreEventsThanTheHistory() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, hex"ab");
        uint64 c = manager.getInstance(id).eventIndex;
        depositMany(40);
        bytes32 d = PoseDigests.watchdogResponse(address(manager), id, 1, c, manager.eventHashAt(id, c));
        manager.respondWatchdog(id, 1, c, sig(slotKey(id, 1, OPS), d));
        vm.warp(block.timestamp + DELTA + 1);
        manager.finalizeWatchdogChallenge(id);
        assertTrue(opOf(1) != address(0), "the watchdog that answered stays");
    }

    /// A new challenge 32 events after a closed one keeps nothing for the closed one.
    function test_eventHashAt_keepsNothingForAClosedChallenge() public {
        challenge();
        uint64 c = manager.getInstance(id).eventIndex;
        respond(0, c);
        depositMany(30);
        assertEq(manager.getInstance(id).eventIndex, c + 31, "the next challenge is event c + 32");
        challenge();
        respond(0, manager.getInstance(id).eventIndex);
        depositMany(2);
        uint64 latest = manager.getInstance(id).eventIndex;
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StaleEventIndex.selector, id, c, latest));
        manager.eventHashAt(id, c);
    }

    /// Outside an open challenge nothing is kept: the history is the last 32 events.
    function test_eventHashAt_keepsNothingWithoutAnOpenChallenge() public {
        uint64 before = manager.getInstance(id).eventIndex;
        depositMany(40);
        uint64 latest = manager.getInstance(id).eventIndex;
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StaleEventIndex.selector, id, before, latest));
        manager.eventHashAt(id, before);
    }

    function test_respondExecutor_byWatchdog_reverts() public {
        challenge();
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d =
            PoseDigests.respond(address(manager), id, keccak256("answer"), index, manager.eventHashAt(id, index));
        uint256 key = slotKey(id, 1, OPS);
        bytes memory s = sig(key, d);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_BadSignature.selector, vm.addr(key), manager.getInstance(id).signers[0]
            )
        );
        manager.respondExecutor(id, "answer", index, s);
    }

    function test_respondExecutor_afterDeadline_reverts() public {
        challenge();
        uint64 deadline = manager.getInstance(id).challengeDeadline;
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_DeadlinePassed.selector, id, deadline, deadline + 1)
        );
        manager.respondExecutor(id, "answer", 0, "");
    }

    function test_respondExecutor_notChallenged_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Active, Phase.ExecutorChallenged
            )
        );
        manager.respondExecutor(id, "answer", 0, "");
    }

    // ------------------------------------------------------------ executorTimeout

    function test_executorTimeout_promotesSlashesRewards() public {
        address executorOp = opOf(0);
        challenge();
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.operators[0], address(0), "executor removed");
        assertEq(v.executorSlot, 1, "lowest live watchdog promoted");
        assertTrue(v.phase == Phase.ExecutorChallenged, "challenge continues");
        assertEq(v.challengeDeadline, block.timestamp + DELTA, "fresh deadline");
        assertEq(manager.getOperator(executorOp).stake, MIN_STAKE - SLASH, "slashed");
        assertEq(manager.payouts(user), SLASH / 2, "challenger rewarded");
        // The promoted executor answers; the challenger's fee goes to it.
        respond(1, manager.getInstance(id).eventIndex);
        assertEq(manager.payouts(opOf(1)), CHALLENGE_FEE, "fee to the new executor");
    }

    function test_executorTimeout_beforeDeadline_reverts() public {
        challenge();
        uint64 deadline = manager.getInstance(id).challengeDeadline;
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_DeadlineNotPassed.selector, id, deadline, block.timestamp)
        );
        manager.executorTimeout(id);
    }

    function test_executorTimeout_lastMember_freezesAndRefunds() public {
        challenge();
        for (uint256 k; k < 3; ++k) {
            vm.warp(block.timestamp + DELTA + 1);
            manager.executorTimeout(id);
        }
        assertTrue(manager.getInstance(id).phase == Phase.Frozen, "frozen");
        assertEq(manager.payouts(user), 3 * (SLASH / 2) + CHALLENGE_FEE, "rewards and refund");
    }

    /// The last member leaving while the executor is challenged freezes the instance; nobody is
    /// left to answer, so the challenger gets its fee back instead of it staying in the manager.
    function test_leave_lastMemberDuringChallenge_freezesAndRefunds() public {
        challenge();
        for (uint256 slot = 3; slot > 0; --slot) {
            address op = opOf(slot - 1);
            vm.prank(op);
            manager.requestExit();
            vm.prank(op);
            manager.leave(id);
        }
        assertTrue(manager.getInstance(id).phase == Phase.Frozen, "frozen");
        assertEq(manager.payouts(user), CHALLENGE_FEE, "fee refunded");
        uint256 before = user.balance;
        vm.prank(user);
        manager.claim();
        assertEq(user.balance - before, CHALLENGE_FEE, "refund claimed");
    }

    function test_executorTimeout_notChallenged_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Active, Phase.ExecutorChallenged
            )
        );
        manager.executorTimeout(id);
    }

    // ------------------------------------------------------------ watchdog challenges

    function test_challengeWatchdogs_respond_finalize() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 6, hex"ab");
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.phase == Phase.WatchdogsChallenged, "phase");
        uint64 index = v.eventIndex;
        bytes32 d = PoseDigests.watchdogResponse(address(manager), id, 1, index, manager.eventHashAt(id, index));
        manager.respondWatchdog(id, 1, index, sig(slotKey(id, 1, OPS), d));
        address silent = opOf(2);
        vm.warp(block.timestamp + DELTA + 1);
        manager.finalizeWatchdogChallenge(id);
        v = manager.getInstance(id);
        assertTrue(v.phase == Phase.Active, "active");
        assertTrue(v.operators[1] != address(0), "responsive watchdog kept, not slashed");
        assertEq(manager.getOperator(v.operators[1]).stake, MIN_STAKE, "responsive watchdog not slashed");
        assertEq(v.operators[2], address(0), "silent watchdog removed");
        assertEq(manager.getOperator(silent).stake, MIN_STAKE - SLASH, "silent watchdog slashed");
        assertEq(manager.payouts(opOf(0)), 0, "the executor's operator gets nothing for a watchdog's slash");
    }

    function test_challengeWatchdogs_notExecutorOperator_reverts() public {
        address watchdog = opOf(1);
        address exec = opOf(0);
        vm.prank(watchdog);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotAllowed.selector, watchdog, exec));
        manager.challengeWatchdogs(id, 4, "");
    }

    function test_challengeWatchdogs_badMask_reverts() public {
        address exec = opOf(0);
        vm.prank(exec);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadMemberMask.selector, 1));
        manager.challengeWatchdogs(id, 1, "");
        vm.prank(exec);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadMemberMask.selector, 8));
        manager.challengeWatchdogs(id, 8, "");
    }

    function test_challengeWatchdogs_whileOpen_reverts() public {
        address exec = opOf(0);
        vm.prank(exec);
        manager.challengeWatchdogs(id, 2, "");
        vm.prank(exec);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.WatchdogsChallenged, Phase.Active
            )
        );
        manager.challengeWatchdogs(id, 4, "");
    }

    function test_challengeWatchdogs_whileChallenged_boundedRounds() public {
        challenge();
        address exec = opOf(0);
        uint64 deadline = manager.getInstance(id).challengeDeadline;
        for (uint256 r; r < MAX_WATCHDOG_ROUNDS; ++r) {
            vm.prank(exec);
            manager.challengeWatchdogs(id, 2, "");
            bytes32 d = PoseDigests.watchdogResponse(
                address(manager), id, 1, manager.getInstance(id).eventIndex, manager.getInstance(id).eventHash
            );
            manager.respondWatchdog(id, 1, manager.getInstance(id).eventIndex, sig(slotKey(id, 1, OPS), d));
            vm.warp(block.timestamp + DELTA + 1);
            manager.finalizeWatchdogChallenge(id);
        }
        assertEq(
            manager.getInstance(id).challengeDeadline, deadline + 2 * DELTA, "deadline extended by at most 2 rounds"
        );
        vm.prank(exec);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_TooManyWatchdogRounds.selector, id, 2));
        manager.challengeWatchdogs(id, 2, "");
    }

    function test_challengeWatchdogs_openWhileExecutorChallenged_reverts() public {
        address exec = opOf(0);
        vm.prank(exec);
        manager.challengeWatchdogs(id, 2, "");
        challenge();
        vm.prank(exec);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_WatchdogChallengeState.selector, id, true));
        manager.challengeWatchdogs(id, 4, "");
    }

    /// Simulator seed 159 (second run): the executor's watchdog challenge was open when a user
    /// challenged the executor a moment later, so both deadlines were Δ from nearly the same time.
    /// The executor, waiting for its silent watchdog's removal to serve again, was timed out just
    /// after that removal. Its Δ now counts from its open round's deadline.
    function test_challengeExecutor_duringWatchdogChallenge_deadlineAfterIt() public {
        address exec = opOf(0);
        vm.prank(exec);
        manager.challengeWatchdogs(id, 2, hex"ab");
        uint64 watchdogDeadline = manager.getInstance(id).watchdogDeadline;
        vm.warp(block.timestamp + 3);
        challenge();
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.challengeDeadline, watchdogDeadline + DELTA, "executor deadline follows the watchdog round");
        // The silent watchdog is removed after its deadline; the executor still has Δ to answer.
        vm.warp(watchdogDeadline + 1);
        manager.finalizeWatchdogChallenge(id);
        assertEq(manager.getInstance(id).operators[1], address(0), "silent watchdog removed");
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_DeadlineNotPassed.selector, id, v.challengeDeadline, block.timestamp
            )
        );
        manager.executorTimeout(id);
        respond(0, manager.getInstance(id).eventIndex);
        assertTrue(manager.getInstance(id).phase == Phase.Active, "answered in time");
    }

    function test_challengeExecutor_afterWatchdogDeadlinePassed_deltaFromNow() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, hex"ab");
        vm.warp(manager.getInstance(id).watchdogDeadline + 10);
        challenge();
        assertEq(manager.getInstance(id).challengeDeadline, block.timestamp + DELTA, "never earlier than now + delta");
    }

    function test_challengeExecutor_duringWatchdogChallenge_oneRoundLeft() public {
        address exec = opOf(0);
        vm.prank(exec);
        manager.challengeWatchdogs(id, 2, hex"ab");
        challenge();
        vm.warp(manager.getInstance(id).watchdogDeadline + 1);
        manager.finalizeWatchdogChallenge(id);
        // The open round counted as one: one more is left to the executor, not two.
        vm.prank(exec);
        manager.challengeWatchdogs(id, 4, hex"ab");
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.watchdogResponse(address(manager), id, 2, index, manager.eventHashAt(id, index));
        manager.respondWatchdog(id, 2, index, sig(slotKey(id, 2, OPS), d));
        vm.warp(manager.getInstance(id).watchdogDeadline + 1);
        manager.finalizeWatchdogChallenge(id);
        vm.prank(exec);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_TooManyWatchdogRounds.selector, id, 2));
        manager.challengeWatchdogs(id, 4, hex"ab");
    }

    /// A review found: an executor challenged by an accomplice opened a round on a silent
    /// watchdog and left in the same block; the promoted member's Δ ended with that round, which
    /// it could neither extend nor outlast, so it was timed out and slashed although honest. Its
    /// Δ now counts from the round's deadline, and the round counts as one of its rounds (the
    /// code `challengeExecutor` uses: test_challengeExecutor_duringWatchdogChallenge_oneRoundLeft).
    function test_promotedDuringOpenRound_deltaAfterTheRound() public {
        address exec = opOf(0);
        address w1 = opOf(1);
        vm.prank(exec);
        manager.requestExit();
        challenge();
        vm.prank(exec);
        manager.challengeWatchdogs(id, 1 << 2, hex"02");
        vm.prank(exec);
        manager.leave(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.executorSlot, 1, "slot 1 promoted");
        assertEq(v.watchdogMask, 1 << 2, "slot 2 still in the round");
        assertEq(v.challengeDeadline, v.watchdogDeadline + DELTA, "delta after the round");
        // The silent watchdog is removed after its deadline; the promoted member still has Δ.
        vm.warp(v.watchdogDeadline + 1);
        manager.finalizeWatchdogChallenge(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_DeadlineNotPassed.selector, id, v.challengeDeadline, block.timestamp
            )
        );
        manager.executorTimeout(id);
        uint256 stake = manager.getOperator(w1).stake;
        respond(1, manager.getInstance(id).eventIndex);
        assertTrue(manager.getInstance(id).phase == Phase.Active, "answered in time");
        assertEq(manager.getOperator(w1).stake, stake, "not slashed");
    }

    /// A review found: an executor past its deadline, not yet timed out, opened a watchdog round,
    /// which moved its deadline Δ on and revived it. A round now needs the deadline not passed.
    function test_challengeWatchdogs_afterExecutorDeadline_reverts() public {
        challenge();
        uint64 deadline = manager.getInstance(id).challengeDeadline;
        vm.warp(deadline + 1);
        vm.prank(opOf(0));
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_DeadlinePassed.selector, id, deadline, block.timestamp)
        );
        manager.challengeWatchdogs(id, 1 << 2, hex"02");
        manager.executorTimeout(id);
    }

    function test_claim_rejectingReceiver_reverts() public {
        // A challenger contract that refuses ETH cannot claim; its credit is kept, nothing is lost.
        Rejecter r = new Rejecter();
        vm.deal(address(r), 1 ether);
        vm.prank(address(r));
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, "");
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        uint256 owed = manager.payouts(address(r));
        assertEq(owed, SLASH / 2, "credited");
        vm.prank(address(r));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_TransferFailed.selector, address(r), owed));
        manager.claim();
        assertEq(manager.payouts(address(r)), owed, "credit kept");
    }

    function test_respondWatchdog_notChallenged_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotChallenged.selector, id, 1));
        manager.respondWatchdog(id, 1, 0, "");
    }

    function test_respondWatchdog_staleIndex_reverts() public {
        uint64 before = manager.getInstance(id).eventIndex;
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, "");
        bytes32 d = PoseDigests.watchdogResponse(address(manager), id, 1, before, manager.eventHashAt(id, before));
        bytes memory s = sig(slotKey(id, 1, OPS), d);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_ResponseTooOld.selector, id, before, before + 1));
        manager.respondWatchdog(id, 1, before, s);
    }

    function test_respondWatchdog_wrongSigner_reverts() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, "");
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.watchdogResponse(address(manager), id, 1, index, manager.eventHashAt(id, index));
        uint256 key = slotKey(id, 2, OPS);
        bytes memory s = sig(key, d);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_BadSignature.selector, vm.addr(key), manager.getInstance(id).signers[1]
            )
        );
        manager.respondWatchdog(id, 1, index, s);
    }

    function test_respondWatchdog_afterDeadline_reverts() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, "");
        uint64 deadline = manager.getInstance(id).watchdogDeadline;
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_DeadlinePassed.selector, id, deadline, deadline + 1)
        );
        manager.respondWatchdog(id, 1, 0, "");
    }

    function test_finalizeWatchdogChallenge_none_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_WatchdogChallengeState.selector, id, false));
        manager.finalizeWatchdogChallenge(id);
    }

    function test_finalizeWatchdogChallenge_early_reverts() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, "");
        uint64 deadline = manager.getInstance(id).watchdogDeadline;
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_DeadlineNotPassed.selector, id, deadline, block.timestamp)
        );
        manager.finalizeWatchdogChallenge(id);
    }

    // ------------------------------------------------------------ refill

    function removeSlot2() internal {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 4, "");
        vm.warp(block.timestamp + DELTA + 1);
        manager.finalizeWatchdogChallenge(id);
    }

    function test_refill_drawsNewDistinctMember() public {
        removeSlot2();
        address[] memory before = manager.getInstance(id).operators;
        manager.refill(id);
        uint64 at = manager.getInstance(id).refillBlock;
        assertEq(at, block.number + 1, "scheduled");
        vm.roll(at + 1);
        vm.setBlockhash(at, keccak256("refill seed"));
        manager.refill(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertTrue(v.operators[2] != address(0), "filled");
        assertTrue(v.operators[2] != before[0] && v.operators[2] != before[1], "not a current member");
        assertEq(v.refillBlock, 0, "done");
    }

    function test_promotion_prefersLongestServingMember() public {
        // The executor (slot 0) times out and slot 0 is refilled with a fresh member.
        challenge();
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        respond(1, manager.getInstance(id).eventIndex);
        manager.refill(id);
        vm.roll(block.number + 2);
        vm.setBlockhash(block.number - 1, keccak256("refill"));
        manager.refill(id);
        assertTrue(opOf(0) != address(0), "slot 0 refilled");
        // The executor at slot 1 goes: slot 2 (an original member) takes over, not fresh slot 0.
        challenge();
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        assertEq(manager.getInstance(id).executorSlot, 2, "longest-serving member promoted");
    }

    function test_refill_tooEarly_reverts() public {
        removeSlot2();
        manager.refill(id);
        uint64 at = manager.getInstance(id).refillBlock;
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_DrawTooEarly.selector, id, at, block.number));
        manager.refill(id);
    }

    function test_refill_nobodyToDraw_reverts() public {
        removeSlot2();
        // Every operator outside the pool stops being drawable.
        address[] memory members = manager.getInstance(id).operators;
        for (uint256 i; i < OPS; ++i) {
            address op = operatorAddr(i);
            if (op == members[0] || op == members[1] || op == members[2]) continue;
            vm.prank(op);
            manager.requestExit();
        }
        manager.refill(id);
        uint64 at = manager.getInstance(id).refillBlock;
        vm.roll(at + 1);
        vm.setBlockhash(at, keccak256("refill seed"));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NothingToDraw.selector, id));
        manager.refill(id);
        assertEq(manager.getInstance(id).operators[2], address(0), "still empty");
    }

    function test_refill_full_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NothingToRefill.selector, id));
        manager.refill(id);
    }

    // ------------------------------------------------------------ exit

    function test_exit_leave_withdraw() public {
        address exec = opOf(0);
        vm.prank(exec);
        manager.requestExit();
        assertEq(manager.eligibleOperatorCount(), OPS - 1, "no longer drawn");
        vm.prank(exec);
        manager.leave(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.executorSlot, 1, "handed over to the lowest watchdog");
        assertEq(manager.getOperator(exec).memberships, 0, "no memberships");
        vm.warp(block.timestamp + EXIT_DELAY);
        uint256 before = exec.balance;
        vm.prank(exec);
        manager.withdrawStake();
        assertEq(exec.balance - before, MIN_STAKE, "stake paid, unslashed");
        assertEq(manager.getOperator(exec).stake, 0, "stake record emptied");
    }

    function test_withdrawStake_early_reverts() public {
        address op = opOf(1);
        vm.prank(op);
        manager.requestExit();
        vm.prank(op);
        manager.leave(id);
        uint64 readyAt = uint64(block.timestamp) + EXIT_DELAY;
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_CannotWithdraw.selector, op, 0, readyAt));
        manager.withdrawStake();
    }

    function test_withdrawStake_withMemberships_reverts() public {
        address op = opOf(1);
        vm.prank(op);
        manager.requestExit();
        vm.warp(block.timestamp + EXIT_DELAY);
        uint64 readyAt = uint64(block.timestamp);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_CannotWithdraw.selector, op, 1, readyAt));
        manager.withdrawStake();
    }

    function test_requestExit_twice_reverts() public {
        address op = opOf(1);
        vm.prank(op);
        manager.requestExit();
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_Exiting.selector, op));
        manager.requestExit();
    }

    function test_requestExit_notRegistered_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotRegistered.selector, address(this)));
        manager.requestExit();
    }

    function test_leave_notExiting_reverts() public {
        address op = opOf(1);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotAllowed.selector, op, address(0)));
        manager.leave(id);
    }

    function test_leave_notMember_reverts() public {
        address outsider;
        for (uint256 i; i < OPS; ++i) {
            if (manager.getOperator(operatorAddr(i)).memberships == 0) outsider = operatorAddr(i);
        }
        vm.prank(outsider);
        manager.requestExit();
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NotAllowed.selector, outsider, address(0)));
        manager.leave(id);
    }

    function test_leave_whileDrawing_reverts() public {
        vm.deal(address(this), FEE);
        uint256 other = manager.createContract{value: FEE}(1, keccak256("code"));
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, other, Phase.Drawing, Phase.Active)
        );
        manager.leave(other);
    }

    function exitAndLeave(uint256 instance, address op) internal {
        vm.prank(op);
        manager.requestExit();
        vm.prank(op);
        manager.leave(instance);
    }

    /// An executor that leaves just before its challenge's deadline does not hand its successor
    /// the seconds that are left: the promoted member gets Δ from its promotion, as after a
    /// timeout, and is not timed out (nor slashed) at the old deadline.
    function test_leave_executorDuringChallenge_promotedGetsFreshDelta() public {
        challenge();
        uint64 oldDeadline = manager.getInstance(id).challengeDeadline;
        vm.warp(oldDeadline - 1);
        exitAndLeave(id, opOf(0));
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.executorSlot, 1, "promoted");
        assertTrue(v.phase == Phase.ExecutorChallenged, "challenge continues");
        assertEq(v.challengeDeadline, block.timestamp + DELTA, "fresh deadline");
        vm.warp(oldDeadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_DeadlineNotPassed.selector, id, v.challengeDeadline, oldDeadline + 1
            )
        );
        manager.executorTimeout(id);
        // The answer must name the promotion or a later event.
        uint64 promotedAt = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.respond(
            address(manager), id, keccak256("answer"), promotedAt - 1, manager.eventHashAt(id, promotedAt - 1)
        );
        bytes memory early = sig(slotKey(id, 1, OPS), d);
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_ResponseTooOld.selector, id, promotedAt - 1, promotedAt)
        );
        manager.respondExecutor(id, "answer", promotedAt - 1, early);
        respond(1, promotedAt);
        assertTrue(manager.getInstance(id).phase == Phase.Active, "answered");
        assertEq(manager.getOperator(opOf(1)).stake, MIN_STAKE, "not slashed");
    }

    /// A member promoted while its predecessor's watchdog round is open leaves the round: an
    /// executor answers no watchdog challenge, and must not be removed, slashed and paid the
    /// reward itself for the silence.
    function test_promotion_takesTheNewExecutorOutOfTheWatchdogRound() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 6, hex"ab");
        address promotedOp = opOf(1);
        address silentOp = opOf(2);
        exitAndLeave(id, opOf(0));
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.executorSlot, 1, "promoted");
        assertEq(v.watchdogMask, 4, "only slot 2 still challenged");
        assertTrue(v.phase == Phase.WatchdogsChallenged, "round open");
        vm.warp(block.timestamp + DELTA + 1);
        manager.finalizeWatchdogChallenge(id);
        v = manager.getInstance(id);
        assertEq(v.operators[1], promotedOp, "the executor stays");
        assertEq(manager.getOperator(promotedOp).stake, MIN_STAKE, "the executor is not slashed");
        assertEq(v.operators[2], address(0), "the silent watchdog is removed");
        assertEq(manager.getOperator(silentOp).stake, MIN_STAKE - SLASH, "and slashed");
        assertEq(manager.payouts(promotedOp), 0, "the executor's operator gets nothing for it");
        assertTrue(v.phase == Phase.Active, "active");
    }

    /// The last challenged watchdog leaving ends the round: the instance is not left in
    /// WatchdogsChallenged with nobody to finalize, refill or challenge.
    function test_leave_lastChallengedWatchdog_endsTheRound() public {
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 4, hex"ab");
        exitAndLeave(id, opOf(2));
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.watchdogMask, 0, "no one challenged");
        assertTrue(v.phase == Phase.Active, "active again");
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_WatchdogChallengeState.selector, id, false));
        manager.finalizeWatchdogChallenge(id);
        manager.refill(id);
        assertEq(manager.getInstance(id).refillBlock, block.number + 1, "the empty slot can be refilled");
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, hex"cd");
        assertEq(manager.getInstance(id).watchdogMask, 2, "a new round can start");
    }

    /// A watchdog that leaves before activation does not block it: its empty slot is skipped.
    function test_leave_watchdogBeforeActivation_stillActivates() public {
        uint256 other = createAndDraw(2);
        address leaving = manager.getInstance(other).operators[2];
        exitAndLeave(other, leaving);
        uint64 index = manager.getInstance(other).eventIndex;
        bytes32 digest = PoseDigests.activation(
            address(manager), other, keccak256("cek"), keccak256("genesis"), 3, index, manager.eventHashAt(other, index)
        );
        manager.activate(other, keccak256("cek"), keccak256("genesis"), 3, index, sig(slotKey(other, 0, OPS), digest));
        PoseManager.InstanceView memory v = manager.getInstance(other);
        assertTrue(v.phase == Phase.Active, "active");
        assertEq(v.operators[2], address(0), "the slot stays empty");
        assertTrue(v.operators[1] != address(0), "the acked watchdog stays");
    }

    /// An executor that leaves before activation freezes the instance: only it holds the genesis.
    /// The other members are released (their stake is not held by an instance that can never
    /// run) and the creator gets its creation fee back.
    function test_leave_executorBeforeActivation_freezesReleasesAndRefunds() public {
        uint256 other = createAndDraw(2);
        address[] memory ops = manager.getInstance(other).operators;
        uint16 before1 = manager.getOperator(ops[1]).memberships;
        exitAndLeave(other, ops[0]);
        PoseManager.InstanceView memory v = manager.getInstance(other);
        assertTrue(v.phase == Phase.Frozen, "frozen");
        for (uint256 i; i < 3; ++i) {
            assertEq(v.operators[i], address(0), "released");
        }
        assertEq(manager.getOperator(ops[1]).memberships, before1 - 1, "membership ended");
        assertEq(manager.getOperator(ops[0]).memberships, 0, "the executor can withdraw after the delay");
        assertEq(manager.payouts(address(this)), FEE, "creation fee back");
    }

    function test_challengePayloads_longerThanTheLimit_revert() public {
        uint256 max = MAX_CHALLENGE_PAYLOAD;
        assertEq(max, 128 * 1024, "the SDK's largest request box");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_PayloadTooLarge.selector, max + 1, max));
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, new bytes(max + 1));
        vm.prank(opOf(0));
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_PayloadTooLarge.selector, max + 1, max));
        manager.challengeWatchdogs(id, 2, new bytes(max + 1));
        vm.prank(user);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, new bytes(max));
        vm.prank(opOf(0));
        manager.challengeWatchdogs(id, 2, new bytes(max));
    }

    function test_withdrawStake_notExiting_reverts() public {
        address op = opOf(1);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_CannotWithdraw.selector, op, 1, EXIT_DELAY));
        manager.withdrawStake();
    }

    function test_refill_wrongPhase_reverts() public {
        challenge();
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.ExecutorChallenged, Phase.Active
            )
        );
        manager.refill(id);
    }

    function test_challengeExecutor_whileCreating_reverts() public {
        uint256 other = createAndDraw(1);
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(
                PoseManager.PoseManager_UnexpectedPhase.selector, other, Phase.Creating, Phase.Active
            )
        );
        manager.challengeExecutor{value: CHALLENGE_FEE}(other, "");
    }

    function test_challengeWatchdogs_frozen_reverts() public {
        challenge();
        for (uint256 k; k < 3; ++k) {
            vm.warp(block.timestamp + DELTA + 1);
            manager.executorTimeout(id);
        }
        vm.expectRevert(
            abi.encodeWithSelector(PoseManager.PoseManager_UnexpectedPhase.selector, id, Phase.Frozen, Phase.Active)
        );
        manager.challengeWatchdogs(id, 2, "");
    }

    function test_setEndpoint_badEndpoint_reverts() public {
        address op = opOf(0);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_BadEndpoint.selector, 300));
        manager.setEndpoint(string(new bytes(300)));
    }

    // ------------------------------------------------------------ claim

    function test_claim_paysOnce() public {
        challenge();
        respond(0, manager.getInstance(id).eventIndex);
        address op = opOf(0);
        uint256 before = op.balance;
        vm.prank(op);
        manager.claim();
        assertEq(op.balance - before, CHALLENGE_FEE, "paid");
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_NothingToClaim.selector, op));
        manager.claim();
    }
}

contract Rejecter {
    receive() external payable {
        revert("no");
    }
}

/// @notice P15: a refill draws only operators that are not current members, whatever the
/// draw's block hash, the number of operators, the pool's size and which slots are empty.
contract RefillTest is Fixture {
    /// Registers operator `i` with twice the minimum stake: a slash leaves it drawable, so the
    /// members a refill replaces may be drawn again (they are no longer members).
    function registerDrawable(uint256 i) internal {
        address op = operatorAddr(i);
        address signer = vm.addr(enclaveKey(i));
        bytes memory ev = evidence(op, signer, encKey(i), MEASUREMENT, AUTHORITY_KEY);
        vm.deal(op, 2 * MIN_STAKE);
        vm.prank(op);
        manager.register{value: 2 * MIN_STAKE}(signer, encKey(i), "http://127.0.0.1:1", ev);
    }

    function testFuzz_refill_drawsOnlyNonMembers(bytes32 seed, uint8 operators_, uint8 watchdogs, uint16 silent)
        public
    {
        uint256 n = 3 + uint256(operators_) % 8; // 3..10 operators
        uint8 w = uint8(1 + uint256(watchdogs) % (n - 1 < 6 ? n - 1 : 6)); // 1..6 watchdogs, pool <= n
        for (uint256 i; i < n; ++i) {
            registerDrawable(i);
        }
        uint256 id = createAndDraw(w);
        activateAll(id, w, n);
        // The executor challenges a non-empty set of its watchdogs, which stay silent: removed.
        uint256 mask = (1 + uint256(silent) % ((1 << w) - 1)) << 1;
        vm.prank(manager.getInstance(id).operators[0]);
        manager.challengeWatchdogs(id, mask, "");
        vm.warp(block.timestamp + DELTA + 1);
        manager.finalizeWatchdogChallenge(id);
        address[] memory before = manager.getInstance(id).operators;
        uint256 live;
        for (uint256 i; i < before.length; ++i) {
            if (before[i] != address(0)) ++live;
        }
        assertEq(manager.eligibleOperatorCount(), n, "every operator drawable");
        manager.refill(id);
        uint64 at = manager.getInstance(id).refillBlock;
        vm.roll(at + 1);
        vm.setBlockhash(at, seed == bytes32(0) ? bytes32(uint256(1)) : seed);
        manager.refill(id);
        address[] memory afterwards = manager.getInstance(id).operators;
        uint256 filled;
        for (uint256 i; i < afterwards.length; ++i) {
            if (before[i] != address(0)) {
                assertEq(afterwards[i], before[i], "members stay");
                continue;
            }
            if (afterwards[i] == address(0)) continue;
            ++filled;
            for (uint256 j; j < before.length; ++j) {
                assertTrue(afterwards[i] != before[j], "a refill drew a current member");
            }
            for (uint256 j = i + 1; j < afterwards.length; ++j) {
                assertTrue(afterwards[i] != afterwards[j], "drawn members distinct");
            }
            assertTrue(manager.getOperator(afterwards[i]).registered, "drawn member registered");
        }
        // Every empty slot is filled while operators outside the pool are left to draw.
        uint256 empty = before.length - live;
        assertEq(filled, empty < n - live ? empty : n - live, "slots filled");
    }
}

contract LivenessPoolOfFiveTest is Fixture {
    uint256 internal id;
    address internal user = address(0xBEEF);

    function setUp() public override {
        super.setUp();
        id = activeInstance(7, 4);
        vm.deal(user, 10 ether);
    }

    /// A round past its deadline and not finalised when the executor leaves costs the promoted
    /// member none of its rounds (a review found it counted).
    function test_promotedAfterRoundDeadline_deltaFromNowAllRoundsLeft() public {
        address[] memory ops = manager.getInstance(id).operators;
        vm.prank(ops[0]);
        manager.requestExit();
        vm.prank(user);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"01");
        vm.prank(ops[0]);
        manager.challengeWatchdogs(id, 1 << 4, hex"02");
        vm.warp(manager.getInstance(id).watchdogDeadline + 1);
        vm.prank(ops[0]);
        manager.leave(id);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        assertEq(v.executorSlot, 1, "slot 1 promoted");
        assertEq(v.watchdogMask, 1 << 4, "the stale round is still set");
        assertEq(v.challengeDeadline, block.timestamp + DELTA, "delta from now");
        manager.finalizeWatchdogChallenge(id);
        for (uint256 r; r < MAX_WATCHDOG_ROUNDS; ++r) {
            vm.prank(ops[1]);
            manager.challengeWatchdogs(id, 1 << (2 + r), hex"03");
            vm.warp(manager.getInstance(id).watchdogDeadline + 1);
            manager.finalizeWatchdogChallenge(id);
        }
    }
}
