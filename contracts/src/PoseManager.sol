// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IAttestationVerifier} from "./IAttestationVerifier.sol";
import {EventKind, Phase} from "./PoseTypes.sol";

/// @title PoseManager
/// @notice The on-chain half of POSE (SPEC §4): registry of attested enclaves with operator
/// stake, contract instances whose pools are drawn on-chain, activation by the executor
/// enclave's signature, and a per-instance running event hash that every enclave signature the
/// manager checks must name. Challenges, coins and exits extend this contract in later stages.
contract PoseManager {
    // ------------------------------------------------------------------ errors

    /// @notice `operator` already registered an enclave.
    error PoseManager_AlreadyRegistered(address operator);
    /// @notice `operator` has no registered enclave.
    error PoseManager_NotRegistered(address operator);
    /// @notice The stake sent is below the minimum.
    error PoseManager_StakeTooLow(uint256 sent, uint256 minimum);
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
    /// @notice An instance changed phase.
    event PhaseChanged(uint256 indexed id, Phase phase);
    /// @notice The pool draw was moved to a later block because the old block hash expired.
    event DrawRescheduled(uint256 indexed id, uint256 drawBlock);
    /// @notice A step of the running event hash of instance `id` (SPEC §4).
    event InstanceEvent(uint256 indexed id, uint64 indexed index, uint8 kind, bytes data, bytes32 hash);

    // ------------------------------------------------------------------ types and state

    struct Operator {
        address enclaveSigner;
        uint64 eligiblePosition; // 1-based position in `eligible`; 0 = not eligible
        bool registered;
        bool exiting;
        bytes32 encryptionKey;
        uint256 stake;
        string endpoint;
    }

    struct Instance {
        Phase phase;
        uint8 watchdogCount;
        uint8 executorSlot;
        uint64 eventIndex;
        uint64 drawBlock;
        address creator;
        bytes32 initCommitment;
        bytes32 contractEncryptionKey;
        bytes32 genesisDigest;
        address[] operators; // per slot; address(0) once removed
    }

    /// @notice A read-only view of an instance.
    struct InstanceView {
        Phase phase;
        uint8 watchdogCount;
        address creator;
        bytes32 initCommitment;
        uint64 drawBlock;
        uint8 executorSlot;
        bytes32 contractEncryptionKey;
        bytes32 genesisDigest;
        uint64 eventIndex;
        bytes32 eventHash;
        address[] signers;
        address[] operators;
    }

    /// @notice A read-only view of an operator.
    struct OperatorView {
        address enclaveSigner;
        bytes32 encryptionKey;
        string endpoint;
        uint256 stake;
        bool registered;
        bool exiting;
    }

    /// @notice Number of recent running-hash values kept per instance.
    uint64 public constant EVENT_HISTORY = 32;
    uint256 internal constant MAX_POOL = 16;
    uint8 internal constant REMOVED_NOT_ACKED = 1;

    IAttestationVerifier public immutable verifier;
    uint256 public immutable minStake;
    uint256 public immutable creationFee;
    /// @notice Δ: seconds a challenged member has to answer.
    uint64 public immutable delta;
    uint256 public immutable exitDelay;

    uint256 public instanceCount;
    mapping(address => Operator) internal operators;
    mapping(address => address) public operatorOfSigner;
    address[] internal eligible;
    mapping(uint256 => Instance) internal instances;
    mapping(uint256 => mapping(uint256 => bytes32)) internal eventHashes;

    constructor(IAttestationVerifier verifier_, uint256 minStake_, uint256 creationFee_, uint64 delta_, uint256 exitDelay_) {
        verifier = verifier_;
        minStake = minStake_;
        creationFee = creationFee_;
        delta = delta_;
        exitDelay = exitDelay_;
    }

    // ------------------------------------------------------------------ operators

    /// @notice Registers the caller's enclave with stake and attestation evidence.
    function register(address enclaveSigner, bytes32 encryptionKey, string calldata endpoint, bytes calldata evidence)
        external
        payable
    {
        Operator storage op = operators[msg.sender];
        // INVARIANT: one enclave per operator.
        if (op.registered) revert PoseManager_AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert PoseManager_StakeTooLow(msg.value, minStake);
        if (enclaveSigner == address(0) || encryptionKey == bytes32(0)) revert PoseManager_InvalidKey();
        address holder = operatorOfSigner[enclaveSigner];
        // INVARIANT: an enclave key identifies exactly one operator.
        if (holder != address(0)) revert PoseManager_SignerInUse(enclaveSigner, holder);
        _checkEndpoint(endpoint);
        bytes32 measurement = verifier.verify(evidence, enclaveSigner, encryptionKey, msg.sender);

        eligible.push(msg.sender);
        op.enclaveSigner = enclaveSigner;
        op.eligiblePosition = uint64(eligible.length);
        op.registered = true;
        op.encryptionKey = encryptionKey;
        op.stake = msg.value;
        op.endpoint = endpoint;
        operatorOfSigner[enclaveSigner] = msg.sender;
        emit OperatorRegistered(msg.sender, enclaveSigner, encryptionKey, measurement, endpoint, msg.value);
    }

    /// @notice Changes the caller's endpoint (e.g. after a restart on another port).
    function setEndpoint(string calldata endpoint) external {
        if (!operators[msg.sender].registered) revert PoseManager_NotRegistered(msg.sender);
        _checkEndpoint(endpoint);
        operators[msg.sender].endpoint = endpoint;
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
        inst.creator = msg.sender;
        inst.initCommitment = initCommitment;
        // INVARIANT: the pool comes from the hash of a block after the creation block.
        inst.drawBlock = uint64(block.number + 1);
        emit PhaseChanged(id, Phase.Drawing);
        _appendEvent(id, inst, EventKind.Created, abi.encode(msg.sender, watchdogCount, initCommitment));
    }

    /// @notice Draws the pool of instance `id`; anyone may call once the draw block exists.
    function drawPool(uint256 id) external {
        Instance storage inst = instances[id];
        _requirePhase(id, inst, Phase.Drawing);
        uint256 drawBlock = inst.drawBlock;
        if (block.number <= drawBlock) revert PoseManager_DrawTooEarly(id, drawBlock, block.number);
        bytes32 seedHash = blockhash(drawBlock);
        if (seedHash == bytes32(0)) {
            // The hash left the 256-block window: draw from a fresh later block instead.
            inst.drawBlock = uint64(block.number + 1);
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
        }
        inst.operators = pool;
        inst.phase = Phase.Creating;
        emit PhaseChanged(id, Phase.Creating);
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
        uint256 size = inst.operators.length;
        if (ackedMask & 1 == 0 || ackedMask >> size != 0) revert PoseManager_BadAckedMask(ackedMask);
        // INVARIANT: only the executor enclave's signature activates an instance.
        _requireExecutorSignature(
            inst, _activationDigestAt(id, contractEncryptionKey, genesisDigest, ackedMask, eventIndex), signature
        );

        inst.contractEncryptionKey = contractEncryptionKey;
        inst.genesisDigest = genesisDigest;
        inst.phase = Phase.Active;
        emit PhaseChanged(id, Phase.Active);
        _appendEvent(id, inst, EventKind.Activated, abi.encode(contractEncryptionKey, genesisDigest, ackedMask));
        for (uint256 slot = 1; slot < size; ++slot) {
            if (ackedMask & (1 << slot) == 0) _removeMember(id, inst, slot, REMOVED_NOT_ACKED);
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
        return activationDigest(id, contractEncryptionKey, genesisDigest, ackedMask, eventIndex, eventHash);
    }

    /// @dev Reverts unless `signature` over `digest` is by the executor enclave of `inst`.
    function _requireExecutorSignature(Instance storage inst, bytes32 digest, bytes calldata signature) internal view {
        address executor = operators[inst.operators[inst.executorSlot]].enclaveSigner;
        address recovered = ECDSA.recover(digest, signature);
        if (recovered != executor) revert PoseManager_BadSignature(recovered, executor);
    }

    function _removeMember(uint256 id, Instance storage inst, uint256 slot, uint8 reason) internal {
        address signer = operators[inst.operators[slot]].enclaveSigner;
        inst.operators[slot] = address(0);
        _appendEvent(id, inst, EventKind.MemberRemoved, abi.encode(uint8(slot), signer, reason));
    }

    // ------------------------------------------------------------------ running event hash

    function _appendEvent(uint256 id, Instance storage inst, EventKind kind, bytes memory data) internal {
        uint64 index = inst.eventIndex + 1;
        bytes32 prev = index == 1 ? bytes32(0) : eventHashes[id][(index - 1) % EVENT_HISTORY];
        bytes32 h = nextEventHash(prev, id, index, uint8(kind), data);
        inst.eventIndex = index;
        eventHashes[id][index % EVENT_HISTORY] = h;
        emit InstanceEvent(id, index, uint8(kind), data, h);
    }

    /// @notice One step of the running hash: what enclaves recompute from the events.
    function nextEventHash(bytes32 prev, uint256 id, uint64 index, uint8 kind, bytes memory data)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(prev, id, index, kind, keccak256(data)));
    }

    /// @notice The running hash of instance `id` after event `index`; only the most recent
    /// `EVENT_HISTORY` indices are kept (index 0, the empty hash, while fewer events exist).
    function eventHashAt(uint256 id, uint64 index) public view returns (bytes32) {
        uint64 latest = instances[id].eventIndex;
        // INVARIANT: a signature may only name an event the manager still remembers.
        if (index > latest || (latest >= EVENT_HISTORY && index <= latest - EVENT_HISTORY)) {
            revert PoseManager_StaleEventIndex(id, index, latest);
        }
        if (index == 0) return bytes32(0);
        return eventHashes[id][index % EVENT_HISTORY];
    }

    /// @notice The digest the executor enclave signs in `activate`.
    function activationDigest(
        uint256 id,
        bytes32 contractEncryptionKey,
        bytes32 genesisDigest,
        uint256 ackedMask,
        uint64 eventIndex,
        bytes32 eventHash
    ) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                "POSE-ACTIVATE-v1",
                block.chainid,
                address(this),
                id,
                contractEncryptionKey,
                genesisDigest,
                ackedMask,
                eventIndex,
                eventHash
            )
        );
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
        v.creator = inst.creator;
        v.initCommitment = inst.initCommitment;
        v.drawBlock = inst.drawBlock;
        v.executorSlot = inst.executorSlot;
        v.contractEncryptionKey = inst.contractEncryptionKey;
        v.genesisDigest = inst.genesisDigest;
        v.eventIndex = inst.eventIndex;
        v.eventHash = inst.eventIndex == 0 ? bytes32(0) : eventHashes[id][inst.eventIndex % EVENT_HISTORY];
        uint256 n = inst.operators.length;
        v.operators = new address[](n);
        v.signers = new address[](n);
        for (uint256 i; i < n; ++i) {
            address op = inst.operators[i];
            v.operators[i] = op;
            v.signers[i] = op == address(0) ? address(0) : operators[op].enclaveSigner;
        }
    }

    /// @notice Everything about `operator`.
    function getOperator(address operator) external view returns (OperatorView memory v) {
        Operator storage op = operators[operator];
        v.enclaveSigner = op.enclaveSigner;
        v.encryptionKey = op.encryptionKey;
        v.endpoint = op.endpoint;
        v.stake = op.stake;
        v.registered = op.registered;
        v.exiting = op.exiting;
    }

    /// @notice Number of operators a pool can currently be drawn from.
    function eligibleOperatorCount() external view returns (uint256) {
        return eligible.length;
    }
}
