"""The one spelling of a username that identifies an account, and the scripts it may mix."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


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


# Scripts that one writing system mixes: Japanese, Korean, Chinese with Bopomofo.
WRITING_SYSTEMS = (
    {"HAN", "HIRAGANA", "KATAKANA"},
    {"HAN", "HANGUL"},
    {"HAN", "BOPOMOFO"},
)
# A letter's Unicode name starts with its script, except for these.
_SCRIPT_OF_NAME = {
    "CJK": "HAN",
    "IDEOGRAPHIC": "HAN",
    "HENTAIGANA": "HIRAGANA",
    "KATAKANA-HIRAGANA": "KATAKANA",  # ー, the long vowel mark of both kana
}


def letter_scripts(username):
    """Return the scripts of the letters in ``username`` ("LATIN", "CYRILLIC", "HAN"...)."""
    return {
        _script(char)
        for char in unicodedata.normalize("NFKC", username)
        if unicodedata.category(char).startswith("L")
    }


def _script(char):
    # The stdlib has no Script property; a letter's name starts with its script
    # ("CYRILLIC SMALL LETTER A"), and NFKC has already mapped the letters whose
    # names do not (fullwidth, mathematical, ...) onto ones that do. A modifier
    # letter counts as a script of its own: ˍ looks like _.
    word = unicodedata.name(char, "").split(" ", 1)[0]
    return _SCRIPT_OF_NAME.get(word, word)


def validate_single_script(username):
    """Refuse a username whose letters come from more than one writing system."""
    scripts = letter_scripts(username)
    if len(scripts) > 1 and not any(scripts <= system for system in WRITING_SYSTEMS):
        raise ValidationError(
            _("Use letters of one script: this name mixes %(scripts)s."),
            code="mixed_scripts",
            params={"scripts": " and ".join(sorted(s.title() or "?" for s in scripts))},
        )
