// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PrivateToken} from "./PrivateToken.sol";

/// @title ClosableToken
/// @notice A PrivateToken whose issuer may also pay coins out to many accounts at once and end
/// the instance, after which every holder of coins withdraws its final balance on-chain. The
/// fault-injection simulator runs its workload on this token and ends every scenario with it.
contract ClosableToken is PrivateToken {
    /// @notice Only the issuer may pay out or end the instance.
    error ClosableToken_NotIssuer(address caller);
    /// @notice The value sent must be exactly what the payout pays.
    error ClosableToken_WrongValue(uint256 sent, uint256 needed);

    /// @notice `each` coins were paid to `recipients` accounts.
    event PaidOut(uint256 recipients, uint256 each);

    /// @notice The POSE system contract (SPEC §5) at its reserved address.
    address internal constant SYSTEM = 0x0000000000000000000000000000000000005053;

    address public immutable issuer;

    constructor(uint256 initialSupply) PrivateToken(initialSupply) {
        issuer = msg.sender;
    }

    /// @notice Pays `each` coins to every one of `recipients`, out of the value sent.
    function payOut(address[] calldata recipients, uint256 each) external payable {
        if (msg.sender != issuer) revert ClosableToken_NotIssuer(msg.sender);
        uint256 needed = recipients.length * each;
        if (msg.value != needed) revert ClosableToken_WrongValue(msg.value, needed);
        for (uint256 i; i < recipients.length; ++i) {
            payable(recipients[i]).transfer(each);
        }
        emit PaidOut(recipients.length, each);
    }

    /// @notice Ends the instance: every holder of coins withdraws its final balance on-chain.
    function close() external {
        if (msg.sender != issuer) revert ClosableToken_NotIssuer(msg.sender);
        IClosableTokenSystem(SYSTEM).terminate();
    }
}

/// @notice The part of the POSE system contract a dapp calls to end its instance.
interface IClosableTokenSystem {
    function terminate() external;
}
