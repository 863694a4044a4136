"""Errors of the tenant keyring and its master-key providers. Messages never carry key bytes."""

from __future__ import annotations


class KeyringError(RuntimeError):
    """Raised when keys cannot be created, read or unsealed. Messages carry no key bytes."""


class MasterKeyError(KeyringError):
    """Raised when the master-key provider (AWS KMS or a local master key) cannot wrap or unwrap a tenant KEK."""
