"""Which filesystem a path is on: SQLite's WAL mode needs one host's local disk.

WAL keeps its index in shared memory beside the database file; on a network
filesystem (NFS, CIFS/SMB, FUSE mounts such as sshfs or s3fs) that memory is not shared
between hosts and locking is unreliable, so the store would corrupt. A JupyterHub home
directory on NFS is the common case; the store refuses to open there, saying so.
"""

from __future__ import annotations

import os

NETWORK = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs", "lustre",
    "gpfs", "9p", "davfs", "fuse", "beegfs", "orangefs", "ocfs2", "gfs2",
})
"""Filesystem types (as /proc/self/mountinfo names them) SQLite's WAL cannot trust;
every ``fuse.*`` type counts too (``fuseblk``, a local disk through FUSE, does not)."""

MOUNTINFO = "/proc/self/mountinfo"


def filesystem_type(path: str, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem ``path`` (or its nearest existing parent) is on, from
    the mount table (``mountinfo``: its text; default: this process's); ``None`` when
    it cannot be told (not Linux)."""
    if mountinfo is None:
        try:
            with open(MOUNTINFO) as f:
                mountinfo = f.read()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = _unescape(fields[4])
        fstype = line.split(" - ", 1)[1].split()[0]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fstype
    return best_type


def is_network(fstype: str | None) -> bool:
    return fstype is not None and (fstype in NETWORK or fstype.startswith("fuse."))


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
