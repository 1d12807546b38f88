"""A user's text file that never ends (``--constants /dev/zero``, a pipe fed by ``yes``) is refused once it holds more
than any config, spec, constants, rules or fit file does: it was read whole until the system killed the process, with
no word (a CLI review, session 70), or under a memory limit died of a MemoryError traceback. The CLI's words for
it: tests/cli/test_hostile_cli_s70.py.
"""

from __future__ import annotations

import pytest

from abcscale.schemas.textfile import MAX_BYTES, TooLarge, UnreadableText, read_text


def test_a_file_past_the_limit_is_refused_and_one_at_it_is_read(tmp_path):
    with pytest.raises(TooLarge, match="more than 64 MiB"):
        read_text("/dev/zero")
    at = tmp_path / "big.json"
    at.write_bytes(b" " * MAX_BYTES)  # the limit itself is still a file
    assert len(read_text(at)) == MAX_BYTES
    assert issubclass(TooLarge, UnreadableText) and issubclass(TooLarge, ValueError)
