"""Reading files a guest wrote: hostile, bounded data.

The guest runs untrusted schedulers as root and writes into a host folder over 9p, so anything
there may be a symlink to a host secret, a fifo that blocks, a device node or a huge file. The
host opens such files only with O_NOFOLLOW|O_NONBLOCK, accepts only regular files and reads at
most a fixed number of bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_RESULT_BYTES = 8 * 1024 * 1024


class GuestFileError(Exception):
    """The file is missing, not a regular file, or larger than allowed."""


def read_bounded(path: Path, limit: int = MAX_RESULT_BYTES) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise GuestFileError(f"{path.name} is missing") from None
    except OSError as e:  # ELOOP: a symlink
        raise GuestFileError(f"{path.name} cannot be opened safely: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise GuestFileError(f"{path.name} is not a regular file")
        if st.st_size > limit:
            raise GuestFileError(f"{path.name} is {st.st_size} bytes; the limit is {limit}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise GuestFileError(f"{path.name} is larger than {limit} bytes")
    return data
