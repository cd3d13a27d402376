// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

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
    mapping(uint256 => uint64) public lastSeenIndex;
    bool public indexWentBack;

    constructor(PoseManager m, DevAttestationVerifier v, uint256 authority, bytes32 meas) {
        manager = m;
        verifier = v;
        authorityKey = authority;
        measurement = meas;
    }

    function register(uint96 stakeExtra) external {
        if (registered >= 12) return;
        uint256 i = registered;
        address op = address(uint160(0x9000 + i));
        uint256 key = 0xF0000 + i;
        address signer = vm.addr(key);
        bytes32 enc = keccak256(abi.encode(i));
        bytes32 digest = verifier.reportHash(block.chainid, address(manager), measurement, signer, enc, op);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(authorityKey, digest);
        uint256 stake = manager.minStake() + (uint256(stakeExtra) % 1 ether);
        vm.deal(op, stake);
        vm.prank(op);
        manager.register{value: stake}(signer, enc, "http://127.0.0.1:1", abi.encode(measurement, abi.encodePacked(r, s, v)));
        registered++;
        stakes += stake;
    }

    function create(uint8 watchdogs) external {
        watchdogs = watchdogs % 4;
        uint256 fee = manager.creationFee();
        vm.deal(address(this), fee);
        uint256 id = manager.createContract{value: fee}(watchdogs, keccak256(abi.encode(watchdogs)));
        fees += fee;
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
        bytes32 digest = manager.activationDigest(id, bytes32(uint256(1)), bytes32(uint256(2)), mask, v.eventIndex, v.eventHash);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(key, digest);
        manager.activate(id, bytes32(uint256(1)), bytes32(uint256(2)), mask, v.eventIndex, abi.encodePacked(r, s, sv));
        _observe(id);
    }

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

    /// P1: the manager holds exactly the stakes and fees paid into it (no coin leaves yet).
    function invariant_balanceEqualsStakesPlusFees() public view {
        assertEq(address(manager).balance, handler.stakes() + handler.fees(), "manager balance");
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
            if (v.phase == Phase.Active) assertTrue(v.signers[v.executorSlot] != address(0), "executor live");
            if (v.phase == Phase.Drawing) assertEq(v.operators.length, 0, "no pool before the draw");
            assertEq(manager.eventHashAt(id, v.eventIndex), v.eventHash, "latest hash readable");
        }
    }
}

/// @notice Exposes the running-hash append so the ring buffer can be filled past its size.
contract PoseManagerHarness is PoseManager {
    constructor() PoseManager(IAttestationVerifier(address(0)), 1, 0, 60, 600) {}

    function appendEvents(uint256 id, uint256 n) external {
        for (uint256 i; i < n; ++i) _appendEvent(id, instances[id], EventKind.Deposit, abi.encode(i));
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
        bytes32 expected = h.nextEventHash(0, id, 1, 1, abi.encode(address(this), uint8(0), keccak256("code")));
        for (uint64 i = 2; i <= probe; ++i) {
            expected = h.nextEventHash(expected, id, i, uint8(EventKind.Deposit), abi.encode(uint256(i - 2)));
        }
        assertEq(h.eventHashAt(id, probe), probe == 0 ? bytes32(0) : expected, "hash at probe");
    }
}
