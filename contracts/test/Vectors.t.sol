// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PoseDigests} from "../src/PoseDigests.sol";
import {PoseManager} from "../src/PoseManager.sol";
import {PoseTypedData} from "../src/PoseTypedData.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Known-answer vectors shared with TypeScript (test/vectors/hashes.json, made with viem
/// by scripts/make-vectors.ts; test/unit/vectors.test.ts checks the TypeScript side).
contract VectorsTest is Fixture {
    address internal constant MANAGER = 0x5FbDB2315678afecb367f032d93F642f64180aa3;

    function test_vector_attestationReportHash() public view {
        bytes32 h = verifier.reportHash(
            31337,
            MANAGER,
            0x1111111111111111111111111111111111111111111111111111111111111111,
            0x2222222222222222222222222222222222222222,
            0x3333333333333333333333333333333333333333333333333333333333333333,
            0x4444444444444444444444444444444444444444
        );
        assertEq(h, 0xe68c6b34bdc2158a1193f0e2ea5b4481d19fcdc656955e88bf8436ac0f856d1d, "attestation");
    }

    function test_vector_activationDigest() public {
        vm.chainId(31337);
        vm.etch(MANAGER, address(manager).code);
        bytes32 h = PoseDigests.activation(
            MANAGER,
            7,
            0x5555555555555555555555555555555555555555555555555555555555555555,
            0x6666666666666666666666666666666666666666666666666666666666666666,
            5,
            3,
            0x7777777777777777777777777777777777777777777777777777777777777777
        );
        assertEq(h, 0x48ff40977f83b95ca5a5e8c21222ec4adb38970f46f1757bd39e5f3dadadd8ca, "activation");
    }

    function test_vector_eventHashStep() public pure {
        bytes32 h = PoseDigests.nextEventHash(
            0x8888888888888888888888888888888888888888888888888888888888888888, 7, 4, 2, hex"deadbeef"
        );
        assertEq(h, 0x97b16efb9b230c460606da3c96acb95b523cebbeb578daf65834b4af542f7124, "event hash step");
    }

    function test_vector_txDigest() public pure {
        PoseTypedData.Tx memory t = PoseTypedData.Tx({
            instance: 7,
            from: 0x9999999999999999999999999999999999999999,
            nonce: 42,
            to: 0x000000000000000000000000000000000000c0DE,
            value: 1 ether,
            data: hex"a9059cbb",
            gasLimit: 1000000
        });
        assertEq(
            PoseTypedData.hashTx(31337, MANAGER, t),
            0x36e25af876528a88258c5a6f691dde2b5233123379713c700d630eadcb2b02ab,
            "tx"
        );
    }

    function test_vector_viewDigest() public pure {
        PoseTypedData.View memory v = PoseTypedData.View({
            instance: 7,
            from: 0x9999999999999999999999999999999999999999,
            to: 0x000000000000000000000000000000000000c0DE,
            data: hex"70a08231",
            expiry: 1700000000
        });
        assertEq(
            PoseTypedData.hashView(31337, MANAGER, v),
            0xd68170577c777002bfddb0b9a1506295a0025746d9bb218ec2a4ad2a40043775,
            "view"
        );
    }
}
