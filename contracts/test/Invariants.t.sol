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

/// @notice Drives the manager with random sequences of registrations, creations, draws and
/// activations, and keeps the bookkeeping the invariants compare against.
contract ManagerHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    PoseManager public immutable manager;
    DevAttestationVerifier public immutable verifier;
    uint256 internal immutable authorityKey;
    bytes32 internal immutable measurement;

    uint256 public registered;
    uint256 public stakes;
    uint256 public fees;
    /// Creation fees and the unrewarded halves of slashes: nothing pays them out.
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
            this.timeout(id - 1, 0);
            ++timeouts;
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
        _keepUnrewarded(before);
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
        _keepUnrewarded(before);
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
            } catch {}
            _keepUnrewarded(before);
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

    /// @dev Each slash since `before` keeps the half it does not reward.
    function _keepUnrewarded(uint256[] memory before) internal {
        uint256[] memory afterwards = _stakes();
        for (uint256 i; i < before.length; ++i) {
            uint256 slashed = before[i] - afterwards[i];
            kept += slashed - slashed / 2;
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
        bytes32 d = PoseDigests.withdraw(address(manager), id, recipient, cumulative, v.eventIndex, v.eventHash);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(_keyOf(signer), d);
        try manager.withdraw(id, recipient, cumulative, v.eventIndex, abi.encodePacked(r, s, sv)) {} catch {}
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
        if (!payOut) return;
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = lb;
        try manager.withdrawFinal(id, accounts[0], a, proof) {} catch {}
        proof[0] = la;
        try manager.withdrawFinal(id, accounts[1], b, proof) {} catch {}
        // A second time pays nothing.
        try manager.withdrawFinal(id, accounts[1], b, proof) {
            paidTwice = true;
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
        uint64 idx = manager.getInstance(id).eventIndex;
        if (idx < lastSeenIndex[id]) indexWentBack = true;
        lastSeenIndex[id] = idx;
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
    /// minus withdrawn), and what nothing pays out (creation fees, unrewarded halves of slashes).
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

    /// The fuzzer reaches slashes (guards against a vacuous P9).
    function afterInvariant() public view {
        // Every challenged silent executor was timed out: the slashing path is really exercised.
        assertEq(handler.timeouts(), handler.dishonestChallenged(), "silent executors timed out");
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

    /// P9: an honest, responsive enclave is never slashed.
    function invariant_honestNeverSlashed() public view {
        for (uint256 i; i < handler.registered(); i += 2) {
            assertEq(
                manager.getOperator(address(uint160(0x9000 + i))).stake,
                handler.registeredStake(i),
                "honest stake intact"
            );
        }
    }

    /// P2: pool members of every drawn instance are distinct registered operators.
    function invariant_poolMembersDistinctAndRegistered() public view {
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

    /// P3: an active instance has a live executor; event indices never decrease.
    function invariant_activeHasExecutor_indexMonotonic() public view {
        assertTrue(!handler.indexWentBack(), "event index went back");
        uint256 n = manager.instanceCount();
        for (uint256 id = 1; id <= n; ++id) {
            PoseManager.InstanceView memory v = manager.getInstance(id);
            if (v.phase == Phase.Active || v.phase == Phase.ExecutorChallenged || v.phase == Phase.WatchdogsChallenged)
            {
                assertTrue(v.signers[v.executorSlot] != address(0), "a live instance has a live executor");
            }
            if (v.phase == Phase.Drawing) assertEq(v.operators.length, 0, "no pool before the draw");
            assertEq(manager.eventHashAt(id, v.eventIndex), v.eventHash, "latest hash readable");
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

