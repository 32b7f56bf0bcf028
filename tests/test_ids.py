"""Convex v6 document IDs (reference §3.2): stability vector, round trips, strict decoding."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convex_lab.errors import InvalidIdError
from convex_lab.ids import (
    ALPHABET,
    FIRST_USER_TABLE_NUMBER,
    Id,
    decode_id,
    encode_id,
    is_id,
    new_internal_id,
    table_number_of,
)


def stability_internal_id() -> bytes:
    out = [251]
    for _ in range(15):
        out.append(out[-1] * 251 % 256)
    return bytes(out)


STABLE_ID = "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"


def test_convex_stability_vector() -> None:
    internal = stability_internal_id()
    assert list(internal[:3]) == [251, 25, 131]
    assert encode_id(1017, internal) == STABLE_ID
    assert decode_id(STABLE_ID) == (1017, internal)


table_numbers = st.one_of(
    st.integers(1, 2**32 - 1),
    st.sampled_from([1, 127, 128, 16_383, 16_384, FIRST_USER_TABLE_NUMBER, 2**21, 2**28,
                     2**32 - 1]),
)


@given(table_numbers, st.binary(min_size=16, max_size=16))
def test_round_trip(table_number: int, internal: bytes) -> None:
    text = encode_id(table_number, internal)
    assert decode_id(text) == (table_number, internal)
    assert set(text) <= set(ALPHABET)
    assert table_number_of(text) == table_number
    assert is_id(text)


@pytest.mark.parametrize(
    ("table_number", "length"),
    [(1, 31), (127, 31), (128, 32), (FIRST_USER_TABLE_NUMBER, 32), (16_383, 32),
     (16_384, 34), (2**32 - 1, 37)],
)
def test_lengths(table_number: int, length: int) -> None:
    assert len(encode_id(table_number, bytes(16))) == length


def test_user_table_ids_are_32_chars_and_carry_the_day() -> None:
    internal = new_internal_id(86_400_000 * 20_000 + 5)
    assert len(internal) == 16
    assert int.from_bytes(internal[14:], "big") == 20_000
    assert len(encode_id(FIRST_USER_TABLE_NUMBER, internal)) == 32


def test_every_single_character_change_is_rejected() -> None:
    for pos in range(len(STABLE_ID)):
        for c in ALPHABET:
            if c == STABLE_ID[pos]:
                continue
            altered = STABLE_ID[:pos] + c + STABLE_ID[pos + 1 :]
            with pytest.raises(InvalidIdError):
                decode_id(altered)
            assert not is_id(altered)


@pytest.mark.parametrize(
    "text",
    [
        "",
        STABLE_ID[:-1],  # truncated
        STABLE_ID + "0",  # too long for its content
        STABLE_ID.upper(),  # the alphabet is lower case
        STABLE_ID[:-1] + "i",  # i, l, o, u are not in Crockford's alphabet
        STABLE_ID[:-1] + "l",
        STABLE_ID[:-1] + "o",
        STABLE_ID[:-1] + "u",
        "z" * 38,
        " " + STABLE_ID[1:],
        "sssswsgggggggggsgcsssfafffsffks",  # Convex regression: two-byte table code in 31 chars
    ],
)
def test_rejects_non_ids(text: str) -> None:
    with pytest.raises(InvalidIdError):
        decode_id(text)
    assert table_number_of(text) is None


def test_rejects_non_canonical_trailing_bits() -> None:
    # A 31-char ID carries 155 bits for 152 bits of data: the 3 spare bits must be zero.
    text = encode_id(5, bytes(range(16)))
    assert len(text) == 31
    last = ALPHABET.index(text[-1])
    for spare in range(1, 8):
        other = text[:-1] + ALPHABET[last | spare]
        if other != text:
            with pytest.raises(InvalidIdError):
                decode_id(other)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidIdError):
        encode_id(0, bytes(16))
    with pytest.raises(InvalidIdError):
        encode_id(2**32, bytes(16))
    with pytest.raises(InvalidIdError):
        encode_id(1, bytes(15))
    with pytest.raises(InvalidIdError):
        decode_id(12345)  # type: ignore[arg-type]
    assert not is_id(None)
    # Table number zero, even with a valid checksum, is not an ID.
    zero = _raw_encode(b"\x00" + bytes(16))
    with pytest.raises(InvalidIdError):
        decode_id(zero)


def _raw_encode(head: bytes) -> str:
    from convex_lab.ids import _b32encode, _fletcher16

    return _b32encode(head + _fletcher16(head).to_bytes(2, "little"))


def test_id_is_a_str_that_knows_its_table() -> None:
    i = Id(STABLE_ID, "messages")
    assert i == STABLE_ID
    assert hash(i) == hash(STABLE_ID)
    assert isinstance(i, str)
    assert i.table == "messages"
    assert decode_id(i)[0] == 1017
    again = pickle.loads(pickle.dumps(i))
    assert again == i
    assert again.table == "messages"
