"""How a session is laid out and named: what Redis holds must come back byte for byte (codec.py, keys.py)."""

import hashlib
import json

import pytest

from sessiondemo.sessions import codec, keys

NAME = "abcd" + "Q" * 21 + "A"
HASH = hashlib.sha256(b"a user's session auth hash").hexdigest()


def dumps(session):
    """Serialize ``session`` as Django's JSONSerializer does."""
    return json.dumps(session, separators=(",", ":")).encode()


def stored(data, **fields):
    head, tail = codec.encode(NAME, codec.Value(data=data, **fields))
    return head + codec.encode_times(codec.Value(data=b"")) + tail


def round_trip(data):
    raw = stored(data, user_id="42")
    assert codec.decode(NAME, raw).data == data
    return raw


def test_the_auth_hash_is_kept_as_its_32_bytes_and_comes_back_as_its_digits(monkeypatch):
    data = dumps({"_auth_user_id": "42", "_auth_user_hash": HASH, "theme": "dark"})

    raw = round_trip(data)

    assert raw[codec.FIXED.size - 1] & codec.LIFTED_HASH
    assert HASH.encode() not in raw
    assert bytes.fromhex(HASH) in raw
    # Smaller than with the digits compressed with the rest.
    monkeypatch.setattr(codec, "_lifted", lambda data: (data, b""))
    assert len(raw) + 10 < len(stored(data))


@pytest.mark.parametrize(
    "value",
    [HASH.upper(), HASH[:63], HASH + "0", HASH[:62] + "zz", "", 42, None],
    ids=["upper-case", "short", "long", "not-hex", "empty", "a number", "null"],
)
def test_anything_but_64_lower_case_hex_digits_stays_in_the_data(value):
    data = dumps({"_auth_user_hash": value, "a": 1})

    raw = round_trip(data)

    assert not raw[codec.FIXED.size - 1] & codec.LIFTED_HASH


def test_the_first_hash_field_is_lifted_wherever_it_stands():
    nested = {"prefs": {"_auth_user_hash": HASH}, "_auth_user_hash": HASH[::-1]}
    data = dumps(nested)

    raw = round_trip(data)

    assert raw[codec.FIXED.size - 1] & codec.LIFTED_HASH
    assert HASH[::-1].encode() not in raw


def test_a_value_written_before_hashes_were_lifted_still_reads(monkeypatch):
    data = dumps({"_auth_user_id": "42", "_auth_user_hash": HASH})
    monkeypatch.setattr(codec, "_lifted", lambda data: (data, b""))
    raw = stored(data, user_id="42")
    monkeypatch.undo()

    assert not raw[codec.FIXED.size - 1] & codec.LIFTED_HASH
    assert codec.decode(NAME, raw).data == data


def test_a_lifted_hash_is_covered_by_the_tag():
    data = dumps({"_auth_user_hash": HASH})
    raw = bytearray(stored(data))
    raw[raw.index(bytes.fromhex(HASH))] ^= 1

    with pytest.raises(ValueError):
        codec.decode(NAME, bytes(raw))


# -- Names of ids (keys.py) -------------------------------------------------------------------


def test_an_id_not_issued_never_gets_a_name_however_often_it_is_named():
    issued = keys.new_session_id()
    forged = issued[:-1] + ("a" if issued[-1] != "a" else "b")

    keys.session_name(forged)  # as a save path would

    assert keys.valid_session_name(forged) is None
    assert keys.valid_session_name(issued) == keys.session_name(issued)


def test_names_remembered_under_one_secret_key_are_forgotten_with_it(settings):
    issued = keys.new_session_id()
    assert keys.valid_session_name(issued) is not None

    settings.SECRET_KEY = "another-secret-key-" + "x" * 40

    assert keys.valid_session_name(issued) is None
