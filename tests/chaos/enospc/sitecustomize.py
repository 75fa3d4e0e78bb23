"""Injected ENOSPC, for machines where a small tmpfs cannot be mounted.

Loaded through PYTHONPATH by the hook and daemon processes of a full-disk test. While
the file named by CHAOS_ENOSPC_FLAG exists, creating any file under CHAOS_ENOSPC_DIR
fails with ENOSPC, as a full filesystem's first write would.  Renames, unlinks and
opening a file that exists (even with O_CREAT, as filelock opens its lock) still work,
as they do on a full disk.
"""

import errno
import os

_FLAG = os.environ.get("CHAOS_ENOSPC_FLAG")
_DIR = os.environ.get("CHAOS_ENOSPC_DIR")

if _FLAG and _DIR:
    _open = os.open
    _flag, _dir = _FLAG, _DIR

    def _full_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        full = flags & os.O_CREAT and os.path.exists(_flag)
        name = os.path.abspath(os.fsdecode(path))
        if full and name.startswith(_dir) and not os.path.exists(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return _open(path, flags, mode, dir_fd=dir_fd)

    os.open = _full_open
