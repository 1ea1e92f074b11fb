from __future__ import annotations

import time

import pytest

from core import simulator
from webhooks import signing

BODY = b'{"reports": []}'


def test_a_fresh_signature_verifies_and_matches_the_simulator_s() -> None:
    header = signing.sign("s3cret", BODY, timestamp=1_700_000_000)
    assert header == simulator.sign("s3cret", BODY, timestamp=1_700_000_000)
    signing.verify("s3cret", BODY, header, now=1_700_000_100)


@pytest.mark.parametrize("secret, body, header, why", [
    ("other", BODY, 0, "does not match"),
    ("s3cret", b'{"reports": [1]}', 0, "does not match"),
    ("s3cret", BODY, -3600, "window"),
    ("s3cret", BODY, 3600, "window"),
    ("s3cret", BODY, None, "missing"),
    ("s3cret", BODY, "v1=abc", "malformed"),
    ("s3cret", BODY, "t=now,v1=abc", "malformed"),
    ("", BODY, 0, "no signing secret"),
])
def test_bad_signatures_are_refused(secret: str, body: bytes, header: int | str | None, why: str) -> None:
    if isinstance(header, int):  # seconds from now, signed with the real secret at run time (not collection)
        header = signing.sign(secret if why == "no signing secret" else "s3cret", BODY, int(time.time()) + header)
    with pytest.raises(signing.BadSignature, match=why):
        signing.verify(secret, body, header)


def test_any_of_several_v1_values_may_match_during_rotation() -> None:
    t = int(time.time())
    header = f"t={t},v1={signing.digest('old', t, BODY)},v1={signing.digest('new', t, BODY)}"
    signing.verify("new", BODY, header)
