// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Airdrop
/// @notice An example POSE dapp that spreads coins over many accounts: its host drops an amount
/// on each address of a list (the list stays private inside the instance) and may end the
/// instance, after which every recipient withdraws its final balance on-chain with a Merkle
/// proof. Final balances of more than 1,024 accounts are published in pages.
contract Airdrop {
    /// @notice Only the host may drop coins or end the airdrop.
    error Airdrop_NotHost(address caller);
    /// @notice The value sent must be exactly what the drop pays out.
    error Airdrop_WrongValue(uint256 sent, uint256 needed);

    /// @notice `each` was dropped on `recipients` accounts.
    event Dropped(uint256 recipients, uint256 each);

    /// @notice The POSE system contract (SPEC §5) at its reserved address.
    address internal constant SYSTEM = 0x0000000000000000000000000000000000005053;

    address public immutable host;

    constructor() {
        host = msg.sender;
    }

    /// @notice Pays `each` to every one of `recipients`, out of the value sent.
    function drop(address[] calldata recipients, uint256 each) external payable {
        if (msg.sender != host) revert Airdrop_NotHost(msg.sender);
        uint256 needed = recipients.length * each;
        if (msg.value != needed) revert Airdrop_WrongValue(msg.value, needed);
        for (uint256 i; i < recipients.length; ++i) {
            payable(recipients[i]).transfer(each);
        }
        emit Dropped(recipients.length, each);
    }

    /// @notice Ends the instance: everyone withdraws their final balance on-chain.
    function close() external {
        if (msg.sender != host) revert Airdrop_NotHost(msg.sender);
        IAirdropSystem(SYSTEM).terminate();
    }
}

/// @notice The part of the POSE system contract a dapp calls to end its instance.
interface IAirdropSystem {
    function terminate() external;
}
