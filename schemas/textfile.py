"""Reading a user's text file (a config, constants, rules, a spec, a fit): UTF-8, a byte-order mark dropped, and
another encoding said with its fix, not Python's codec message."""

from __future__ import annotations

import codecs
from pathlib import Path


class UnreadableText(ValueError):
    """A user's text file that cannot be read as one: :class:`NotUtf8` or :class:`TooLarge` (said with the file)."""


class NotUtf8(UnreadableText):
    """A text file (a config, constants, rules, a fit) that is not UTF-8, said with what it looks like."""


class TooLarge(UnreadableText):
    """A text file larger than any config, constants, rules, spec or fit file is (:data:`MAX_BYTES`)."""


#: the most such a file may hold: they are kilobytes to a few megabytes. A file that never ends (``--constants
#: /dev/zero``, a pipe fed by ``yes``) was read until the system killed the process, with no word (a review)
MAX_BYTES = 64 * 2**20


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a file, a byte-order mark dropped (Windows editors write one; it is no key). A file
    in another encoding is :class:`NotUtf8` ("save it as UTF-8"), not Python's codec message; one over
    :data:`MAX_BYTES` is :class:`TooLarge`; OSError as is."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise TooLarge(f"the file holds more than {MAX_BYTES // 2**20} MiB, far more than any config, spec, "
                       "constants, rules or fit file (a file that never ends, such as /dev/zero?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:4] in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
            kind = "UTF-32 (it starts with a UTF-32 byte-order mark)"
        elif data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            kind = "UTF-16 (it starts with a UTF-16 byte-order mark)"
        else:  # exc.start counts from after a UTF-8 mark, which utf-8-sig drops first
            at = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
            kind = f"not UTF-8 (byte 0x{data[at]:02x} at offset {at})"
        raise NotUtf8(f"the file is {kind}: save it as UTF-8") from None
