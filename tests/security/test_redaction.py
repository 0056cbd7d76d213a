""":func:`jqc.connection.redact` and every URL error hide a password, whatever characters it holds.

The password is three distinctive markers with arbitrary text between them, so a leak of any
fragment (a parser splitting the password at an unencoded ``/``, ``?``, ``#``, ``@`` or ``:``)
still shows a marker.
"""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

import jqc
from jqc.backends.url import parse_server_url
from jqc.connection import redact

MARKERS = ("QQ1", "QQ2", "QQ3")
middle = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
special = st.text(alphabet="/?#@:%&=[] \\", max_size=4)
piece = st.one_of(middle, special, st.tuples(middle, special).map("".join))
passwords = st.tuples(piece, piece).map(lambda p: f"{MARKERS[0]}{p[0]}{MARKERS[1]}{p[1]}{MARKERS[2]}")
shapes = st.sampled_from(
    [
        "redis://user:{pw}@127.0.0.1:6379/0",
        "redis://:{pw}@127.0.0.1:6379/0",
        "rediss://user:{pw}@redis.internal:6380/3?socket_timeout=5",
        "redis://user:{pw}@127.0.0.1:6379/0?client_name=a@b",
        "unix://user:{pw}@/run/redis.sock?db=1",
        "redis://{pw}@127.0.0.1:6379/0",
        "redis:/user:{pw}@127.0.0.1/0",
        "redis://127.0.0.1:6379/0?password={pw}",
        "redis://user:{pw}@127.0.0.1:notaport/0",
        "redis://user:{pw}@127.0.0.1:6379/0/extra",
        "nope://user:{pw}@127.0.0.1:6379/0",
    ]
)


def hidden(text: str, shown: str = "") -> bool:
    return not any(marker in text for marker in MARKERS if marker not in shown)


@settings(max_examples=150, deadline=None)
@given(password=passwords, shape=shapes, encode=st.booleans())
def test_no_fragment_of_a_password_survives(password: str, shape: str, encode: bool) -> None:
    url = shape.format(pw=quote(password, safe="") if encode else password)
    if shape.startswith("redis://{pw}@") and not encode and ":" in password:
        # "redis://a:b@host" is user a, password b by the URL's own rules: a user name is shown
        user = password.split(":", 1)[0]
        password = password[len(user) :]
        shown = user if "/" not in user and "?" not in user and "#" not in user else ""
    else:
        shown = ""
    assert hidden(redact(url), shown), redact(url)
    try:
        config = parse_server_url(url)
    except jqc.InvalidUrlError as exc:
        assert hidden(str(exc), shown) and hidden(repr(exc), shown), str(exc)
    else:
        assert hidden(config.safe_url, shown) and hidden(repr(config), shown), repr(config)


def test_redacted_urls_stay_readable() -> None:
    assert redact("redis://jobs:s3cret@10.0.0.5:6379/2") == "redis://jobs:***@10.0.0.5:6379/2"
    assert redact("redis://10.0.0.5:6379/2?socket_timeout=5") == "redis://10.0.0.5:6379/2?socket_timeout=5"
    assert redact("redis://10.0.0.5/0?password=x&client_name=w") == "redis://10.0.0.5/0?password=***"
    assert redact(b"redis://:x@h") == "<a bytes, not a URL>"
    conn = jqc.connect("redis://jobs:s3cret@10.0.0.5:6379/0?client_name=worker@host")
    assert conn.safe_url == "redis://jobs:***@10.0.0.5:6379/0?client_name=worker@host"
    assert jqc.connect("redis://onlyuser@10.0.0.5/0").safe_url == "redis://***@10.0.0.5/0"  # may be a password
