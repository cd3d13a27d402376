// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAttestationVerifier} from "./IAttestationVerifier.sol";
import {PoseDigests} from "./PoseDigests.sol";
import {
    EVENT_HISTORY,
    EventKind,
    MAX_CHALLENGE_PAYLOAD,
    MAX_FINAL_ACCOUNTS,
    MAX_WATCHDOG_ROUNDS,
    Phase
} from "./PoseTypes.sol";

/// @title PoseManager
/// @notice The on-chain half of POSE (SPEC §4): registry of attested enclaves with operator
/// stake, contract instances whose pools are drawn on-chain, activation by the executor
/// enclave's signature, and a per-instance running event hash that every enclave signature the
/// manager checks must name; challenges, coins, termination and exits (SPEC §4).
/// @dev Gas: each instance's hot fields share one storage slot, `InstanceEvent` is the only log
/// of an instance's transitions (its kind and data say what happened), and membership history
/// and join order are written only when a member leaves or joins late (docs/decisions/0005).
contract PoseManager is ReentrancyGuardTransient {
    // ------------------------------------------------------------------ errors

    /// @notice `operator` already registered an enclave.
    error PoseManager_AlreadyRegistered(address operator);
    /// @notice `operator` has no registered enclave.
    error PoseManager_NotRegistered(address operator);
    /// @notice The stake sent is below the minimum.
    error PoseManager_StakeTooLow(uint256 sent, uint256 minimum);
    /// @notice Stake (and the stake parameters) must be whole gwei: `amount` is not.
    error PoseManager_StakeNotWholeGwei(uint256 amount);
    /// @notice The enclave signer is already registered by `operator`.
    error PoseManager_SignerInUse(address signer, address operator);
    /// @notice The signer or encryption key is zero.
    error PoseManager_InvalidKey();
    /// @notice The endpoint is empty or longer than 256 bytes.
    error PoseManager_BadEndpoint(uint256 length);
    /// @notice The fee sent differs from the fee required.
    error PoseManager_WrongFee(uint256 sent, uint256 expected);
    /// @notice The pool would have `poolSize` members; allowed are 1 to 16.
    error PoseManager_BadWatchdogCount(uint256 watchdogCount);
    /// @notice The instance is in `current`, but the call needs `expected`.
    error PoseManager_UnexpectedPhase(uint256 id, Phase current, Phase expected);
    /// @notice The pool can only be drawn after block `drawBlock`.
    error PoseManager_DrawTooEarly(uint256 id, uint256 drawBlock, uint256 current);
    /// @notice Fewer eligible operators than pool members are needed.
    error PoseManager_NotEnoughOperators(uint256 available, uint256 needed);
    /// @notice `index` is not among the recorded event indices of instance `id`.
    error PoseManager_StaleEventIndex(uint256 id, uint64 index, uint64 latest);
    /// @notice The signature was made by `recovered`, not by `expected`.
    error PoseManager_BadSignature(address recovered, address expected);
    /// @notice The acked mask does not include the executor or names slots outside the pool.
    error PoseManager_BadAckedMask(uint256 ackedMask);
    /// @notice The deadline `deadline` has not passed yet (now `nowTs`).
    error PoseManager_DeadlineNotPassed(uint256 id, uint64 deadline, uint256 nowTs);
    /// @notice The deadline `deadline` has passed (now `nowTs`).
    error PoseManager_DeadlinePassed(uint256 id, uint64 deadline, uint256 nowTs);
    /// @notice Only `expected` may call this.
    error PoseManager_NotAllowed(address caller, address expected);
    /// @notice The mask names slots that are empty, the executor, or outside the pool.
    error PoseManager_BadMemberMask(uint256 mask);
    /// @notice A watchdog challenge is already open, or none is open.
    error PoseManager_WatchdogChallengeState(uint256 id, bool open);
    /// @notice The executor already started `rounds` watchdog rounds while challenged.
    error PoseManager_TooManyWatchdogRounds(uint256 id, uint8 rounds);
    /// @notice Slot `slot` was not challenged or already answered.
    error PoseManager_NotChallenged(uint256 id, uint256 slot);
    /// @notice The signature names an event before the challenge it answers.
    error PoseManager_ResponseTooOld(uint256 id, uint64 eventIndex, uint64 challengeIndex);
    /// @notice The instance has no empty slot to refill.
    error PoseManager_NothingToRefill(uint256 id);
    /// @notice Every eligible operator is already a member: a draw would fill no slot.
    error PoseManager_NothingToDraw(uint256 id);
    /// @notice The operator is exiting.
    error PoseManager_Exiting(address operator);
    /// @notice The operator has not requested exit, still holds `memberships`, or waits until `readyAt`.
    error PoseManager_CannotWithdraw(address operator, uint16 memberships, uint64 readyAt);
    /// @notice A deposit of zero.
    error PoseManager_ZeroDeposit();
    /// @notice `signer` never was a member enclave of instance `id`.
    error PoseManager_NotAMember(uint256 id, address signer);
    /// @notice The authorisation pays nothing: `cumulative` does not exceed what was withdrawn.
    error PoseManager_NothingToWithdraw(uint256 id, address recipient, uint256 cumulative, uint256 withdrawn);
    /// @notice Paying `amount` would take more out of instance `id` than was deposited.
    error PoseManager_Insolvent(uint256 id, uint256 amount, uint256 available);
    /// @notice Nothing to pay out to `account`.
    error PoseManager_NothingToClaim(address account);
    /// @notice The final balances name `accounts` accounts but `amounts` amounts, or more than allowed.
    error PoseManager_BadFinalBalances(uint256 accounts, uint256 amounts);
    /// @notice The final balances add up to `total`, more than the `available` coins.
    error PoseManager_FinalBalancesExceedHeld(uint256 id, uint256 total, uint256 available);
    /// @notice A termination must name the latest event `latest` (no deposit after the final state).
    error PoseManager_TerminationNotLatest(uint256 id, uint64 eventIndex, uint64 latest);
    /// @notice A page of final balances outside `pages`, already in, or `pages` out of range.
    error PoseManager_BadFinalPage(uint256 page, uint256 pages);
    /// @notice A page of other final balances (root or page count) than the pages already in.
    error PoseManager_OtherFinalBalances(uint256 id, bytes32 root, uint256 pages);
    /// @notice Deposits are closed: the instance's final balances are being published.
    error PoseManager_Terminating(uint256 id);
    /// @notice (`recipient`, `cumulative`) is not a leaf of instance `id`'s final balances.
    error PoseManager_NotInFinalBalances(uint256 id, address recipient, uint256 cumulative);
    /// @notice A payout to `to` failed.
    error PoseManager_TransferFailed(address to, uint256 amount);
    /// @notice A challenge's payload is longer than `MAX_CHALLENGE_PAYLOAD` bytes.
    error PoseManager_PayloadTooLarge(uint256 length, uint256 maximum);

    // ------------------------------------------------------------------ events

    /// @notice An operator registered an attested enclave with stake.
    event OperatorRegistered(
        address indexed operator,
        address indexed enclaveSigner,
        bytes32 encryptionKey,
        bytes32 measurement,
        string endpoint,
        uint256 stake
    );
    /// @notice An operator changed its endpoint.
    event EndpointChanged(address indexed operator, string endpoint);
    /// @notice A page of instance `id`'s final balances other than the last one in (which is in
    /// the `Terminated` event): `data` is `abi.encode(root, accounts, cumulatives)`, as there.
    event FinalBalancesPage(uint256 indexed id, uint256 page, bytes data);
    /// @notice The pool draw was moved to a later block because the old block hash expired.
    event DrawRescheduled(uint256 indexed id, uint256 drawBlock);
    /// @notice `operator` lost `amount` of stake; `beneficiary` (zero for a watchdog) was rewarded `reward`.
    event Slashed(address indexed operator, uint256 amount, address indexed beneficiary, uint256 reward);
    /// @notice `account` may claim `amount` more.
    event PayoutCredited(address indexed account, uint256 amount);
    /// @notice `account` claimed `amount`.
    event PayoutClaimed(address indexed account, uint256 amount);
    /// @notice `operator` asked to leave; it is no longer drawn.
    event ExitRequested(address indexed operator, uint64 at);
    /// @notice `operator` withdrew its stake.
    event StakeWithdrawn(address indexed operator, uint256 amount);
    /// @notice A step of the running event hash of instance `id` (SPEC §4), and the one log of
    /// every transition of an instance: `kind` is an `EventKind`, `data` its ABI-encoded fields.
    event InstanceEvent(uint256 indexed id, uint64 indexed index, uint8 kind, bytes data, bytes32 hash);

    // ------------------------------------------------------------------ types and state

    /// @dev Where an operator stands: not registered (or stake withdrawn), registered, exiting.
    enum OperatorStatus {
        None,
        Registered,
        Exiting
    }

    /// @dev The endpoint is not stored: it is in `OperatorRegistered` and `EndpointChanged`
    /// (docs/decisions/0009).
    struct Operator {
        // slot 0: written by registration, every draw and removal, and every slash
        address enclaveSigner;
        uint24 eligiblePosition; // 1-based position in `eligible`; 0 = not eligible
        uint16 memberships; // live pool slots held
        OperatorStatus status;
        uint48 stakeGwei; // stake in gwei (up to 281,474 ether)
        // slot 1
        bytes32 encryptionKey;
        // slot 2: written by `requestExit` only
        uint40 exitRequestedAt;
    }

    /// @dev Most slots a pool has (the executor and up to 15 watchdogs).
    uint256 internal constant MAX_POOL = 16;

    struct Instance {
        // slot 0: what nearly every operation reads and writes
        Phase phase;
        uint8 watchdogCount;
        uint8 executorSlot;
        uint8 watchdogRounds; // watchdog rounds started while the executor is challenged
        uint16 watchdogMask; // watchdogs under an open watchdog challenge
        uint16 respondedMask;
        uint64 eventIndex;
        uint96 deposited; // coins (SPEC §4 Coins), cumulative
        uint16 finalPagesLeft; // pages of final balances still to come once one is in
        // slot 1: the executor challenge. Written at creation (the creator and the draw block fill
        // it until the draw) and kept after a challenge closes (the phase says whether one is
        // open), so a challenge always rewrites a non-zero slot.
        address challenger; // the creator until the first challenge
        uint40 challengeDeadline; // the draw block while Drawing
        uint56 challengeIndex; // event index of the challenge (or of the latest promotion)
        // slot 2: watchdog challenges and refills
        uint64 watchdogDeadline;
        uint64 watchdogChallengeIndex;
        uint40 refillBlock;
        uint16 joins; // members ever added; 0 until the first refill (the pool size)
        // slot 3: the executor enclave's key (checked by every executor signature and most
        // withdrawal authorisations) beside what withdrawals write
        address executorSigner;
        uint96 withdrawn; // cumulative
        // remaining fields: one slot each. The code commitment, the contract encryption key and
        // the genesis digest are not stored: nothing on-chain reads them, and they are in the
        // `Created` and `Activated` events.
        // Per slot, `watchdogCount + 1` of them; address(0) before the draw and once removed. A
        // fixed array: its size is the watchdog count's, so no length slot is written.
        address[MAX_POOL] operators;
        // Join order per slot, 16 bits each: promotion picks the longest-serving live member,
        // which holds every acknowledged update (a refilled member may still be catching up).
        // Zero until the first refill: slot i joined i-th (see `_joinOrder`).
        uint256 joinOrder;
    }

    /// @notice A read-only view of an instance.
    struct InstanceView {
        Phase phase;
        uint8 watchdogCount;
        uint64 drawBlock; // while Drawing
        uint8 executorSlot;
        uint64 eventIndex;
        bytes32 eventHash;
        address[] signers;
        address[] operators;
        address challenger;
        uint64 challengeDeadline;
        uint16 watchdogMask;
        uint16 respondedMask;
        uint64 watchdogDeadline;
        uint64 refillBlock;
    }

    /// @notice A read-only view of an operator.
    struct OperatorView {
        address enclaveSigner;
        bytes32 encryptionKey;
        uint256 stake;
        bool registered;
        bool exiting;
        uint16 memberships;
        uint64 exitRequestedAt;
    }

    uint8 internal constant REMOVED_NOT_ACKED = 1;
    uint8 internal constant REMOVED_TIMED_OUT = 2;
    uint8 internal constant REMOVED_EXITED = 3;
    uint8 internal constant REMOVED_RELEASED = 4; // its executor left before activation
    /// @notice Most pages final balances may take.
    uint256 internal constant MAX_FINAL_PAGES = 128;

    /// @notice A page of final balances (`terminate`): `accounts` and their final cumulative
    /// withdrawals, page `page` of `pages` of the tree whose root is `root`.
    struct FinalBalances {
        bytes32 root;
        uint256 page;
        uint256 pages;
        address[] accounts;
        uint256[] cumulatives;
    }

    /// @notice The pages of final balances in so far while more are to come: a bit per page,
    /// their page count and the sum of their cumulative withdrawals.
    struct FinalPages {
        uint128 mask;
        uint16 pages;
        uint96 total;
    }

    /// @notice Deployment parameters.
    struct Params {
        uint256 minStake;
        uint256 creationFee;
        uint256 challengeFee;
        /// Stake taken from an operator whose enclave is removed by a timed-out challenge.
        uint256 slashAmount;
        /// Δ: seconds a challenged member has to answer.
        uint64 delta;
        /// Seconds between `requestExit` and `withdrawStake`.
        uint64 exitDelay;
    }

    IAttestationVerifier public immutable verifier;
    uint256 public immutable minStake;
    uint256 public immutable creationFee;
    uint256 public immutable challengeFee;
    uint256 public immutable slashAmount;
    /// @notice Δ: seconds a challenged member has to answer.
    uint64 public immutable delta;
    uint64 public immutable exitDelay;
    /// @notice The block this manager was created in: none of its logs is older, so clients and
    /// operators search its logs from here, not from genesis.
    uint256 public immutable deploymentBlock;

    /// @notice Instances created so far (ids run from 1).
    uint64 public instanceCount;
    mapping(address => Operator) internal operators;
    mapping(address => address) public operatorOfSigner;
    address[] internal eligible;
    mapping(uint256 => Instance) internal instances;
    mapping(uint256 => mapping(uint256 => bytes32)) internal eventHashes;
    /// @notice Amounts each account may `claim` (fees, rewards, refunds).
    mapping(address => uint256) public payouts;
    /// @notice What each recipient has withdrawn from each instance (cumulative).
    mapping(uint256 => mapping(address => uint256)) public withdrawnBy;
    /// @notice Enclaves that were members of an instance and left it (removed, or released by
    /// termination); with the current members, the enclaves whose authorisations count.
    mapping(uint256 => mapping(address => bool)) public formerMember;
    /// @notice Merkle root of each terminated instance's final cumulative withdrawals (set by
    /// the first page in; paid against once the last is).
    mapping(uint256 => bytes32) public finalRoot;
    /// @notice The pages of final balances in so far, while more are to come.
    mapping(uint256 => FinalPages) internal finalPages;

    constructor(IAttestationVerifier verifier_, Params memory p) {
        if (p.minStake % 1 gwei != 0) revert PoseManager_StakeNotWholeGwei(p.minStake);
        if (p.slashAmount % 1 gwei != 0) revert PoseManager_StakeNotWholeGwei(p.slashAmount);
        verifier = verifier_;
        minStake = p.minStake;
        creationFee = p.creationFee;
        challengeFee = p.challengeFee;
        slashAmount = p.slashAmount;
        delta = p.delta;
        exitDelay = p.exitDelay;
        deploymentBlock = block.number;
    }

    // ------------------------------------------------------------------ operators

    /// @notice Registers the caller's enclave with stake and attestation evidence.
    function register(address enclaveSigner, bytes32 encryptionKey, string calldata endpoint, bytes calldata evidence)
        external
        payable
    {
        Operator storage op = operators[msg.sender];
        // INVARIANT: one enclave per operator.
        if (op.status != OperatorStatus.None) revert PoseManager_AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert PoseManager_StakeTooLow(msg.value, minStake);
        if (msg.value % 1 gwei != 0) revert PoseManager_StakeNotWholeGwei(msg.value);
        if (enclaveSigner == address(0) || encryptionKey == bytes32(0)) revert PoseManager_InvalidKey();
        address holder = operatorOfSigner[enclaveSigner];
        // INVARIANT: an enclave key identifies exactly one operator.
        if (holder != address(0)) revert PoseManager_SignerInUse(enclaveSigner, holder);
        _checkEndpoint(endpoint);
        bytes32 measurement = verifier.verify(evidence, enclaveSigner, encryptionKey, msg.sender);

        eligible.push(msg.sender);
        op.enclaveSigner = enclaveSigner;
        op.eligiblePosition = SafeCast.toUint24(eligible.length);
        op.status = OperatorStatus.Registered;
        op.stakeGwei = SafeCast.toUint48(msg.value / 1 gwei);
        op.encryptionKey = encryptionKey;
        operatorOfSigner[enclaveSigner] = msg.sender;
        emit OperatorRegistered(msg.sender, enclaveSigner, encryptionKey, measurement, endpoint, msg.value);
    }

    /// @notice Changes the caller's endpoint (e.g. after a restart on another port). Only the
    /// event records it: the latest `OperatorRegistered` or `EndpointChanged` of an operator is
    /// its endpoint.
    function setEndpoint(string calldata endpoint) external {
        if (operators[msg.sender].status == OperatorStatus.None) revert PoseManager_NotRegistered(msg.sender);
        _checkEndpoint(endpoint);
        emit EndpointChanged(msg.sender, endpoint);
    }

    function _checkEndpoint(string calldata endpoint) internal pure {
        uint256 n = bytes(endpoint).length;
        if (n == 0 || n > 256) revert PoseManager_BadEndpoint(n);
    }

    // ------------------------------------------------------------------ instances

    /// @notice Creates an instance with `watchdogCount` watchdogs for code committed to by
    /// `initCommitment`; the pool is drawn by `drawPool` from the hash of the next block.
    function createContract(uint8 watchdogCount, bytes32 initCommitment) external payable returns (uint256 id) {
        if (msg.value != creationFee) revert PoseManager_WrongFee(msg.value, creationFee);
        if (uint256(watchdogCount) + 1 > MAX_POOL) revert PoseManager_BadWatchdogCount(watchdogCount);
        id = ++instanceCount;
        Instance storage inst = instances[id];
        inst.phase = Phase.Drawing;
        inst.watchdogCount = watchdogCount;
        inst.challenger = msg.sender;
        // INVARIANT: the pool comes from the hash of a block after the creation block.
        inst.challengeDeadline = SafeCast.toUint40(block.number + 1);
        _appendEvent(id, inst, EventKind.Created, abi.encode(msg.sender, watchdogCount, initCommitment));
    }

    /// @notice Draws the pool of instance `id`; anyone may call once the draw block exists.
    function drawPool(uint256 id) external {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.Drawing);
        uint256 drawBlock = inst.challengeDeadline;
        if (block.number <= drawBlock) revert PoseManager_DrawTooEarly(id, drawBlock, block.number);
        bytes32 seedHash = blockhash(drawBlock);
        if (seedHash == bytes32(0)) {
            // The hash left the 256-block window: draw from a fresh later block instead.
            inst.challengeDeadline = SafeCast.toUint40(block.number + 1);
            emit DrawRescheduled(id, block.number + 1);
            return;
        }
        uint256 size = uint256(inst.watchdogCount) + 1;
        address[] memory pool = _draw(keccak256(abi.encode(seedHash, id)), size);
        address[] memory signers = new address[](size);
        bytes32[] memory keys = new bytes32[](size);
        for (uint256 i; i < size; ++i) {
            Operator storage op = operators[pool[i]];
            signers[i] = op.enclaveSigner;
            keys[i] = op.encryptionKey;
            ++op.memberships;
        }
        for (uint256 i; i < size; ++i) {
            inst.operators[i] = pool[i];
        }
        inst.executorSigner = signers[0];
        inst.phase = Phase.Creating;
        // Encryption keys are bound by the running hash so an operator cannot substitute them.
        _appendEvent(id, inst, EventKind.PoolDrawn, abi.encode(signers, keys));
    }

    /// @dev Partial Fisher–Yates over `eligible` without copying it: O(size) storage reads.
    function _draw(bytes32 seed, uint256 size) internal view returns (address[] memory pool) {
        uint256 n = eligible.length;
        if (n < size) revert PoseManager_NotEnoughOperators(n, size);
        pool = new address[](size);
        uint256[] memory swapFrom = new uint256[](size);
        uint256[] memory swapTo = new uint256[](size);
        uint256 swaps;
        for (uint256 i; i < size; ++i) {
            uint256 j = i + uint256(keccak256(abi.encode(seed, i))) % (n - i);
            uint256 atJ = _lookup(swapFrom, swapTo, swaps, j);
            uint256 atI = _lookup(swapFrom, swapTo, swaps, i);
            pool[i] = eligible[atJ];
            // Position j now holds what was at i; position i is consumed.
            swapFrom[swaps] = j;
            swapTo[swaps] = atI;
            ++swaps;
        }
    }

    function _lookup(uint256[] memory from, uint256[] memory to, uint256 count, uint256 pos)
        internal
        pure
        returns (uint256)
    {
        for (uint256 k = count; k > 0; --k) {
            if (from[k - 1] == pos) return to[k - 1];
        }
        return pos;
    }

    /// @notice Activates instance `id`: the executor enclave proves it created the genesis state
    /// and that the watchdogs in `ackedMask` acknowledged it. Slots not acked are removed.
    function activate(
        uint256 id,
        bytes32 contractEncryptionKey,
        bytes32 genesisDigest,
        uint256 ackedMask,
        uint64 eventIndex,
        bytes calldata signature
    ) external {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.Creating);
        uint256 size = _poolSize(inst);
        if (ackedMask & 1 == 0 || ackedMask >> size != 0) revert PoseManager_BadAckedMask(ackedMask);
        // INVARIANT: only the executor enclave's signature activates an instance.
        _requireExecutorSignature(
            inst, _activationDigestAt(id, contractEncryptionKey, genesisDigest, ackedMask, eventIndex), signature
        );

        inst.phase = Phase.Active;
        _appendEvent(id, inst, EventKind.Activated, abi.encode(contractEncryptionKey, genesisDigest, ackedMask));
        for (uint256 slot = 1; slot < size; ++slot) {
            // A slot its member left before activation is empty already.
            if (ackedMask & (1 << slot) == 0 && inst.operators[slot] != address(0)) {
                _removeMember(id, inst, slot, REMOVED_NOT_ACKED);
            }
        }
    }

    function _activationDigestAt(
        uint256 id,
        bytes32 contractEncryptionKey,
        bytes32 genesisDigest,
        uint256 ackedMask,
        uint64 eventIndex
    ) internal view returns (bytes32) {
        bytes32 eventHash = eventHashAt(id, eventIndex);
        return PoseDigests.activation(
            address(this), id, contractEncryptionKey, genesisDigest, ackedMask, eventIndex, eventHash
        );
    }

    /// @dev Reverts unless `signature` over `digest` is by the executor enclave of `inst`.
    function _requireExecutorSignature(Instance storage inst, bytes32 digest, bytes calldata signature) internal view {
        address executor = inst.executorSigner;
        address recovered = ECDSA.recover(digest, signature);
        if (recovered != executor) revert PoseManager_BadSignature(recovered, executor);
    }

    /// @dev Empties `slot`; if it held the executor, promotes the longest-serving live member or
    /// freezes. An executor that leaves before activation freezes the instance: only it holds
    /// the genesis it was to activate.
    function _removeMember(uint256 id, Instance storage inst, uint256 slot, uint8 reason) internal {
        address signer = _vacate(id, inst, slot);
        _endWatchdogChallengeOf(inst, slot);
        _appendEvent(id, inst, EventKind.MemberRemoved, abi.encode(uint8(slot), signer, reason));
        if (slot != inst.executorSlot) return;
        if (inst.phase == Phase.Creating) {
            _freezeBeforeActivation(id, inst);
            return;
        }
        uint256 n = _poolSize(inst);
        uint256 best = type(uint256).max;
        uint256 bestOrder = type(uint256).max;
        uint256 order = _joinOrder(inst, n);
        for (uint256 i; i < n; ++i) {
            uint256 joined = (order >> (16 * i)) & 0xffff;
            if (inst.operators[i] != address(0) && joined < bestOrder) {
                best = i;
                bestOrder = joined;
            }
        }
        if (best != type(uint256).max) {
            // INVARIANT: a live instance always has exactly one executor: the longest-serving member.
            inst.executorSlot = uint8(best);
            inst.executorSigner = operators[inst.operators[best]].enclaveSigner;
            // An executor answers no watchdog challenge: the promoted member leaves the round.
            _endWatchdogChallengeOf(inst, best);
            // INVARIANT: a promoted member inherits an open executor challenge with Δ from its
            // promotion, never its predecessor's remaining time (decision 0022), or from the end
            // of the predecessor's open watchdog round, which it cannot extend and whose silent
            // watchdogs it needs removed to serve (decision 0006), as `challengeExecutor` counts.
            if (inst.phase == Phase.ExecutorChallenged) {
                _startChallengeClock(inst);
                inst.challengeIndex = SafeCast.toUint56(inst.eventIndex);
            }
            return;
        }
        // No member is left to answer an open executor challenge: its fee goes back.
        if (inst.phase == Phase.ExecutorChallenged) _credit(inst.challenger, challengeFee);
        inst.phase = Phase.Frozen;
        inst.watchdogMask = 0;
        inst.executorSigner = address(0);
    }

    /// @dev Reverts for a challenge payload over `MAX_CHALLENGE_PAYLOAD` (decision 0022).
    function _requirePayloadFits(bytes calldata payload) internal pure {
        if (payload.length > MAX_CHALLENGE_PAYLOAD) {
            revert PoseManager_PayloadTooLarge(payload.length, MAX_CHALLENGE_PAYLOAD);
        }
    }

    /// @dev Takes `slot` out of an open watchdog challenge; a round left with nobody in it ends.
    function _endWatchdogChallengeOf(Instance storage inst, uint256 slot) internal {
        uint16 mask = inst.watchdogMask;
        uint16 bit = uint16(1 << slot);
        if (mask & bit == 0) return;
        mask &= ~bit;
        inst.watchdogMask = mask;
        if (mask == 0 && inst.phase == Phase.WatchdogsChallenged) inst.phase = Phase.Active;
    }

    /// @dev The executor left before activation: every other member is released, the instance
    /// is frozen (it never held coins) and the creator gets its creation fee back.
    function _freezeBeforeActivation(uint256 id, Instance storage inst) internal {
        uint256 n = _poolSize(inst);
        for (uint256 i; i < n; ++i) {
            if (inst.operators[i] == address(0)) continue;
            address signer = _vacate(id, inst, i);
            _appendEvent(id, inst, EventKind.MemberRemoved, abi.encode(uint8(i), signer, REMOVED_RELEASED));
        }
        inst.phase = Phase.Frozen;
        inst.executorSigner = address(0);
        // The creator is `challenger` until the first challenge, which needs an active instance.
        _credit(inst.challenger, creationFee);
    }

    /// @dev Ends the membership in `slot`; its enclave's authorisations keep counting.
    function _vacate(uint256 id, Instance storage inst, uint256 slot) internal returns (address signer) {
        Operator storage op = operators[inst.operators[slot]];
        signer = op.enclaveSigner;
        --op.memberships;
        formerMember[id][signer] = true;
        inst.operators[slot] = address(0);
    }

    /// @dev Join order per slot (16 bits each). Until the first refill every slot joined in slot
    /// order, which is not stored: the draw saves that write.
    function _joinOrder(Instance storage inst, uint256 n) internal view returns (uint256 order) {
        order = inst.joinOrder;
        if (order != 0) return order;
        for (uint256 i; i < n; ++i) {
            order |= (i + 1) << (16 * i);
        }
    }

    // ------------------------------------------------------------------ challenges (SPEC §4)

    /// @notice Challenges the executor of `id` to answer `payload` (typically a user transaction
    /// encrypted to the contract key) within Δ. Anyone may call, paying the challenge fee.
    function challengeExecutor(uint256 id, bytes calldata payload) external payable {
        Instance storage inst = instances[id];
        if (inst.phase != Phase.Active && inst.phase != Phase.WatchdogsChallenged) {
            revert PoseManager_UnexpectedPhase(id, inst.phase, Phase.Active);
        }
        // INVARIANT: an open executor challenge holds exactly one challenge fee, paid out once:
        // to the executor's operator on an answer, back to the challenger if the instance freezes.
        if (msg.value != challengeFee) revert PoseManager_WrongFee(msg.value, challengeFee);
        _requirePayloadFits(payload);
        // Δ counts from now, or from the deadline of the executor's own open watchdog challenge:
        // it cannot start another round to extend its deadline while one is open, and a silent
        // watchdog's removal is what lets it serve again (docs/decisions/0006). That round counts
        // as one of its MAX_WATCHDOG_ROUNDS.
        _startChallengeClock(inst);
        inst.phase = Phase.ExecutorChallenged;
        // Set before the event is appended, so the append keeps no hash for the closed
        // challenge whose index this one replaces (decision 0024).
        inst.challengeIndex = SafeCast.toUint56(inst.eventIndex + 1);
        inst.challenger = msg.sender;
        _appendEvent(id, inst, EventKind.ExecutorChallenged, abi.encode(msg.sender, payload));
    }

    /// @dev The executor's deadline for an executor challenge it starts to face (challenged, or
    /// promoted while challenged): Δ from now, or from the end of an open watchdog round, which
    /// counts as one of its MAX_WATCHDOG_ROUNDS (a round is open exactly when the mask is set;
    /// one past its deadline, not finalised yet, neither moves the clock nor counts).
    function _startChallengeClock(Instance storage inst) internal {
        uint256 from = block.timestamp;
        uint8 rounds;
        if (inst.watchdogMask != 0) {
            uint256 w = inst.watchdogDeadline;
            if (w > from) {
                from = w;
                rounds = 1;
            }
        }
        inst.watchdogRounds = rounds;
        inst.challengeDeadline = SafeCast.toUint40(from + delta);
    }

    /// @notice The executor enclave's answer to the open challenge. The signature must name an
    /// event at or after the challenge, so an enclave that never saw the challenge cannot answer.
    function respondExecutor(uint256 id, bytes calldata response, uint64 eventIndex, bytes calldata signature)
        external
    {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.ExecutorChallenged);
        _requireBeforeDeadline(id, inst.challengeDeadline);
        // INVARIANT: a response proves its enclave saw the challenge (running hash at or after it).
        if (eventIndex < inst.challengeIndex) revert PoseManager_ResponseTooOld(id, eventIndex, inst.challengeIndex);
        _requireExecutorSignature(
            inst,
            PoseDigests.respond(address(this), id, keccak256(response), eventIndex, eventHashAt(id, eventIndex)),
            signature
        );

        _answered(id, inst, response);
    }

    /// @dev The executor answered the open challenge: its operator earns the fee.
    function _answered(uint256 id, Instance storage inst, bytes calldata response) internal {
        _credit(inst.operators[inst.executorSlot], challengeFee);
        inst.phase = inst.watchdogMask != 0 ? Phase.WatchdogsChallenged : Phase.Active;
        _appendEvent(id, inst, EventKind.ExecutorResponded, abi.encode(response));
    }

    function _requireBeforeDeadline(uint256 id, uint64 deadline) internal view {
        if (block.timestamp > deadline) revert PoseManager_DeadlinePassed(id, deadline, block.timestamp);
    }

    /// @notice After Δ without an answer: removes and slashes the executor, refunds and rewards
    /// the challenger, promotes the lowest live watchdog, and keeps the challenge open against
    /// it with a fresh Δ. With no live member left the instance is frozen.
    function executorTimeout(uint256 id) external {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.ExecutorChallenged);
        // INVARIANT: a member is removed only after a challenge it did not answer within Δ.
        if (block.timestamp <= inst.challengeDeadline) {
            revert PoseManager_DeadlineNotPassed(id, inst.challengeDeadline, block.timestamp);
        }
        address challenger = inst.challenger;
        address slashed = inst.operators[inst.executorSlot];
        _removeMember(id, inst, inst.executorSlot, REMOVED_TIMED_OUT);
        _slash(slashed, challenger);
        _appendEvent(id, inst, EventKind.ExecutorTimedOut, abi.encode(slashed, challenger));
        // The promotion gave the new executor Δ from now; its answer names this event or a later one.
        if (inst.phase != Phase.Frozen) inst.challengeIndex = SafeCast.toUint56(inst.eventIndex);
    }

    /// @notice The executor's operator challenges the watchdogs in `memberMask` to acknowledge
    /// `payload` (the unacknowledged updates, encrypted) within Δ.
    function challengeWatchdogs(uint256 id, uint256 memberMask, bytes calldata payload) external {
        Instance storage inst = instances[id];
        Phase phase = inst.phase;
        if (phase != Phase.Active && phase != Phase.ExecutorChallenged) {
            revert PoseManager_UnexpectedPhase(id, phase, Phase.Active);
        }
        address executorOperator = inst.operators[inst.executorSlot];
        if (msg.sender != executorOperator) revert PoseManager_NotAllowed(msg.sender, executorOperator);
        if (inst.watchdogMask != 0) revert PoseManager_WatchdogChallengeState(id, true);
        _requirePayloadFits(payload);
        uint256 n = _poolSize(inst);
        if (memberMask == 0 || memberMask >> n != 0 || memberMask & (1 << inst.executorSlot) != 0) {
            revert PoseManager_BadMemberMask(memberMask);
        }
        for (uint256 i; i < n; ++i) {
            if (memberMask & (1 << i) != 0 && inst.operators[i] == address(0)) {
                revert PoseManager_BadMemberMask(memberMask);
            }
        }
        inst.watchdogMask = uint16(memberMask);
        inst.respondedMask = 0;
        inst.watchdogDeadline = uint64(block.timestamp) + delta;
        if (phase == Phase.ExecutorChallenged) {
            // INVARIANT: a challenged executor extends its own deadline by at most MAX_WATCHDOG_ROUNDS × Δ,
            // and only before it passed (a round cannot revive an executor already timed out).
            _requireBeforeDeadline(id, inst.challengeDeadline);
            if (inst.watchdogRounds >= MAX_WATCHDOG_ROUNDS) {
                revert PoseManager_TooManyWatchdogRounds(id, inst.watchdogRounds);
            }
            ++inst.watchdogRounds;
            inst.challengeDeadline = SafeCast.toUint40(inst.challengeDeadline + delta);
        } else {
            inst.phase = Phase.WatchdogsChallenged;
        }
        // Set before the event is appended (see `challengeExecutor`).
        inst.watchdogChallengeIndex = inst.eventIndex + 1;
        _appendEvent(id, inst, EventKind.WatchdogsChallenged, abi.encode(uint16(memberMask), payload));
    }

    /// @notice A challenged watchdog's enclave acknowledges the challenge (its signature names an
    /// event at or after the challenge).
    function respondWatchdog(uint256 id, uint8 slot, uint64 eventIndex, bytes calldata signature) external {
        Instance storage inst = instances[id];
        if (inst.watchdogMask & (1 << slot) == 0 || inst.respondedMask & (1 << slot) != 0) {
            revert PoseManager_NotChallenged(id, slot);
        }
        _requireBeforeDeadline(id, inst.watchdogDeadline);
        if (eventIndex < inst.watchdogChallengeIndex) {
            revert PoseManager_ResponseTooOld(id, eventIndex, inst.watchdogChallengeIndex);
        }
        address expected = operators[inst.operators[slot]].enclaveSigner;
        address recovered = ECDSA.recover(
            PoseDigests.watchdogResponse(address(this), id, slot, eventIndex, eventHashAt(id, eventIndex)), signature
        );
        if (recovered != expected) revert PoseManager_BadSignature(recovered, expected);
        inst.respondedMask |= uint16(1 << slot);
        _appendEvent(id, inst, EventKind.WatchdogResponded, abi.encode(slot));
    }

    /// @notice After Δ: removes and slashes every challenged watchdog that did not answer.
    function finalizeWatchdogChallenge(uint256 id) external {
        Instance storage inst = instances[id];
        uint16 mask = inst.watchdogMask;
        if (mask == 0) revert PoseManager_WatchdogChallengeState(id, false);
        if (block.timestamp <= inst.watchdogDeadline) {
            revert PoseManager_DeadlineNotPassed(id, inst.watchdogDeadline, block.timestamp);
        }
        uint16 silent = mask & ~inst.respondedMask;
        inst.watchdogMask = 0;
        inst.respondedMask = 0;
        _appendEvent(id, inst, EventKind.WatchdogChallengeFinalized, abi.encode(silent));
        uint256 n = _poolSize(inst);
        for (uint256 i; i < n; ++i) {
            if (silent & (1 << i) == 0 || inst.operators[i] == address(0)) continue;
            address slashed = inst.operators[i];
            _removeMember(id, inst, i, REMOVED_TIMED_OUT);
            // No reward: the executor's operator would profit from removing its own watchdogs.
            _slash(slashed, address(0));
        }
        if (inst.phase == Phase.WatchdogsChallenged) inst.phase = Phase.Active;
    }

    /// @notice Fills empty slots of an active instance with operators drawn from the hash of a
    /// later block, excluding current members. The first call schedules the draw; a call after
    /// that block performs it. Anyone may call.
    function refill(uint256 id) external {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.Active);
        uint256 n = _poolSize(inst);
        uint256 empty;
        for (uint256 i; i < n; ++i) {
            if (inst.operators[i] == address(0)) ++empty;
        }
        if (empty == 0) revert PoseManager_NothingToRefill(id);
        uint64 at = inst.refillBlock;
        if (at == 0 || (block.number > at && blockhash(at) == bytes32(0))) {
            inst.refillBlock = SafeCast.toUint40(block.number + 1);
            return;
        }
        if (block.number <= at) revert PoseManager_DrawTooEarly(id, at, block.number);
        inst.refillBlock = 0;
        uint256 order = _joinOrder(inst, n);
        uint256 joins = inst.joins == 0 ? n : inst.joins;
        address[] memory chosen =
            _drawExcluding(keccak256(abi.encode(blockhash(at), id, "refill")), inst.operators, n, empty);
        // An empty draw changes nothing: reverting keeps members from paying for it (and their
        // enclaves from sealing an event) again and again until an operator registers.
        if (chosen.length == 0) revert PoseManager_NothingToDraw(id);
        uint8[] memory slots = new uint8[](chosen.length);
        address[] memory signers = new address[](chosen.length);
        bytes32[] memory keys = new bytes32[](chosen.length);
        uint256 k;
        for (uint256 i; i < n && k < chosen.length; ++i) {
            if (inst.operators[i] != address(0)) continue;
            Operator storage op = operators[chosen[k]];
            inst.operators[i] = chosen[k];
            ++op.memberships;
            uint256 joined = ++joins;
            order = (order & ~(uint256(0xffff) << (16 * i))) | (joined << (16 * i));
            slots[k] = uint8(i);
            signers[k] = op.enclaveSigner;
            keys[k] = op.encryptionKey;
            ++k;
        }
        inst.joinOrder = order;
        inst.joins = uint16(joins);
        _appendEvent(id, inst, EventKind.Refilled, abi.encode(slots, signers, keys));
    }

    /// @dev Up to `want` distinct eligible operators that are not in `current`, uniformly.
    function _drawExcluding(bytes32 seed, address[MAX_POOL] storage current, uint256 size, uint256 want)
        internal
        view
        returns (address[] memory chosen)
    {
        uint256 n = eligible.length;
        address[] memory pool = new address[](want);
        uint256 got;
        uint256[] memory swapFrom = new uint256[](n);
        uint256[] memory swapTo = new uint256[](n);
        uint256 swaps;
        for (uint256 i; i < n && got < want; ++i) {
            uint256 j = i + uint256(keccak256(abi.encode(seed, i))) % (n - i);
            uint256 atJ = _lookup(swapFrom, swapTo, swaps, j);
            uint256 atI = _lookup(swapFrom, swapTo, swaps, i);
            swapFrom[swaps] = j;
            swapTo[swaps] = atI;
            ++swaps;
            address candidate = eligible[atJ];
            if (!_contains(current, size, candidate)) pool[got++] = candidate;
        }
        chosen = new address[](got);
        for (uint256 i; i < got; ++i) {
            chosen[i] = pool[i];
        }
    }

    function _contains(address[MAX_POOL] storage list, uint256 size, address a) internal view returns (bool) {
        for (uint256 i; i < size; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }

    // ------------------------------------------------------------------ coins (SPEC §4)

    /// @notice Deposits coins into instance `id`; they are credited to the caller inside the
    /// contract's world once its enclaves see this event. Not while the executor is challenged:
    /// once the contract ended, its answer is the first page of final balances, which must name
    /// the latest event, and deposits landing before each page would get it slashed (decision
    /// 0030, addendum).
    function deposit(uint256 id) external payable {
        Instance storage inst = instances[id];
        Phase phase = inst.phase;
        if (phase != Phase.Active && phase != Phase.WatchdogsChallenged) {
            revert PoseManager_UnexpectedPhase(id, phase, Phase.Active);
        }
        if (msg.value == 0) revert PoseManager_ZeroDeposit();
        // INVARIANT: no deposit after the final balances' first page, which it would miss.
        if (inst.finalPagesLeft != 0) revert PoseManager_Terminating(id);
        inst.deposited = SafeCast.toUint96(inst.deposited + msg.value);
        _appendEvent(id, inst, EventKind.Deposit, abi.encode(msg.sender, msg.value));
    }

    /// @notice Pays `recipient` what a member enclave authorised beyond what it already
    /// withdrew. Authorisations are cumulative, so a replayed or older one pays nothing more.
    function withdraw(
        uint256 id,
        address recipient,
        uint256 cumulativeAmount,
        uint64 eventIndex,
        bytes calldata signature
    ) external nonReentrant {
        Instance storage inst = instances[id];
        bytes32 digest = PoseDigests.withdraw(
            address(this), id, recipient, cumulativeAmount, eventIndex, eventHashAt(id, eventIndex)
        );
        address signer = ECDSA.recover(digest, signature);
        // INVARIANT: only an enclave that is or was a member authorises coins out of an instance.
        if (!_isOrWasMember(id, inst, signer)) revert PoseManager_NotAMember(id, signer);
        _payOut(id, inst, recipient, cumulativeAmount);
    }

    /// @dev The executor first (it signs most authorisations), then members that left
    /// (`formerMember`), then the other current members.
    function _isOrWasMember(uint256 id, Instance storage inst, address signer) internal view returns (bool) {
        if (signer == address(0)) return false;
        if (signer == inst.executorSigner || formerMember[id][signer]) return true;
        uint256 n = _poolSize(inst);
        for (uint256 i; i < n; ++i) {
            address op = inst.operators[i];
            if (op != address(0) && operators[op].enclaveSigner == signer) return true;
        }
        return false;
    }

    /// @dev Pays `recipient` the part of `cumulativeAmount` not yet withdrawn from instance `id`.
    function _payOut(uint256 id, Instance storage inst, address recipient, uint256 cumulativeAmount) internal {
        uint256 already = withdrawnBy[id][recipient];
        if (cumulativeAmount <= already) {
            revert PoseManager_NothingToWithdraw(id, recipient, cumulativeAmount, already);
        }
        uint256 amount = cumulativeAmount - already;
        uint256 available = inst.deposited - inst.withdrawn;
        // INVARIANT: per instance, total withdrawn <= total deposited.
        if (amount > available) revert PoseManager_Insolvent(id, amount, available);
        withdrawnBy[id][recipient] = cumulativeAmount;
        // Cannot overflow: withdrawn + amount <= deposited, a uint96.
        inst.withdrawn += uint96(amount);
        _appendEvent(id, inst, EventKind.Withdrawal, abi.encode(recipient, cumulativeAmount, amount));
        _send(recipient, amount);
    }

    /// @notice Ends instance `id` with the final state its executor enclave signed: every
    /// account's final cumulative withdrawal (`withdrawn + balance` in the world), in `pages`
    /// pages of at most `MAX_FINAL_ACCOUNTS`, sent in any order. Every page's signature names
    /// the tree's root, the page and an event; the first page in names the latest, so no
    /// deposit is left out of the final state, fixes the root and the page count, and closes
    /// deposits (a later page may name any event the manager remembers). The
    /// leaves travel in the events (`FinalBalancesPage`, and `Terminated` for the last page in)
    /// so anyone can rebuild the tree; `withdrawFinal` pays against it once the last page is
    /// in, and the pool is released: its operators' memberships end. A page taken while the
    /// executor is challenged (before the deadline) answers the challenge (decision 0030).
    function terminate(uint256 id, FinalBalances calldata b, uint64 eventIndex, bytes calldata signature) external {
        Instance storage inst = instances[id];
        bool challenged = _checkTermination(id, inst, b.accounts.length, b.cumulatives.length, eventIndex);
        uint256 left = _checkFinalPage(id, inst, b.root, b.page, b.pages) - 1;
        // The page as its event carries it; the signature is over its hash.
        bytes memory page = abi.encode(b.root, b.accounts, b.cumulatives);
        _requireExecutorSignature(inst, _terminateDigest(id, b, keccak256(page), eventIndex), signature);
        FinalPages storage fp = finalPages[id];
        uint256 total = fp.total + _sum(b.cumulatives);
        // INVARIANT: the final balances never promise more than was deposited.
        if (total > inst.deposited) revert PoseManager_FinalBalancesExceedHeld(id, total, inst.deposited);
        // Once the contract ended, a page is the executor's only answer to a challenge: a host
        // that withholds the pages is timed out and replaced (docs/decisions/0030).
        if (challenged) _answered(id, inst, msg.data[:0]);
        inst.finalPagesLeft = uint16(left);
        if (left == 0) {
            _releasePool(id, inst);
            _appendEvent(id, inst, EventKind.Terminated, page);
        } else {
            // Cannot overflow: total <= deposited, a uint96; page < MAX_FINAL_PAGES.
            fp.mask |= uint128(1 << b.page);
            fp.total = uint96(total);
            emit FinalBalancesPage(id, b.page, page);
        }
    }

    function _terminateDigest(uint256 id, FinalBalances calldata b, bytes32 pageHash, uint64 eventIndex)
        internal
        view
        returns (bytes32)
    {
        uint256 page = (b.pages << 16) | b.page;
        return PoseDigests.terminate(address(this), id, b.root, page, pageHash, eventIndex, eventHashAt(id, eventIndex));
    }

    /// @dev The pages of final balances still to come with this one: the first page in fixes
    /// `root` and `pages`; a later one must name them and be new.
    function _checkFinalPage(uint256 id, Instance storage inst, bytes32 root, uint256 page, uint256 pages)
        internal
        returns (uint256 left)
    {
        left = inst.finalPagesLeft;
        if (left == 0) {
            if (page >= pages || pages > MAX_FINAL_PAGES) revert PoseManager_BadFinalPage(page, pages);
            finalRoot[id] = root;
            if (pages > 1) finalPages[id].pages = uint16(pages);
            return pages;
        }
        FinalPages storage fp = finalPages[id];
        if (root != finalRoot[id] || pages != fp.pages) revert PoseManager_OtherFinalBalances(id, root, pages);
        if (page >= pages || (fp.mask >> page) & 1 != 0) revert PoseManager_BadFinalPage(page, pages);
    }

    /// @dev Returns whether the executor is challenged (before its deadline), which the page answers.
    function _checkTermination(uint256 id, Instance storage inst, uint256 accounts, uint256 amounts, uint64 eventIndex)
        internal
        view
        returns (bool challenged)
    {
        Phase phase = inst.phase;
        challenged = phase == Phase.ExecutorChallenged;
        if (challenged) {
            _requireBeforeDeadline(id, inst.challengeDeadline);
        } else if (phase != Phase.Active && phase != Phase.WatchdogsChallenged) {
            revert PoseManager_UnexpectedPhase(id, phase, Phase.Active);
        }
        if (accounts != amounts || accounts > MAX_FINAL_ACCOUNTS) {
            revert PoseManager_BadFinalBalances(accounts, amounts);
        }
        // The first page names the latest event, so no deposit is left out. It closes deposits,
        // so nothing changes the final balances after it: a later page may name any event the
        // manager remembers, and claims or challenges between pages void none (decision 0030).
        if (eventIndex != inst.eventIndex && inst.finalPagesLeft == 0) {
            revert PoseManager_TerminationNotLatest(id, eventIndex, inst.eventIndex);
        }
    }

    function _sum(uint256[] calldata values) internal pure returns (uint256 total) {
        uint256 n = values.length;
        for (uint256 i; i < n; ++i) {
            total += values[i];
        }
    }

    /// @dev Ends every live membership of a terminated instance.
    function _releasePool(uint256 id, Instance storage inst) internal {
        inst.phase = Phase.Terminated;
        inst.watchdogMask = 0;
        inst.respondedMask = 0;
        inst.watchdogDeadline = 0;
        uint256 n = _poolSize(inst);
        for (uint256 i; i < n; ++i) {
            if (inst.operators[i] != address(0)) _vacate(id, inst, i);
        }
    }

    /// @notice After termination: pays `recipient` its final cumulative withdrawal minus what it
    /// already withdrew, proven against the final balances' Merkle root (OpenZeppelin's
    /// standard leaf `keccak256(bytes.concat(keccak256(abi.encode(recipient, cumulative))))`).
    function withdrawFinal(uint256 id, address recipient, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        nonReentrant
    {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.Terminated);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(recipient, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, finalRoot[id], leaf)) {
            revert PoseManager_NotInFinalBalances(id, recipient, cumulativeAmount);
        }
        _payOut(id, inst, recipient, cumulativeAmount);
    }

    /// @notice Coins deposited into and withdrawn from instance `id`.
    function balanceOfInstance(uint256 id) external view returns (uint256 deposited, uint256 withdrawn) {
        return (instances[id].deposited, instances[id].withdrawn);
    }

    // ------------------------------------------------------------------ exit, stake, payouts

    /// @notice Stops the caller's operator from being drawn; its memberships are handed over
    /// with `leave`, and its stake is withdrawable after the exit delay.
    function requestExit() external {
        Operator storage op = operators[msg.sender];
        OperatorStatus status = op.status;
        if (status == OperatorStatus.None) revert PoseManager_NotRegistered(msg.sender);
        if (status == OperatorStatus.Exiting) revert PoseManager_Exiting(msg.sender);
        op.status = OperatorStatus.Exiting;
        op.exitRequestedAt = uint40(block.timestamp);
        _removeEligible(msg.sender);
        emit ExitRequested(msg.sender, uint64(block.timestamp));
    }

    /// @notice An exiting operator hands over its slot in instance `id` (it is replaced like a
    /// removed member; an executor's lowest live watchdog takes over).
    function leave(uint256 id) external {
        Instance storage inst = instances[id];
        Phase phase = inst.phase;
        if (phase == Phase.None || phase == Phase.Drawing || phase == Phase.Frozen || phase == Phase.Terminated) {
            revert PoseManager_UnexpectedPhase(id, phase, Phase.Active);
        }
        if (operators[msg.sender].status != OperatorStatus.Exiting) {
            revert PoseManager_NotAllowed(msg.sender, address(0));
        }
        uint256 n = _poolSize(inst);
        for (uint256 i; i < n; ++i) {
            if (inst.operators[i] == msg.sender) {
                _removeMember(id, inst, i, REMOVED_EXITED);
                return;
            }
        }
        revert PoseManager_NotAllowed(msg.sender, address(0));
    }

    /// @notice Pays out the stake of an exited operator with no memberships after the exit delay.
    function withdrawStake() external nonReentrant {
        Operator storage op = operators[msg.sender];
        uint64 readyAt = uint64(op.exitRequestedAt) + exitDelay;
        // INVARIANT: stake leaves the manager only through withdrawStake or a slash payout.
        if (op.status != OperatorStatus.Exiting || op.memberships != 0 || block.timestamp < readyAt) {
            revert PoseManager_CannotWithdraw(msg.sender, op.memberships, readyAt);
        }
        uint256 amount = uint256(op.stakeGwei) * 1 gwei;
        op.stakeGwei = 0;
        op.status = OperatorStatus.None;
        emit StakeWithdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Pays the caller what it was credited (challenge fees, rewards, refunds).
    function claim() external nonReentrant {
        uint256 amount = payouts[msg.sender];
        if (amount == 0) revert PoseManager_NothingToClaim(msg.sender);
        payouts[msg.sender] = 0;
        emit PayoutClaimed(msg.sender, amount);
        _send(msg.sender, amount);
    }

    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert PoseManager_TransferFailed(to, amount);
    }

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        payouts[account] += amount;
        emit PayoutCredited(account, amount);
    }

    /// @dev Takes `slashAmount` (or what is left) from `operator`; half rewards `beneficiary`, if any.
    function _slash(address operator, address beneficiary) internal {
        Operator storage op = operators[operator];
        uint256 stake = uint256(op.stakeGwei) * 1 gwei;
        // Whole gwei: the stake and `slashAmount` are (checked at registration and deployment).
        uint256 amount = stake < slashAmount ? stake : slashAmount;
        stake -= amount;
        op.stakeGwei = uint48(stake / 1 gwei);
        // The other half (all of it without a beneficiary) stays in the manager: nothing pays it out.
        uint256 reward;
        if (beneficiary != address(0)) {
            reward = amount / 2;
            _credit(beneficiary, reward);
        }
        if (stake < minStake) _removeEligible(operator);
        emit Slashed(operator, amount, beneficiary, reward);
    }

    function _removeEligible(address operator) internal {
        Operator storage op = operators[operator];
        uint256 pos = op.eligiblePosition;
        if (pos == 0) return;
        address last = eligible[eligible.length - 1];
        eligible[pos - 1] = last;
        operators[last].eligiblePosition = uint24(pos);
        eligible.pop();
        op.eligiblePosition = 0;
    }

    // ------------------------------------------------------------------ running event hash

    function _appendEvent(uint256 id, Instance storage inst, EventKind kind, bytes memory data) internal {
        uint64 index = inst.eventIndex + 1;
        bytes32 prev = index == 1 ? bytes32(0) : eventHashes[id][(index - 1) % EVENT_HISTORY];
        bytes32 h = PoseDigests.nextEventHash(prev, id, index, uint8(kind), data);
        inst.eventIndex = index;
        uint256 ring = index % EVENT_HISTORY;
        if (index > EVENT_HISTORY) _keepChallengeHash(id, inst, index - EVENT_HISTORY, ring);
        eventHashes[id][ring] = h;
        emit InstanceEvent(id, index, uint8(kind), data, h);
    }

    /// @dev Before the ring forgets the hash of event `old`, keeps it (under key
    /// `EVENT_HISTORY + old`) when an open challenge's answer names it: members see events only
    /// after their operators' confirmations, and events others add meanwhile (cheap deposits)
    /// must not push the event they sign out of reach (decision 0024).
    function _keepChallengeHash(uint256 id, Instance storage inst, uint64 old, uint256 ring) internal {
        bool keep = (inst.phase == Phase.ExecutorChallenged && inst.challengeIndex == old)
            || (inst.watchdogMask != 0 && inst.watchdogChallengeIndex == old);
        if (keep) eventHashes[id][EVENT_HISTORY + old] = eventHashes[id][ring];
    }

    /// @notice The running hash of instance `id` after event `index`; only the most recent
    /// `EVENT_HISTORY` indices are kept (index 0, the empty hash, while fewer events exist),
    /// and the events open challenges were answered against once the ring moved past them.
    function eventHashAt(uint256 id, uint64 index) public view returns (bytes32) {
        uint64 latest = instances[id].eventIndex;
        // INVARIANT: a signature may only name an event the manager still remembers.
        if (index > latest) revert PoseManager_StaleEventIndex(id, index, latest);
        if (latest >= EVENT_HISTORY && index <= latest - EVENT_HISTORY) {
            bytes32 kept = eventHashes[id][EVENT_HISTORY + index];
            if (kept == bytes32(0)) revert PoseManager_StaleEventIndex(id, index, latest);
            return kept;
        }
        if (index == 0) return bytes32(0);
        return eventHashes[id][index % EVENT_HISTORY];
    }

    /// @dev Slots of the pool: the executor and the watchdogs.
    function _poolSize(Instance storage inst) internal view returns (uint256) {
        return uint256(inst.watchdogCount) + 1;
    }

    function _requirePhase(uint256 id, Instance storage inst, Phase expected) internal view {
        if (inst.phase != expected) revert PoseManager_UnexpectedPhase(id, inst.phase, expected);
    }

    // ------------------------------------------------------------------ views

    /// @notice Everything about instance `id`.
    function getInstance(uint256 id) external view returns (InstanceView memory v) {
        Instance storage inst = instances[id];
        v.phase = inst.phase;
        v.watchdogCount = inst.watchdogCount;
        if (inst.phase == Phase.Drawing) v.drawBlock = inst.challengeDeadline;
        v.executorSlot = inst.executorSlot;
        v.eventIndex = inst.eventIndex;
        v.eventHash = inst.eventIndex == 0 ? bytes32(0) : eventHashes[id][inst.eventIndex % EVENT_HISTORY];
        // Before the draw there is no pool to show.
        uint256 n = inst.phase == Phase.None || inst.phase == Phase.Drawing ? 0 : _poolSize(inst);
        v.operators = new address[](n);
        v.signers = new address[](n);
        for (uint256 i; i < n; ++i) {
            address op = inst.operators[i];
            v.operators[i] = op;
            v.signers[i] = op == address(0) ? address(0) : operators[op].enclaveSigner;
        }
        if (inst.phase == Phase.ExecutorChallenged) {
            v.challenger = inst.challenger;
            v.challengeDeadline = inst.challengeDeadline;
        }
        v.watchdogMask = inst.watchdogMask;
        v.respondedMask = inst.respondedMask;
        v.watchdogDeadline = inst.watchdogDeadline;
        v.refillBlock = inst.refillBlock;
    }

    /// @notice Everything about `operator`.
    function getOperator(address operator) external view returns (OperatorView memory v) {
        Operator storage op = operators[operator];
        v.enclaveSigner = op.enclaveSigner;
        v.encryptionKey = op.encryptionKey;
        v.stake = uint256(op.stakeGwei) * 1 gwei;
        v.registered = op.status != OperatorStatus.None;
        v.exiting = op.status == OperatorStatus.Exiting;
        v.memberships = op.memberships;
        v.exitRequestedAt = op.exitRequestedAt;
    }

    /// @notice Number of operators a pool can currently be drawn from.
    function eligibleOperatorCount() external view returns (uint256) {
        return eligible.length;
    }
}
