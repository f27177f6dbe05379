"""The one spelling of a username that identifies an account, however it was typed."""

import unicodedata


def canonical(username):
    """
    Return ``username`` stripped, NFKC-normalized and case-folded.

    "Alice", " alice", "ａlice" (fullwidth) and "alice\\u3000" all give
    "alice"; "Roß" gives "ross". Two usernames with the same canonical form
    name the same account.
    """
    folded = unicodedata.normalize("NFKC", username or "").strip().casefold()
    # Case folding can leave a string that NFKC changes again (Unicode's NFKC_Casefold).
    return unicodedata.normalize("NFKC", folded).strip()
