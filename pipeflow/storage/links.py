"""How files get from the cache to the workspace: reflink, copy or hardlink.

``cache.link`` is one of :data:`LINK_SETTINGS`: ``reflink-or-copy`` (default),
``reflink``, ``copy``, ``hardlink``. Reflink support is probed once per pair of file systems
(cache, workspace), never per file: the probe clones a tiny file with the ``FICLONE``
ioctl and remembers the answer for the life of the ``Linker``.

Hardlinks share one inode between every path with the same content, so
they cannot carry a per-path executable bit, and objects are read-only (0444): an
executable file is therefore always copied (or reflinked), never linked.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from pipeflow.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from pipeflow.state import StateDB

LinkMode = Literal["reflink", "copy", "hardlink"]
"""How one object is placed (what a setting resolves to)."""
LinkSetting = Literal["reflink-or-copy", "reflink", "copy", "hardlink"]
LINK_SETTINGS: tuple[str, ...] = get_args(LinkSetting)
"""The values ``cache.link`` accepts: the one list the config and the Linker check."""
DEFAULT_LINK: LinkSetting = "reflink-or-copy"

# _IOW(0x94, 9, int) from <linux/fs.h>; the same number on every Linux architecture
# pipeflow supports.
FICLONE = 0x40049409


def reflink_fd(src_fd: int, dst_fd: int) -> None:
    """Make ``dst_fd`` share ``src_fd``'s extents (copy-on-write clone); raises OSError
    where the file system (or the platform) cannot."""
    if not sys.platform.startswith("linux"):
        raise OSError(95, "reflink is only implemented on Linux")
    import fcntl

    fcntl.ioctl(dst_fd, FICLONE, src_fd)


def probe_reflink(cache_dir: Path, target_dir: Path) -> bool:
    """Whether a file in ``cache_dir`` can be reflinked into ``target_dir`` (both must
    exist). Clones one tiny file; False on ext4, tmpfs, across file systems, or on any
    error."""
    # here, not at the top: the config reads LINK_SETTINGS on every command's start
    from pipeflow.storage.leftovers import TEMP_SUFFIX

    token = os.urandom(6).hex()
    src = os.path.join(cache_dir, f".reflink-probe.{os.getpid()}-{token}{TEMP_SUFFIX}")
    dst = os.path.join(target_dir, f".reflink-probe-clone.{os.getpid()}-{token}{TEMP_SUFFIX}")
    try:
        sfd = os.open(src, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    try:
        os.write(sfd, b"pipeflow reflink probe\n")
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            reflink_fd(sfd, dfd)
        finally:
            os.close(dfd)
        return True
    except OSError:
        return False
    finally:
        os.close(sfd)
        for path in (src, dst):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _existing_dir(path: Path) -> Path:
    # A checkout may target a folder that does not exist yet; it will live on the file
    # system of its nearest existing ancestor.
    path = Path(os.path.abspath(path))
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


class Linker:
    """Resolves the configured ``cache.link`` to a concrete mode per pair of folders,
    probing reflink support once per (cache device, workspace device).

    With a ``state`` database the probe's answer is remembered across processes (key
    ``link-probe:<cache dev>:<workspace dev>``). Device numbers can be reused after a
    reboot, so a remembered "yes" is never fatal: a clone that fails falls back to a
    copy unless ``cache.link`` is strictly ``reflink``.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        workspace: Path | None = None,
        setting: str = DEFAULT_LINK,
        state: StateDB | None = None,
    ) -> None:
        """``cache_dir`` and ``workspace`` are the defaults of ``mode_for``; ``setting``
        is a ``cache.link`` value (see ``LINK_SETTINGS``)."""
        if setting not in LINK_SETTINGS:
            raise ConfigError(
                f"cache.link: unknown link type {setting!r}",
                hint=f"use one of: {', '.join(LINK_SETTINGS)}",
            )
        self.cache_dir = cache_dir
        self.workspace = workspace
        self.setting = setting
        self._state = state
        self._probes: dict[tuple[int, int], bool] = {}

    def can_reflink(self, cache_dir: Path, target_dir: Path) -> bool:
        """Whether reflinks work from ``cache_dir`` to ``target_dir`` (probed once per
        pair of devices; the folders need not exist yet)."""
        a, b = _existing_dir(cache_dir), _existing_dir(target_dir)
        key = (os.stat(a).st_dev, os.stat(b).st_dev)
        found = self._probes.get(key)
        if found is None:
            found = self._probes[key] = self._remembered_probe(key, a, b)
        return found

    def _remembered_probe(self, key: tuple[int, int], a: Path, b: Path) -> bool:
        name = f"link-probe:{key[0]}:{key[1]}"
        if self._state is not None:
            known = self._state.get(name)
            if known in ("0", "1"):
                return known == "1"
        found = probe_reflink(a, b)
        if self._state is not None:
            self._state.put(name, "1" if found else "0")
        return found

    def mode_for(self, cache_dir: Path | None = None, target_dir: Path | None = None) -> LinkMode:
        """The mode to place objects from ``cache_dir`` into ``target_dir`` (default:
        the folders given at construction)."""
        setting = self.setting
        if setting in ("copy", "hardlink"):
            return setting  # type: ignore[return-value]
        cache_dir, target_dir = self._folders(cache_dir, target_dir)
        if self.can_reflink(cache_dir, target_dir):
            return "reflink"
        if setting == "reflink":
            raise StorageError(
                f"cache.link is 'reflink' but {target_dir} cannot be reflinked from "
                f"{cache_dir} (file system without copy-on-write, or another device)",
                hint="set cache.link to 'reflink-or-copy' or 'copy'",
            )
        return "copy"

    def _folders(self, cache_dir: Path | None, target_dir: Path | None) -> tuple[Path, Path]:
        cache_dir = cache_dir if cache_dir is not None else self.cache_dir
        target_dir = target_dir if target_dir is not None else self.workspace
        if cache_dir is None or target_dir is None:
            raise TypeError("Linker.mode_for needs a cache folder and a target folder")
        return cache_dir, target_dir

    def store_mode(self, src_dir: Path, store_dir: Path) -> Literal["reflink", "copy"]:
        """How to bring workspace files into the store: reflink when allowed and
        possible, else copy; never a link, which would let a workspace write reach an
        object."""
        if self.setting != "copy" and self.can_reflink(src_dir, store_dir):
            return "reflink"
        return "copy"
