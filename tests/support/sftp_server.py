"""A real SFTP server on loopback (asyncssh), serving a local folder, for SFTP-path tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncssh


class _PasswordServer(asyncssh.SSHServer):
    def __init__(self, username: str, password: str) -> None:
        self._username, self._password = username, password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._username and password == self._password


@contextmanager
def sftp_server(root: Path, username: str = "toast", password: str = "test-only-password"
                ) -> Iterator[int]:
    """Serve `root` over SFTP on 127.0.0.1; yields the port. Stops when the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict = {}

    async def start() -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[key],
            server_factory=lambda: _PasswordServer(username, password),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)),
        )
        state["server"] = server
        state["port"] = server.sockets[0].getsockname()[1]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="sftp-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("SFTP server did not start")
    try:
        yield state["port"]
    finally:
        async def stop() -> None:
            state["server"].close()
            await state["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
