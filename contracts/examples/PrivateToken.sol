// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PrivateToken
/// @notice An example POSE dapp: a token whose balances are private. Inside a POSE instance the
/// state is visible only to enclaves, and this contract lets each user read only their own
/// balance through a signed view call (`msg.sender` is the signing user).
contract PrivateToken {
    /// @notice The caller's balance is too low for a transfer.
    error PrivateToken_InsufficientBalance(uint256 balance, uint256 needed);
    /// @notice Somebody asked for a balance that is not theirs.
    error PrivateToken_NotYourBalance(address caller, address account);

    /// @notice Emitted on every transfer (visible only to the parties' receipts).
    event Transfer(address indexed from, address indexed to, uint256 amount);

    string public constant name = "Private Token";
    string public constant symbol = "PRIV";
    uint256 public totalSupply;
    mapping(address => uint256) private balances;

    /// @notice Mints `initialSupply` to the creator.
    constructor(uint256 initialSupply) {
        totalSupply = initialSupply;
        balances[msg.sender] = initialSupply;
        emit Transfer(address(0), msg.sender, initialSupply);
    }

    /// @notice Moves `amount` from the caller to `to`.
    function transfer(address to, uint256 amount) external returns (bool) {
        uint256 balance = balances[msg.sender];
        if (balance < amount) revert PrivateToken_InsufficientBalance(balance, amount);
        unchecked {
            // Cannot underflow: checked above. Cannot overflow: the sum of balances is totalSupply.
            balances[msg.sender] = balance - amount;
            balances[to] += amount;
        }
        emit Transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice The balance of `account`, readable only by `account` itself.
    function balanceOf(address account) external view returns (uint256) {
        if (msg.sender != account) revert PrivateToken_NotYourBalance(msg.sender, account);
        return balances[account];
    }

    /// @notice The caller's own balance.
    function myBalance() external view returns (uint256) {
        return balances[msg.sender];
    }
}
