"""systemd socket activation (``LISTEN_FDS``) and readiness (``sd_notify``), no dependency.

Socket activation: systemd binds the sockets of a ``.socket`` unit and starts the
service with them as file descriptors 3, 4, ... and ``LISTEN_FDS=<count>``,
``LISTEN_PID=<the service's pid>``, ``LISTEN_FDNAMES=<name>:<name>``. The command
serves them (as ``fd://N`` binds) when no address is given explicitly.

Readiness: with ``Type=notify``, systemd passes ``NOTIFY_SOCKET``, a unix datagram
socket (a path, or an abstract name written ``@name``). We send ``READY=1`` once
serving, ``STOPPING=1`` when a shutdown begins, and ``STATUS=...`` lines a human
reads in ``systemctl status``. Both sets of variables are removed from the
environment once read, so that the app's own subprocesses (and our workers) do not
act on them: systemd gives them to the main process only.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping
from dataclasses import dataclass

logger = logging.getLogger("trio_asgi")

#: The first inherited descriptor (after stdin, stdout and stderr).
LISTEN_FDS_START = 3


@dataclass(frozen=True)
class ActivatedSocket:
    fd: int
    #: From ``LISTEN_FDNAMES`` (``FileDescriptorName=`` in the socket unit), or ``unknown``.
    name: str


def listen_fds(environ: MutableMapping[str, str] | None = None) -> list[ActivatedSocket]:
    """The sockets systemd passed to this process (none if they are for another one)."""
    env = os.environ if environ is None else environ
    count, pid = env.get("LISTEN_FDS", ""), env.get("LISTEN_PID", "")
    names_text = env.get("LISTEN_FDNAMES", "")
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(name, None)
    if not (count.isdigit() and pid.isdigit()) or int(pid) != os.getpid():
        return []
    names = names_text.split(":") if names_text else []
    return [
        ActivatedSocket(fd, names[i] if i < len(names) else "unknown")
        for i, fd in enumerate(range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)))
    ]


def activated_binds(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """``fd://N`` binds for the activated sockets (logged with their names)."""
    binds = []
    for activated in listen_fds(environ):
        logger.info("Socket activation: fd %d (%s)", activated.fd, activated.name)
        binds.append(f"fd://{activated.fd}")
    return binds


class Notifier:
    """Sends ``sd_notify`` messages; does nothing when systemd did not ask for them."""

    def __init__(self, address: str | None) -> None:
        self.address: str | bytes | None = address
        if address is not None and address.startswith("@"):
            self.address = b"\0" + address[1:].encode()  # an abstract socket

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """The notifier ``NOTIFY_SOCKET`` asks for, removed from the environment."""
        env = os.environ if environ is None else environ
        return cls(env.pop("NOTIFY_SOCKET", None) or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> None:
        """Send ``fields`` (``READY=1``, ``STATUS=...``) as one datagram; failures are logged."""
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            logger.warning("sd_notify to %r failed: %s", self.address, exc)
