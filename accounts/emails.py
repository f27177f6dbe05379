"""The one spelling of an e-mail address that identifies an account, however it was typed."""

from .usernames import canonical as _fold


def canonical(address):
    """Return ``address`` stripped, NFKC-normalized and case-folded; None if it is empty."""
    return _fold(address) or None
