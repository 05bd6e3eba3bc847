"""The bubblewrap command line and the host directory a local session sees.

As root, bwrap sets up the mounts in the host user namespace and setpriv then drops to the real
host uid 65534 with no capabilities; as any other user a user namespace maps uid 65534 onto the
worker's own uid. Everything but the workspace, /tmp and /dev/shm is read-only.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cofounder.settings import Settings

WORKSPACE = "/workspace"
SANDBOX_UID = 65534  # nobody
# Host directories the sandboxed Python needs, all read-only; `-try` skips absent ones.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
# What the install step needs to find and trust a package index; nothing else sees them.
NETWORK_ETC = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
)
# tmpfs pages are not covered by RLIMIT_AS, so the writable scratch mounts get their own caps.
TMP_BYTES = 256 * 1024 * 1024
SHM_BYTES = 64 * 1024 * 1024
PASSWD = f"nobody:x:{SANDBOX_UID}:{SANDBOX_UID}:nobody:/tmp:/usr/sbin/nologin\n"
GROUP = f"nogroup:x:{SANDBOX_UID}:\n"


@dataclass(frozen=True)
class SandboxLayout:
    """What one sandbox run sees of the host."""

    workspace: Path  # bound read-write at WORKSPACE
    etc: Path  # holds the synthesised passwd and group files
    python_roots: tuple[str, ...]  # sys.base_prefix and the venv, bound read-only
    # Root drops to the real host uid 65534, so RLIMIT_NPROC binds (root is exempt from it even
    # when mapped to another uid in a user namespace).
    privileged: bool


def bwrap_args(
    bwrap: str,
    layout: SandboxLayout,
    command: Sequence[str],
    *,
    cwd: str = ".",
    env: dict[str, str] | None = None,
    network: bool = False,
) -> list[str]:
    """The bubblewrap command line that runs `command` in WORKSPACE/`cwd`, isolated per
    `layout`; with `network` (the install step only) it shares the host's network."""
    args = [bwrap, "--die-with-parent", "--new-session"]
    # --unshare-all minus the user namespace, which is decided by `privileged` below.
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        args += ["--unshare-net"]
    if not layout.privileged:
        args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    args += ["--clearenv"]
    for name, value in {**sandbox_env(layout), **(env or {})}.items():
        args += ["--setenv", name, value]
    for path in SYSTEM_DIRS:
        args += ["--ro-bind-try", path, path]
    # The scratch /tmp comes before the Python binds: a venv may itself live under the host's /tmp.
    args += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    created: set[str] = {"/tmp"}
    for root in layout.python_roots:
        if any(root == d or root.startswith(d + "/") for d in SYSTEM_DIRS):
            continue
        # bwrap creates missing parents as 0700, which would hide e.g. /root/.pyenv from nobody.
        for parent in reversed(PurePosixPath(root).parents[:-1]):
            if str(parent) not in created:
                created.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", root, root]
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in ETC_FILES + (NETWORK_ETC if network else ()):
        args += ["--ro-bind-try", path, path]
    args += ["--ro-bind", str(layout.etc / "passwd"), "/etc/passwd"]
    args += ["--ro-bind", str(layout.etc / "group"), "/etc/group"]
    args += ["--bind", str(layout.workspace), WORKSPACE]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    # Without root, the sandbox owns / and /dev: read-only they cannot be filled with files.
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", workdir(cwd)]
    args += ["--cap-drop", "ALL"]
    if layout.privileged:
        # Just what setpriv needs to become nobody; it then clears every capability set.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        ids = [f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups"]
        drop = ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        args += ["/usr/bin/setpriv", *ids, *drop, "--"]
    return args + list(command)


def sandbox_env(layout: SandboxLayout) -> dict[str, str]:
    """The whole environment inside: nothing from the host, so no secrets."""
    bins = [f"{root}/bin" for root in reversed(layout.python_roots)]
    return {
        "PATH": ":".join([*bins, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The project's tests get plain pytest, not the plugins of the worker's own venv.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def limit_args(settings: Settings, max_processes: int, timeout: float) -> list[str]:
    """prlimit sets the rlimits on itself and execs bwrap, so every sandboxed process inherits
    them (a preexec_fn would run Python in a forked child of a multi-threaded worker)."""
    cpu = math.ceil(timeout) + 1
    memory = settings.sandbox_memory_mb * 1024 * 1024
    file_size = settings.sandbox_file_size_mb * 1024 * 1024
    return [
        "prlimit",
        f"--as={memory}",
        f"--fsize={file_size}",
        f"--cpu={cpu}:{cpu + 1}",
        f"--nproc={max_processes}",
        "--core=0",
        "--",
    ]


def workdir(cwd: str) -> str:
    """`cwd` (relative to the workspace) as a path inside the sandbox."""
    path = PurePosixPath(cwd)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"a command's working dir must lie inside the workspace: {cwd!r}")
    return str(PurePosixPath(WORKSPACE, path))


def prepare(root: Path) -> SandboxLayout:
    """The workspace and the sandbox's /etc files under `root`, created on first use."""
    workspace, etc = root / "workspace", root / "etc"
    workspace.mkdir(parents=True, exist_ok=True)
    etc.mkdir(exist_ok=True)
    _keep(etc / "passwd", PASSWD)
    _keep(etc / "group", GROUP)
    privileged = os.geteuid() == 0
    if privileged:
        give_to_sandbox(workspace)
    roots = tuple(dict.fromkeys([sys.base_prefix, sys.prefix]))
    return SandboxLayout(workspace=workspace, etc=etc, python_roots=roots, privileged=privileged)


def _keep(path: Path, text: str) -> None:
    """Write `path` only when it is not `text` already: a reconnect leaves a file that a running
    command of the session may be reading alone, instead of truncating it under that command."""
    try:
        if path.read_text() == text:
            return
    except FileNotFoundError:
        pass
    path.write_text(text)


def give_to_sandbox(*paths: Path) -> None:
    """As root, the sandbox runs as the real host uid 65534: what it works on must be its own."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.chown(path, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
