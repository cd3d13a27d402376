// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {DevAttestationVerifier} from "../src/DevAttestationVerifier.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {IAttestationVerifier} from "../src/IAttestationVerifier.sol";
import {EventKind, Phase} from "../src/PoseTypes.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Test.sol";

/// @notice Drives the manager with random sequences of registrations, creations, draws,
/// activations, challenges, timeouts, refills, exits, stake withdrawals, deposits, withdrawals
/// (replayed, forged, stale) and terminations, and keeps the bookkeeping the invariants compare
/// against.
contract ManagerHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    PoseManager public immutable manager;
    DevAttestationVerifier public immutable verifier;
    uint256 internal immutable authorityKey;
    bytes32 internal immutable measurement;

    uint256 public registered;
    uint256 public stakes;
    uint256 public fees;
    /// Creation fees and what slashes do not reward (half of an executor's, all of a watchdog's): nothing pays them out.
    uint256 public kept;
    mapping(uint256 => uint64) public lastSeenIndex;
    bool public indexWentBack;

    constructor(PoseManager m, DevAttestationVerifier v, uint256 authority, bytes32 meas) {
        manager = m;
        verifier = v;
        authorityKey = authority;
        measurement = meas;
    }

    /// @dev A whole life cycle in one call, so deep states (timeouts, slashes) are always reached.
    function lifecycle(uint8 watchdogs, bytes32 seed, uint256 mask) external {
        while (registered < 6) this.register(0);
        this.create(watchdogs);
        uint256 id = manager.instanceCount();
        this.draw(id - 1, seed);
        this.activate(id - 1, mask);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        if (!_honest(v.operators[v.executorSlot])) ++dishonestChallenged;
        this.challengeExecutor(id - 1);
        if (manager.getInstance(id).phase == Phase.ExecutorChallenged) {
            // A refused timeout is counted, not rolled back with the whole life cycle.
            try this.timeout(id - 1, 0) {
                ++timeouts;
            } catch {
                ++timeoutsRefused;
            }
        }
        // Half the life cycles end with coins in, a termination and final payouts.
        if (uint8(seed[0]) % 2 == 0) {
            this.depositCoins(id - 1, uint64(uint256(seed) >> 8) % 1e18 + 1);
            this.terminateInstance(
                id - 1, uint64(uint256(seed) >> 72), uint64(uint256(seed) >> 136), true, uint8(seed[1]) % 2 == 0
            );
        }
    }

    uint256 public timeouts;
    uint256 public dishonestChallenged;
    /// Life cycles whose silent executor's `executorTimeout` reverted.
    uint256 public timeoutsRefused;
    /// Slashes the handler's model predicts (P9): a silent executor timed out, a silent watchdog
    /// finalised; `expectedStake` is every operator's stake as they leave it.
    uint256 public slashes;
    mapping(uint256 => uint256) public expectedStake;
    /// A member promoted during an open executor challenge was timed out less than Δ later.
    bool public timedOutEarly;
    uint256 public promotedUnderChallenge;

    function register(uint96 stakeExtra) external {
        if (registered >= 12) return;
        uint256 i = registered;
        address op = address(uint160(0x9000 + i));
        uint256 key = 0xF0000 + i;
        address signer = vm.addr(key);
        bytes32 enc = keccak256(abi.encode(i));
        bytes32 digest = verifier.reportHash(block.chainid, address(manager), measurement, signer, enc, op);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(authorityKey, digest);
        uint256 stake = manager.minStake() + (uint256(stakeExtra) % 1 ether) / 1 gwei * 1 gwei;
        vm.deal(op, stake);
        vm.prank(op);
        manager.register{value: stake}(
            signer, enc, "http://127.0.0.1:1", abi.encode(measurement, abi.encodePacked(r, s, v))
        );
        registeredStake[i] = stake;
        expectedStake[i] = stake;
        registered++;
        stakes += stake;
    }

    function create(uint8 watchdogs) external {
        watchdogs = watchdogs % 4;
        uint256 fee = manager.creationFee();
        vm.deal(address(this), fee);
        uint256 id = manager.createContract{value: fee}(watchdogs, keccak256(abi.encode(watchdogs)));
        fees += fee;
        kept += fee;
        _observe(id);
    }

    function draw(uint256 idSeed, bytes32 seed) external {
        uint256 n = manager.instanceCount();
        if (n == 0) return;
        uint256 id = 1 + (idSeed % n);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        if (v.phase != Phase.Drawing) return;
        if (manager.eligibleOperatorCount() < uint256(v.watchdogCount) + 1) return;
        if (block.number <= v.drawBlock) vm.roll(v.drawBlock + 1);
        vm.setBlockhash(v.drawBlock, seed == bytes32(0) ? bytes32(uint256(1)) : seed);
        manager.drawPool(id);
        _observe(id);
    }

    function activate(uint256 idSeed, uint256 mask) external {
        uint256 n = manager.instanceCount();
        if (n == 0) return;
        uint256 id = 1 + (idSeed % n);
        PoseManager.InstanceView memory v = manager.getInstance(id);
        if (v.phase != Phase.Creating) return;
        uint256 size = v.operators.length;
        mask = (mask % (1 << size)) | 1;
        uint256 key;
        for (uint256 i; i < registered; ++i) {
            if (vm.addr(0xF0000 + i) == v.signers[0]) key = 0xF0000 + i;
        }
        bytes32 digest = PoseDigests.activation(
            address(manager), id, bytes32(uint256(1)), bytes32(uint256(2)), mask, v.eventIndex, v.eventHash
        );
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(key, digest);
        manager.activate(id, bytes32(uint256(1)), bytes32(uint256(2)), mask, v.eventIndex, abi.encodePacked(r, s, sv));
        _observe(id);
    }

    uint256 public initialStakeOfHonest;
    mapping(uint256 => uint256) public registeredStake;

    /// @dev Operators with an even index run honest enclaves: they answer every challenge.
    function _honest(address op) internal pure returns (bool) {
        return (uint160(op) - 0x9000) % 2 == 0;
    }

    function _keyOf(address signer) internal view returns (uint256) {
        for (uint256 i; i < registered; ++i) {
            if (vm.addr(0xF0000 + i) == signer) return 0xF0000 + i;
        }
        return 0;
    }

    function _pick(uint256 idSeed) internal view returns (uint256 id, PoseManager.InstanceView memory v) {
        uint256 n = manager.instanceCount();
        if (n == 0) return (0, v);
        id = 1 + (idSeed % n);
        v = manager.getInstance(id);
    }

    function challengeExecutor(uint256 idSeed) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || (v.phase != Phase.Active && v.phase != Phase.WatchdogsChallenged)) return;
        uint256 fee = manager.challengeFee();
        vm.deal(address(this), fee);
        manager.challengeExecutor{value: fee}(id, hex"01");
        v = manager.getInstance(id);
        address exec = v.operators[v.executorSlot];
        if (_honest(exec)) {
            bytes32 d = PoseDigests.respond(address(manager), id, keccak256("ok"), v.eventIndex, v.eventHash);
            (uint8 sv, bytes32 r, bytes32 s) = vm.sign(_keyOf(v.signers[v.executorSlot]), d);
            manager.respondExecutor(id, "ok", v.eventIndex, abi.encodePacked(r, s, sv));
        }
        _observe(id);
    }

    function timeout(uint256 idSeed, uint32 wait) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || v.phase != Phase.ExecutorChallenged) return;
        vm.warp(block.timestamp + manager.delta() + 1 + (wait % 100));
        uint256[] memory before = _stakes();
        manager.executorTimeout(id);
        _expectSlash(v.operators[v.executorSlot]);
        _keepUnrewarded(before, true);
        // A promoted honest executor answers the continuing challenge at once.
        _honestExecutorAnswers(id);
        _observe(id);
    }

    /// @dev The executor of `id` answers its open challenge if it is honest.
    function _honestExecutorAnswers(uint256 id) internal {
        PoseManager.InstanceView memory v = manager.getInstance(id);
        if (v.phase != Phase.ExecutorChallenged || !_honest(v.operators[v.executorSlot])) return;
        bytes32 d = PoseDigests.respond(address(manager), id, keccak256("ok"), v.eventIndex, v.eventHash);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(_keyOf(v.signers[v.executorSlot]), d);
        manager.respondExecutor(id, "ok", v.eventIndex, abi.encodePacked(r, s, sv));
    }

    function challengeWatchdogs(uint256 idSeed, uint256 maskSeed) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || v.watchdogMask != 0) return;
        if (v.phase != Phase.Active && v.phase != Phase.ExecutorChallenged) return;
        uint256 mask;
        for (uint256 i; i < v.operators.length; ++i) {
            if (i != v.executorSlot && v.operators[i] != address(0) && (maskSeed >> i) & 1 == 1) mask |= 1 << i;
        }
        if (mask == 0) return;
        vm.prank(v.operators[v.executorSlot]);
        try manager.challengeWatchdogs(id, mask, hex"02") {}
        catch {
            return;
        }
        v = manager.getInstance(id);
        for (uint256 i; i < v.operators.length; ++i) {
            if ((mask >> i) & 1 == 0 || !_honest(v.operators[i])) continue;
            bytes32 d = PoseDigests.watchdogResponse(address(manager), id, uint8(i), v.eventIndex, v.eventHash);
            (uint8 sv, bytes32 r, bytes32 s) = vm.sign(_keyOf(v.signers[i]), d);
            manager.respondWatchdog(id, uint8(i), v.eventIndex, abi.encodePacked(r, s, sv));
        }
        vm.warp(block.timestamp + manager.delta() + 1);
        uint256[] memory before = _stakes();
        manager.finalizeWatchdogChallenge(id);
        for (uint256 i; i < v.operators.length; ++i) {
            if ((mask >> i) & 1 == 1 && !_honest(v.operators[i])) _expectSlash(v.operators[i]);
        }
        _keepUnrewarded(before, false);
        _observe(id);
    }

    /// @dev A member requests exit and leaves. A member it promotes while the executor is
    /// challenged sees its promotion late (up to Δ later, as after an operator's confirmations):
    /// meanwhile anyone tries to time it out, then an honest one answers.
    function leaveSlot(uint256 idSeed, uint256 slotSeed, uint32 late) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0) return;
        Phase phase = v.phase;
        if (
            phase != Phase.Creating && phase != Phase.Active && phase != Phase.ExecutorChallenged
                && phase != Phase.WatchdogsChallenged
        ) return;
        // Half the calls on a challenged instance are its executor's.
        uint256 slot = phase == Phase.ExecutorChallenged && slotSeed % 2 == 0
            ? v.executorSlot
            : (slotSeed >> 1) % v.operators.length;
        address op = v.operators[slot];
        if (op == address(0)) return;
        if (!manager.getOperator(op).exiting) {
            vm.prank(op);
            manager.requestExit();
            exitAt[uint160(op) - 0x9000] = uint64(block.timestamp);
        }
        bool executorLeft = slot == v.executorSlot;
        // A challenged executor leaves some time before its deadline.
        if (phase == Phase.ExecutorChallenged && executorLeft) {
            uint256 leftAt = uint256(v.challengeDeadline) - (uint256(late) >> 16) % manager.delta();
            if (leftAt > block.timestamp) vm.warp(leftAt);
        }
        vm.prank(op);
        manager.leave(id);
        // An executor leaving before activation freezes the instance: its creation fee goes back.
        if (phase == Phase.Creating && executorLeft) kept -= manager.creationFee();
        v = manager.getInstance(id);
        if (v.phase == Phase.ExecutorChallenged && executorLeft) {
            ++promotedUnderChallenge;
            vm.warp(block.timestamp + (late & 0xffff) % manager.delta());
            uint256[] memory before = _stakes();
            try manager.executorTimeout(id) {
                timedOutEarly = true;
                _expectSlash(v.operators[v.executorSlot]);
            } catch {}
            _keepUnrewarded(before, true);
            _honestExecutorAnswers(id);
        }
        _observe(id);
    }

    function _stakes() internal view returns (uint256[] memory s) {
        s = new uint256[](registered);
        for (uint256 i; i < registered; ++i) {
            s[i] = manager.getOperator(address(uint160(0x9000 + i))).stake;
        }
    }

    /// @dev Each slash since `before` keeps what it does not reward: half of an executor's, all
    /// of a watchdog's (`rewarded` false).
    function _keepUnrewarded(uint256[] memory before, bool rewarded) internal {
        uint256[] memory afterwards = _stakes();
        for (uint256 i; i < before.length; ++i) {
            uint256 slashed = before[i] - afterwards[i];
            kept += rewarded ? slashed - slashed / 2 : slashed;
        }
    }

    function depositCoins(uint256 idSeed, uint64 amount) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || amount == 0) return;
        if (v.phase != Phase.Active && v.phase != Phase.ExecutorChallenged && v.phase != Phase.WatchdogsChallenged) {
            return;
        }
        vm.deal(address(this), amount);
        manager.deposit{value: amount}(id);
    }

    /// @dev Any (former) member's authorisation of any cumulative amount: the manager must
    /// never pay more than was deposited, nor twice.
    function withdrawCoins(uint256 idSeed, uint256 slotSeed, uint64 cumulative, bool toSelf) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || v.signers.length == 0) return;
        address signer = v.signers[slotSeed % v.signers.length];
        if (signer == address(0)) return;
        address recipient = toSelf ? address(this) : address(0xB0B);
        _authorise(id, recipient, cumulative);
        _tryWithdraw(
            id,
            recipient,
            cumulative,
            v.eventIndex,
            _signWithdrawal(_keyOf(signer), id, recipient, cumulative, v.eventIndex, v.eventHash)
        );
    }

    // ---------------------------------------------------------------- coins out (P16)

    /// What each recipient was paid out of each instance (by `withdraw` and `withdrawFinal`),
    /// and the highest cumulative amount an enclave that is or was a member authorised for it
    /// (final balances included).
    mapping(uint256 => mapping(address => uint256)) public paidTo;
    mapping(uint256 => mapping(address => uint256)) public authorised;
    /// Enclaves the handler saw in each instance's pool (current and former members).
    mapping(uint256 => mapping(address => bool)) public everMember;
    /// The running hash the handler saw after each event it saw last in an action.
    mapping(uint256 => mapping(uint64 => bytes32)) internal seenHash;
    /// A replayed or older authorisation paid something.
    bool public paidAgain;
    /// An authorisation paid though its enclave never was a member or its event is forgotten.
    bool public paidUnauthorised;
    /// A member's authorisation of a remembered event within the coins held was refused.
    bool public refusedAuthorised;
    uint256 public replays;
    uint256 public formerMemberPayouts;

    function _authorise(uint256 id, address recipient, uint256 cumulative) internal {
        if (cumulative > authorised[id][recipient]) authorised[id][recipient] = cumulative;
    }

    function _signWithdrawal(uint256 key, uint256 id, address recipient, uint256 cumulative, uint64 index, bytes32 h)
        internal
        view
        returns (bytes memory)
    {
        bytes32 d = PoseDigests.withdraw(address(manager), id, recipient, cumulative, index, h);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(key, d);
        return abi.encodePacked(r, s, sv);
    }

    function _tryWithdraw(uint256 id, address recipient, uint256 cumulative, uint64 index, bytes memory signature)
        internal
        returns (bool ok, uint256 paid)
    {
        uint256 before = recipient.balance;
        try manager.withdraw(id, recipient, cumulative, index, signature) {
            ok = true;
            paid = recipient.balance - before;
            paidTo[id][recipient] += paid;
        } catch {}
    }

    /// @dev A member authorises an older, smaller cumulative amount, coins go in, it authorises
    /// a newer one, which is paid; the newer one again and the older one then pay nothing.
    function replayWithdrawal(uint256 idSeed, uint256 slotSeed, uint64 step, bool toSelf) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || v.signers.length == 0) return;
        uint256 key = _keyOf(v.signers[slotSeed % v.signers.length]);
        if (key == 0) return;
        address recipient = toSelf ? address(this) : address(0xB0B);
        uint256 already = paidTo[id][recipient];
        uint256 amount = uint256(step) % 1e18 + 2;
        bytes memory older = _signWithdrawal(key, id, recipient, already + amount / 2, v.eventIndex, v.eventHash);
        uint64 olderIndex = v.eventIndex;
        // Coins for the payout and as much again, which a replay could take.
        try this.depositCoins(idSeed, uint64(3 * amount)) {} catch {}
        v = manager.getInstance(id);
        _authorise(id, recipient, already + amount);
        bytes memory newer = _signWithdrawal(key, id, recipient, already + amount, v.eventIndex, v.eventHash);
        (bool ok,) = _tryWithdraw(id, recipient, already + amount, v.eventIndex, newer);
        if (!ok) return;
        ++replays;
        (bool again, uint256 paid) = _tryWithdraw(id, recipient, already + amount, v.eventIndex, newer);
        if (again || paid != 0) paidAgain = true;
        (again, paid) = _tryWithdraw(id, recipient, already + amount / 2, olderIndex, older);
        if (again || paid != 0) paidAgain = true;
    }

    /// @dev An authorisation by any enclave (a current or former member, a registered enclave
    /// never in the pool, an unregistered key) naming any event (the latest, an older one, one
    /// the 32-event history forgot, a future one, signed over the hash the handler saw or none):
    /// it pays exactly when its enclave is or was a member, the manager remembers its event and
    /// the instance holds the difference.
    function withdrawAny(uint256 idSeed, uint256 keySeed, uint256 indexSeed, uint64 amount, bool toSelf) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0) return;
        Authorisation memory a;
        a.id = id;
        a.key = keySeed % (registered + 1) == registered ? 0xBAD : 0xF0000 + keySeed % (registered + 1);
        a.recipient = toSelf ? address(this) : address(0xB0B);
        a.cumulative = paidTo[id][a.recipient] + uint256(amount) % 1e18 + 1;
        bool remembered;
        (a.index, a.eventHash, remembered) = _anyEvent(id, v.eventIndex, indexSeed);
        _tryAny(a, remembered, _isCurrent(v, vm.addr(a.key)));
    }

    struct Authorisation {
        uint256 id;
        uint256 key;
        address recipient;
        uint256 cumulative;
        uint64 index;
        bytes32 eventHash;
    }

    function _tryAny(Authorisation memory a, bool remembered, bool current) internal {
        bool member = everMember[a.id][vm.addr(a.key)];
        if (member) _authorise(a.id, a.recipient, a.cumulative);
        bool allowed = member && remembered && _holds(a.id, a.cumulative - paidTo[a.id][a.recipient]);
        bytes memory signature = _signWithdrawal(a.key, a.id, a.recipient, a.cumulative, a.index, a.eventHash);
        (bool ok,) = _tryWithdraw(a.id, a.recipient, a.cumulative, a.index, signature);
        if (ok && !allowed) paidUnauthorised = true;
        if (!ok && allowed) refusedAuthorised = true;
        if (ok && !current) ++formerMemberPayouts;
    }

    /// @dev The latest event, an older one (possibly forgotten) or a future one; the hash the
    /// manager remembers for it, else the one the handler saw (zero if none); whether the
    /// manager remembers it: the latest 32 events and, beyond them, what an open challenge's
    /// answer names.
    function _anyEvent(uint256 id, uint64 latest, uint256 seed)
        internal
        view
        returns (uint64 index, bytes32 h, bool remembered)
    {
        uint64 back = uint64(seed >> 2) % 64;
        if (seed % 4 == 0) index = latest;
        else if (seed % 4 == 3) index = latest + 1 + back % 3;
        else index = latest - (back > latest ? latest : back);
        bool inRing = index <= latest && (latest < 32 || index > latest - 32);
        h = seenHash[id][index];
        remembered = inRing;
        if (index > latest) return (index, h, false);
        try manager.eventHashAt(id, index) returns (bytes32 kept) {
            h = kept;
            remembered = true;
        } catch {}
    }

    function _holds(uint256 id, uint256 amount) internal view returns (bool) {
        (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
        return amount <= deposited - withdrawn;
    }

    function _isCurrent(PoseManager.InstanceView memory v, address signer) internal pure returns (bool) {
        for (uint256 i; i < v.signers.length; ++i) {
            if (v.signers[i] == signer) return true;
        }
        return false;
    }

    // ---------------------------------------------------------------- stake (P9, P14)

    mapping(uint256 => uint64) public exitAt;
    mapping(uint256 => bool) public stakeWithdrawn;
    /// What `withdrawStake` paid each operator.
    mapping(uint256 => uint256) public stakePaid;
    uint256 public stakeWithdrawals;
    /// Stake left before the exit delay, with memberships or without an exit; or a withdrawal
    /// the rules allow was refused; or it paid other than the stake the slashes left.
    bool public stakeLeftEarly;
    bool public stakeRefused;
    bool public stakePaidWrong;

    /// @dev Takes what the slash of `op`'s stake takes from the handler's model.
    function _expectSlash(address op) internal {
        uint256 i = uint160(op) - 0x9000;
        uint256 stake = expectedStake[i];
        uint256 amount = stake < manager.slashAmount() ? stake : manager.slashAmount();
        expectedStake[i] = stake - amount;
        ++slashes;
    }

    /// @dev Live pool slots `op` holds, from the instances' views.
    function _slotsHeld(address op) internal view returns (uint256 held) {
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            address[] memory ops = manager.getInstance(id).operators;
            for (uint256 i; i < ops.length; ++i) {
                if (ops[i] == op) ++held;
            }
        }
    }

    /// @dev An operator tries to withdraw its stake (one that asked to exit and has not
    /// withdrawn, if any, with memberships left or not; a quarter of the calls first make one
    /// ask), half the time once its exit delay passed.
    function withdrawStake(uint256 opSeed, bool waitForIt) external {
        if (registered == 0) return;
        uint256 i = opSeed % registered;
        address op = address(uint160(0x9000 + i));
        if ((opSeed >> 128) % 4 == 0 && exitAt[i] == 0 && !stakeWithdrawn[i]) {
            vm.prank(op);
            manager.requestExit();
            exitAt[i] = uint64(block.timestamp);
        }
        for (uint256 k; k < registered; ++k) {
            uint256 j = (opSeed % registered + k) % registered;
            if (exitAt[j] != 0 && !stakeWithdrawn[j]) {
                i = j;
                break;
            }
        }
        op = address(uint160(0x9000 + i));
        uint256 readyAt = uint256(exitAt[i]) + manager.exitDelay();
        if (waitForIt && exitAt[i] != 0 && block.timestamp < readyAt) vm.warp(readyAt);
        bool allowed = exitAt[i] != 0 && !stakeWithdrawn[i] && _slotsHeld(op) == 0 && block.timestamp >= readyAt;
        uint256 before = op.balance;
        vm.prank(op);
        try manager.withdrawStake() {
            if (!allowed) stakeLeftEarly = true;
            stakePaid[i] = op.balance - before;
            if (stakePaid[i] != expectedStake[i]) stakePaidWrong = true;
            expectedStake[i] = 0;
            stakeWithdrawn[i] = true;
            ++stakeWithdrawals;
        } catch {
            if (allowed) stakeRefused = true;
        }
    }

    // ---------------------------------------------------------------- refill (P2, P15)

    uint256 public refills;
    /// A refill put a current member into another slot.
    bool public refillDrewMember;

    /// @dev Refills the empty slots of an active instance from the hash `seed` of a later block.
    function refillPool(uint256 idSeed, bytes32 seed) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || v.phase != Phase.Active) return;
        bool empty;
        for (uint256 i; i < v.operators.length; ++i) {
            if (v.operators[i] == address(0)) empty = true;
        }
        if (!empty) return;
        // Schedules the draw (or a new one, if its block's hash expired), then draws.
        for (uint256 k; k < 3; ++k) {
            uint64 at = manager.getInstance(id).refillBlock;
            if (at == 0) {
                manager.refill(id);
                at = manager.getInstance(id).refillBlock;
            }
            if (block.number <= at) vm.roll(at + 1);
            vm.setBlockhash(at, seed == bytes32(0) ? bytes32(uint256(1)) : seed);
            try manager.refill(id) {}
            catch {
                return; // nobody to draw
            }
            if (manager.getInstance(id).refillBlock == 0) break;
        }
        PoseManager.InstanceView memory w = manager.getInstance(id);
        bool filled;
        for (uint256 i; i < w.operators.length; ++i) {
            if (v.operators[i] != address(0) || w.operators[i] == address(0)) continue;
            filled = true;
            for (uint256 j; j < v.operators.length; ++j) {
                if (w.operators[i] == v.operators[j]) refillDrewMember = true;
            }
        }
        if (filled) ++refills;
        _observe(id);
    }

    uint256 public terminations;

    /// @dev The executor signs arbitrary final balances for this handler and 0xB0B; whatever it
    /// signs, final payouts must keep every instance solvent and pay each leaf at most once.
    function terminateInstance(uint256 idSeed, uint64 a, uint64 b, bool payOut, bool paged) external {
        (uint256 id, PoseManager.InstanceView memory v) = _pick(idSeed);
        if (id == 0 || (v.phase != Phase.Active && v.phase != Phase.WatchdogsChallenged)) return;
        (address[] memory accounts, uint256[] memory amounts, bytes32 la, bytes32 lb) = _finalTree(a, b);
        if (!_terminate(id, v, _pages(accounts, amounts, Hashes.commutativeKeccak256(la, lb), paged))) return;
        ++terminations;
        _observe(id);
        // The executor authorised these final cumulative amounts.
        _authorise(id, accounts[0], a);
        _authorise(id, accounts[1], b);
        if (!payOut) return;
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = lb;
        _tryWithdrawFinal(id, accounts[0], a, proof);
        proof[0] = la;
        _tryWithdrawFinal(id, accounts[1], b, proof);
        // A second time pays nothing.
        if (_tryWithdrawFinal(id, accounts[1], b, proof)) paidTwice = true;
    }

    function _tryWithdrawFinal(uint256 id, address recipient, uint256 cumulative, bytes32[] memory proof)
        internal
        returns (bool ok)
    {
        uint256 before = recipient.balance;
        try manager.withdrawFinal(id, recipient, cumulative, proof) {
            ok = true;
            paidTo[id][recipient] += recipient.balance - before;
        } catch {}
    }

    bool public paidTwice;

    /// One page, or one page per leaf (the last first).
    function _pages(address[] memory accounts, uint256[] memory amounts, bytes32 root, bool paged)
        internal
        pure
        returns (PoseManager.FinalBalances[] memory pages)
    {
        pages = new PoseManager.FinalBalances[](paged ? 2 : 1);
        if (!paged) {
            pages[0] = PoseManager.FinalBalances(root, 0, 1, accounts, amounts);
            return pages;
        }
        for (uint256 i; i < 2; ++i) {
            address[] memory one = new address[](1);
            uint256[] memory amount = new uint256[](1);
            (one[0], amount[0]) = (accounts[1 - i], amounts[1 - i]);
            pages[i] = PoseManager.FinalBalances(root, 1 - i, 2, one, amount);
        }
    }

    /// Sends every page, signed by the executor; whether all went in.
    function _terminate(uint256 id, PoseManager.InstanceView memory v, PoseManager.FinalBalances[] memory pages)
        internal
        returns (bool)
    {
        for (uint256 i; i < pages.length; ++i) {
            try manager.terminate(id, pages[i], v.eventIndex, _signTermination(id, v, pages[i])) {}
            catch {
                return false;
            }
        }
        return true;
    }

    function _finalTree(uint64 a, uint64 b)
        internal
        view
        returns (address[] memory accounts, uint256[] memory amounts, bytes32 la, bytes32 lb)
    {
        accounts = new address[](2);
        amounts = new uint256[](2);
        (accounts[0], accounts[1], amounts[0], amounts[1]) = (address(this), address(0xB0B), a, b);
        la = keccak256(bytes.concat(keccak256(abi.encode(accounts[0], amounts[0]))));
        lb = keccak256(bytes.concat(keccak256(abi.encode(accounts[1], amounts[1]))));
    }

    function _signTermination(uint256 id, PoseManager.InstanceView memory v, PoseManager.FinalBalances memory b)
        internal
        view
        returns (bytes memory)
    {
        bytes32 d = PoseDigests.terminate(
            address(manager),
            id,
            b.root,
            (b.pages << 16) | b.page,
            keccak256(abi.encode(b.root, b.accounts, b.cumulatives)),
            v.eventIndex,
            v.eventHash
        );
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(_keyOf(v.signers[v.executorSlot]), d);
        return abi.encodePacked(r, s, sv);
    }

    function claimAll() external {
        for (uint256 i; i < registered; ++i) {
            address op = address(uint160(0x9000 + i));
            if (manager.payouts(op) == 0) continue;
            vm.prank(op);
            manager.claim();
        }
        if (manager.payouts(address(this)) > 0) manager.claim();
    }

    receive() external payable {}

    function _observe(uint256 id) internal {
        PoseManager.InstanceView memory v = manager.getInstance(id);
        uint64 idx = v.eventIndex;
        if (idx < lastSeenIndex[id]) indexWentBack = true;
        lastSeenIndex[id] = idx;
        seenHash[id][idx] = v.eventHash;
        // Members join only by a draw or a refill, each observed here.
        for (uint256 i; i < v.signers.length; ++i) {
            if (v.signers[i] != address(0)) everMember[id][v.signers[i]] = true;
        }
    }
}

/// @notice Invariants of contracts/PROPERTIES.md that this stage's state machine must keep.
contract InvariantsTest is Fixture {
    ManagerHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new ManagerHandler(manager, verifier, AUTHORITY_KEY, MEASUREMENT);
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    /// P1: the manager's balance is exactly what it owes or keeps: stakes, unclaimed payouts,
    /// one challenge fee per open executor challenge, the coins each instance holds (deposited
    /// minus withdrawn), and what nothing pays out (creation fees, what slashes do not reward).
    /// The manager keeps no totals of its own: every term is summed here from its parts.
    function invariant_balanceEqualsWhatIsOwed() public view {
        uint256 owed = held() + handler.kept() + manager.payouts(address(handler));
        for (uint256 i; i < handler.registered(); ++i) {
            address op = address(uint160(0x9000 + i));
            owed += manager.getOperator(op).stake + manager.payouts(op);
        }
        for (uint256 id = 1; id <= manager.instanceCount(); ++id) {
            if (manager.getInstance(id).phase == Phase.ExecutorChallenged) owed += manager.challengeFee();
        }
        assertEq(address(manager).balance, owed, "manager balance");
    }

    /// P9: every silent executor a life cycle challenges is timed out (a refused timeout is
    /// counted, not rolled back with the life cycle) and, by `invariant_stakeFollowsTheSlashes`,
    /// slashed.
    function afterInvariant() public view {
        assertEq(handler.timeoutsRefused(), 0, "a silent executor's timeout refused");
        assertEq(handler.timeouts(), handler.dishonestChallenged(), "silent executors timed out");
        assertTrue(handler.slashes() >= handler.timeouts(), "each timeout slashes");
    }

    /// P9: each operator's stake is what the handler's model leaves it: every silent executor
    /// timed out and every silent watchdog finalised lost `slashAmount` (or what it had left),
    /// nobody else lost anything, and a withdrawn stake is zero.
    function invariant_stakeFollowsTheSlashes() public view {
        for (uint256 i; i < handler.registered(); ++i) {
            assertEq(
                manager.getOperator(address(uint160(0x9000 + i))).stake, handler.expectedStake(i), "stake after slashes"
            );
        }
    }

    /// P14: stake leaves only through `withdrawStake`, only after an exit, with no membership
    /// left and after the exit delay, and then all of what the slashes left (the manager's
    /// balance, P1, drops by exactly that); a withdrawal the rules allow is never refused.
    function invariant_stakeLeavesOnlyThroughWithdrawStake() public view {
        assertTrue(!handler.stakeLeftEarly(), "stake withdrawn against the rules");
        assertTrue(!handler.stakeRefused(), "an allowed stake withdrawal refused");
        assertTrue(!handler.stakePaidWrong(), "withdrawStake paid other than the stake");
    }

    /// P16: a replayed or older authorisation pays nothing; an authorisation pays only when its
    /// enclave is or was a member and the manager remembers its event (and then whenever the
    /// instance holds the difference); each recipient was paid exactly what the manager counts
    /// as withdrawn, never more than the highest cumulative amount a member authorised.
    function invariant_withdrawalsPayOnlyTheirDifferenceOnce() public view {
        assertTrue(!handler.paidAgain(), "a replayed or older authorisation paid");
        assertTrue(!handler.paidUnauthorised(), "a non-member's or forgotten event's authorisation paid");
        assertTrue(!handler.refusedAuthorised(), "a member's authorisation within the coins held refused");
        uint256 n = manager.instanceCount();
        address[2] memory recipients = [address(handler), address(0xB0B)];
        for (uint256 id = 1; id <= n; ++id) {
            for (uint256 k; k < 2; ++k) {
                uint256 paid = handler.paidTo(id, recipients[k]);
                assertTrue(paid <= handler.authorised(id, recipients[k]), "paid more than authorised");
                assertEq(paid, manager.withdrawnBy(id, recipients[k]), "paid what is counted as withdrawn");
            }
        }
    }

    /// The handler really reaches slashes, refills, replays, former members' payouts and stake
    /// withdrawals (guards against a vacuous P9, P14, P15, P16).
    function test_handlerReachesSlashesRefillsReplaysAndWithdrawals() public {
        for (uint256 k; k < 8; ++k) {
            handler.lifecycle(2, keccak256(abi.encode("life", k)), 7);
        }
        assertTrue(handler.dishonestChallenged() > 0, "a silent executor challenged");
        assertEq(handler.timeouts(), handler.dishonestChallenged(), "each timed out");
        assertTrue(handler.slashes() > 0, "slashed");
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            handler.refillPool(id - 1, keccak256(abi.encode("refill", id)));
            handler.replayWithdrawal(id - 1, 0, 1 ether, id % 2 == 0);
            for (uint256 key; key <= handler.registered(); ++key) {
                handler.withdrawAny(id - 1, key, 0, 1 gwei, false);
            }
        }
        assertTrue(handler.refills() > 0, "refilled");
        assertTrue(handler.replays() > 0, "replayed");
        assertTrue(handler.formerMemberPayouts() > 0, "a former member's authorisation paid");
        // Every member of an instance leaves it; their stakes are withdrawn after the delay.
        for (uint256 id = 1; id <= manager.instanceCount(); ++id) {
            for (uint256 slot; slot < 3; ++slot) {
                handler.leaveSlot(id - 1, slot << 1, 0);
            }
        }
        for (uint256 i; i < handler.registered(); ++i) {
            handler.withdrawStake(i, true);
        }
        assertTrue(handler.stakeWithdrawals() > 0, "stake withdrawn");
        invariant_stakeFollowsTheSlashes();
        invariant_stakeLeavesOnlyThroughWithdrawStake();
        invariant_withdrawalsPayOnlyTheirDifferenceOnce();
        invariant_poolMembersDistinctAndRegistered();
        invariant_balanceEqualsWhatIsOwed();
        invariant_honestNeverSlashed();
        afterInvariant();
    }

    /// The handler's promotion under an open challenge is really exercised (guards against a
    /// vacuous P18): challenged executors leave shortly before their deadlines, and no member
    /// promoted meanwhile is timed out within Δ of its promotion.
    function test_handlerReachesPromotionUnderChallenge() public {
        for (uint256 i; i < 6; ++i) {
            handler.register(0);
        }
        for (uint256 k; k < 6; ++k) {
            handler.create(2);
            uint256 n = manager.instanceCount();
            handler.draw(n - 1, keccak256(abi.encode(k)));
            handler.activate(n - 1, 7);
            handler.challengeExecutor(n - 1);
            // Leaves 30 s before the deadline; a timeout is tried 45 s after the promotion.
            handler.leaveSlot(n - 1, 0, uint32((30 << 16) | 45));
        }
        assertTrue(handler.promotedUnderChallenge() > 0, "a challenged executor left");
        assertTrue(!handler.timedOutEarly(), "promoted member timed out within delta");
        invariant_honestNeverSlashed();
    }

    /// The termination path is really exercised by the handler (guards against a vacuous P17).
    function test_handlerReachesTermination() public {
        // seed: even first byte (terminate), deposit 2^40 + 1 wei, final balances 2^20 and 2^30.
        uint256 base = (uint256(1) << 48) | (uint256(1) << (72 + 20)) | (uint256(1) << (136 + 30));
        for (uint256 k; k < 8 && handler.terminations() == 0; ++k) {
            handler.lifecycle(1, bytes32(base | (k << 200)), 7);
        }
        assertTrue(handler.terminations() >= 1, "terminated");
        uint256 id = manager.instanceCount();
        assertTrue(manager.getInstance(id).phase == Phase.Terminated, "phase");
        (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
        assertEq(withdrawn, (uint256(1) << 20) + (uint256(1) << 30), "both final balances paid");
        assertTrue(withdrawn <= deposited, "within deposits");
    }

    /// P16: per instance, total withdrawn <= total deposited.
    function invariant_withdrawnNeverExceedsDeposited() public view {
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
            assertTrue(withdrawn <= deposited, "instance solvent");
        }
    }

    /// Coins all instances hold: deposited minus withdrawn.
    function held() internal view returns (uint256 sum) {
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            (uint256 deposited, uint256 withdrawn) = manager.balanceOfInstance(id);
            sum += deposited - withdrawn;
        }
    }

    /// P17: a final balance is paid at most once; a terminated instance holds no pool.
    function invariant_terminatedReleasedAndPaidOnce() public view {
        assertTrue(!handler.paidTwice(), "final balance paid twice");
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            PoseManager.InstanceView memory v = manager.getInstance(id);
            if (v.phase != Phase.Terminated) continue;
            for (uint256 i; i < v.operators.length; ++i) {
                assertEq(v.operators[i], address(0), "terminated pool released");
            }
        }
    }

    /// P18: a member promoted while the executor is challenged has Δ from its promotion.
    function invariant_promotedMemberHasFullDelta() public view {
        assertTrue(!handler.timedOutEarly(), "promoted member timed out within delta of its promotion");
    }

    /// P9: an honest, responsive enclave is never slashed (a withdrawn stake was paid whole).
    function invariant_honestNeverSlashed() public view {
        for (uint256 i; i < handler.registered(); i += 2) {
            uint256 stake = handler.stakeWithdrawn(i)
                ? handler.stakePaid(i)
                : manager.getOperator(address(uint160(0x9000 + i))).stake;
            assertEq(stake, handler.registeredStake(i), "honest stake intact");
        }
    }

    /// P2, P15: pool members of every drawn instance are distinct registered operators, also
    /// after the handler's refills; a refill drew no current member.
    function invariant_poolMembersDistinctAndRegistered() public view {
        assertTrue(!handler.refillDrewMember(), "a refill drew a current member");
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            PoseManager.InstanceView memory v = manager.getInstance(id);
            for (uint256 i; i < v.operators.length; ++i) {
                if (v.operators[i] == address(0)) continue;
                assertTrue(manager.getOperator(v.operators[i]).registered, "member registered");
                for (uint256 j = i + 1; j < v.operators.length; ++j) {
                    assertTrue(v.operators[i] != v.operators[j], "members distinct");
                }
            }
        }
    }

    /// Storage slot of the manager's `instances` mapping, and of `operators` in an `Instance`.
    uint256 internal constant INSTANCES_SLOT = 4;
    uint256 internal constant POOL_OFFSET = 4;

    /// Slot `i` of instance `id`'s pool as stored (`getInstance` shows no pool while Drawing).
    function storedMember(uint256 id, uint256 i) internal view returns (address) {
        uint256 base = uint256(keccak256(abi.encode(id, INSTANCES_SLOT)));
        return address(uint160(uint256(vm.load(address(manager), bytes32(base + POOL_OFFSET + i)))));
    }

    /// P3: an active instance has a live executor; an instance being drawn has no pool (its
    /// stored slots are empty, and no operator counts a membership of it: every operator's
    /// membership count is the number of live slots it holds); event indices never decrease.
    function invariant_activeHasExecutor_indexMonotonic() public view {
        assertTrue(!handler.indexWentBack(), "event index went back");
        uint256 n = manager.instanceCount();
        uint256[] memory slotsHeld = new uint256[](handler.registered());
        for (uint256 id = 1; id <= n; ++id) {
            PoseManager.InstanceView memory v = manager.getInstance(id);
            if (v.phase == Phase.Active || v.phase == Phase.ExecutorChallenged || v.phase == Phase.WatchdogsChallenged)
            {
                assertTrue(v.signers[v.executorSlot] != address(0), "a live instance has a live executor");
            }
            if (v.phase == Phase.Drawing) {
                for (uint256 i; i < 16; ++i) {
                    assertEq(storedMember(id, i), address(0), "no pool before the draw");
                }
            }
            for (uint256 i; i < v.operators.length; ++i) {
                // The stored slots are the ones the view shows (the slot arithmetic is right).
                assertEq(storedMember(id, i), v.operators[i], "stored pool");
                if (v.operators[i] != address(0)) ++slotsHeld[uint160(v.operators[i]) - 0x9000];
            }
            assertEq(manager.eventHashAt(id, v.eventIndex), v.eventHash, "latest hash readable");
        }
        for (uint256 i; i < slotsHeld.length; ++i) {
            assertEq(manager.getOperator(address(uint160(0x9000 + i))).memberships, slotsHeld[i], "memberships");
        }
    }
}

/// @notice Exposes the running-hash append so the ring buffer can be filled past its size.
contract PoseManagerHarness is PoseManager {
    constructor()
        PoseManager(
            IAttestationVerifier(address(0)),
            PoseManager.Params({
                minStake: 1 gwei, creationFee: 0, challengeFee: 0, slashAmount: 0, delta: 60, exitDelay: 600
            })
        )
    {}

    function appendEvents(uint256 id, uint256 n) external {
        for (uint256 i; i < n; ++i) {
            _appendEvent(id, instances[id], EventKind.Deposit, abi.encode(i));
        }
    }
}

/// @notice The ring buffer of running hashes accepts exactly the most recent 32 indices, and
/// each accepted index returns the hash emitted for it.
contract EventHistoryTest is Fixture {
    function testFuzz_eventHashAt_acceptsOnlyRecentIndices(uint8 count, uint64 probe) public {
        PoseManagerHarness h = new PoseManagerHarness();
        uint256 id = h.createContract(0, keccak256("code"));
        h.appendEvents(id, uint256(count) % 100);
        uint64 latest = h.getInstance(id).eventIndex;
        probe = uint64(probe % (latest + 3));
        bool recent = probe <= latest && (latest < 32 || probe > latest - 32);
        if (!recent) {
            vm.expectRevert(abi.encodeWithSelector(PoseManager.PoseManager_StaleEventIndex.selector, id, probe, latest));
            h.eventHashAt(id, probe);
            return;
        }
        // Recompute the chain from index 1 and compare with what the ring returns.
        bytes32 expected =
            PoseDigests.nextEventHash(0, id, 1, 1, abi.encode(address(this), uint8(0), keccak256("code")));
        for (uint64 i = 2; i <= probe; ++i) {
            expected = PoseDigests.nextEventHash(expected, id, i, uint8(EventKind.Deposit), abi.encode(uint256(i - 2)));
        }
        assertEq(h.eventHashAt(id, probe), probe == 0 ? bytes32(0) : expected, "hash at probe");
    }
}

