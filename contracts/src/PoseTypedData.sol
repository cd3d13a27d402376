// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PoseTypedData
/// @notice EIP-712 digests of what users sign off-chain (SPEC §6): `Tx` and `View`, under the
/// domain {name: "POSE", version: "1", chainId, verifyingContract: manager}. The TypeScript
/// protocol computes the same digests; known-answer vectors check both sides.
library PoseTypedData {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant TX_TYPEHASH =
        keccak256("Tx(uint256 instance,address from,uint64 nonce,address to,uint256 value,bytes data,uint64 gasLimit)");
    bytes32 internal constant VIEW_TYPEHASH =
        keccak256("View(uint256 instance,address from,address to,bytes data,uint64 expiry)");

    struct Tx {
        uint256 instance;
        address from;
        uint64 nonce;
        address to;
        uint256 value;
        bytes data;
        uint64 gasLimit;
    }

    struct View {
        uint256 instance;
        address from;
        address to;
        bytes data;
        uint64 expiry;
    }

    function domainSeparator(uint256 chainId, address manager) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("POSE"), keccak256("1"), chainId, manager));
    }

    function hashTx(uint256 chainId, address manager, Tx memory t) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(TX_TYPEHASH, t.instance, t.from, t.nonce, t.to, t.value, keccak256(t.data), t.gasLimit)
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(chainId, manager), structHash));
    }

    function hashView(uint256 chainId, address manager, View memory v) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(VIEW_TYPEHASH, v.instance, v.from, v.to, keccak256(v.data), v.expiry));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(chainId, manager), structHash));
    }
}
