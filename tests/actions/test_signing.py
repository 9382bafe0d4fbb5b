"""Webhook signatures: what we sign, a receiver verifies; anything else it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.errors import SignatureInvalid
from actions.signing import DEFAULT_TOLERANCE_SECONDS, sign, verify

T = 1_767_614_400


@given(secret=st.text(min_size=1), body=st.binary(), timestamp=st.integers(min_value=0, max_value=2**40),
       skew=st.integers(min_value=-DEFAULT_TOLERANCE_SECONDS, max_value=DEFAULT_TOLERANCE_SECONDS))
def test_a_signature_round_trips(secret: str, body: bytes, timestamp: int, skew: int) -> None:
    assert verify(secret, sign(secret, timestamp, body), body, timestamp + skew) == timestamp


@given(body=st.binary(), other=st.binary())
def test_another_body_does_not_verify(body: bytes, other: bytes) -> None:
    if body != other:
        with pytest.raises(SignatureInvalid, match="does not match"):
            verify("s", sign("s", T, body), other, T)


def test_another_secret_does_not_verify_and_rotation_accepts_either() -> None:
    header = sign("old", T, b"{}")
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify("new", header, b"{}", T)
    assert verify(["new", "old"], header, b"{}", T) == T


@pytest.mark.parametrize("late", [DEFAULT_TOLERANCE_SECONDS + 1, -DEFAULT_TOLERANCE_SECONDS - 1, 86_400])
def test_a_replay_outside_the_window_is_refused(late: int) -> None:
    with pytest.raises(SignatureInvalid, match="replay"):
        verify("s", sign("s", T, b"{}"), b"{}", T + late)


def test_a_forged_timestamp_breaks_the_signature() -> None:
    header = sign("s", T, b"{}").replace(f"t={T}", f"t={T + 3600}")
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify("s", header, b"{}", T + 3600)


@pytest.mark.parametrize("header", [None, "", "v1=abc", f"t={T}", "t=soon,v1=abc"])
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        verify("s", header, b"{}", T)
