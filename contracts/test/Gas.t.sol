// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {EVENT_HISTORY, Phase} from "../src/PoseTypes.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice One life cycle through every manager operation on a pool of 3 (5 operators), in an
/// order that reaches each operation both while the instance is young (its first
/// `EVENT_HISTORY` events write fresh history slots) and once it is older. Run with
/// `npx forge test --isolate --gas-report --match-contract GasLifecycle` for per-transaction
/// gas (intrinsic cost and calldata included); the assertions check the life cycle really ran.
contract GasLifecycleTest is Fixture {
    uint256 internal constant OPS = 5;
    address internal user = address(0xBEEF);

    function test_lifecycle() public {
        for (uint256 i; i < OPS; ++i) {
            registerOperator(i);
        }
        uint256 id = createAndDraw(2);
        activateAll(id, 2, OPS);
        vm.deal(user, 100 ether);

        // Coins: first and repeated deposits and withdrawals.
        for (uint256 k; k < 3; ++k) {
            vm.prank(user);
            manager.deposit{value: 1 ether}(id);
        }
        withdrawTo(id, user, 0.5 ether);
        withdrawTo(id, user, 1 ether);

        // Executor challenge answered; watchdog challenge answered by both.
        challengeAndRespond(id);
        watchdogRound(id, true);
        // Watchdog challenge left silent: slot removed and slashed, then refilled.
        watchdogRound(id, false);
        manager.refill(id);
        vm.roll(block.number + 2);
        vm.setBlockhash(block.number - 1, keccak256("refill seed"));
        manager.refill(id);

        // Age the instance past its event history, then repeat the steady-state operations.
        while (manager.getInstance(id).eventIndex < EVENT_HISTORY + 2) {
            vm.prank(user);
            manager.deposit{value: 1 ether}(id);
        }
        withdrawTo(id, user, 1.5 ether);
        challengeAndRespond(id);
        watchdogRound(id, true);

        // Executor timeout and promotion.
        vm.prank(user);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        vm.warp(block.timestamp + DELTA + 1);
        manager.executorTimeout(id);
        assertTrue(manager.getInstance(id).phase == Phase.ExecutorChallenged, "promoted member challenged");
        respondAs(id, manager.getInstance(id).executorSlot);

        // Exit of the executor's operator, stake withdrawal, payout claim.
        address exiting = manager.getInstance(id).operators[manager.getInstance(id).executorSlot];
        vm.prank(exiting);
        manager.requestExit();
        vm.prank(exiting);
        manager.leave(id);
        vm.warp(block.timestamp + EXIT_DELAY);
        vm.prank(exiting);
        manager.withdrawStake();
        uint256 before = user.balance;
        vm.prank(user);
        manager.claim();
        assertEq(user.balance - before, SLASH / 2, "challenger rewarded half the slash");
        (, uint256 withdrawn) = manager.balanceOfInstance(id);
        assertEq(withdrawn, 1.5 ether, "withdrawn once per cumulative step");
        assertTrue(manager.getInstance(id).eventIndex > EVENT_HISTORY, "instance aged past its history");
    }

    function withdrawTo(uint256 id, address to, uint256 cumulative) internal {
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d = PoseDigests.withdraw(address(manager), id, to, cumulative, index, manager.eventHashAt(id, index));
        manager.withdraw(id, to, cumulative, index, sig(slotKey(id, manager.getInstance(id).executorSlot, OPS), d));
    }

    function challengeAndRespond(uint256 id) internal {
        vm.prank(user);
        manager.challengeExecutor{value: CHALLENGE_FEE}(id, hex"c0ffee");
        respondAs(id, manager.getInstance(id).executorSlot);
    }

    function respondAs(uint256 id, uint256 slot) internal {
        uint64 index = manager.getInstance(id).eventIndex;
        bytes32 d =
            PoseDigests.respond(address(manager), id, keccak256("answer"), index, manager.eventHashAt(id, index));
        manager.respondExecutor(id, "answer", index, sig(slotKey(id, slot, OPS), d));
    }

    /// @dev Challenges every live watchdog; they all answer, or none does.
    function watchdogRound(uint256 id, bool answer) internal {
        PoseManager.InstanceView memory v = manager.getInstance(id);
        uint256 mask;
        for (uint256 i; i < v.operators.length; ++i) {
            if (i != v.executorSlot && v.operators[i] != address(0)) mask |= 1 << i;
        }
        vm.prank(v.operators[v.executorSlot]);
        manager.challengeWatchdogs(id, mask, hex"0badf00d");
        if (answer) {
            for (uint256 i; i < v.operators.length; ++i) {
                if (mask & (1 << i) == 0) continue;
                uint64 index = manager.getInstance(id).eventIndex;
                bytes32 d =
                    PoseDigests.watchdogResponse(address(manager), id, uint8(i), index, manager.eventHashAt(id, index));
                manager.respondWatchdog(id, uint8(i), index, sig(slotKey(id, i, OPS), d));
            }
        }
        vm.warp(block.timestamp + DELTA + 1);
        manager.finalizeWatchdogChallenge(id);
    }
}
