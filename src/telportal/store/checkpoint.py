"""Copying SQLite's write-ahead log into the database file, off the event loop.

By default SQLite checkpoints inside the commit that pushes the log past 1,000
pages, and with `synchronous=NORMAL` a checkpoint is where SQLite syncs the file to
disk. Since SQLite runs on the event loop's thread (decision 0011), that commit held
the loop for the whole fsync, every few dozen case creations. The application's
connections turn automatic checkpoints off (`PRAGMA wal_autocheckpoint=0` in
`store/database.py`) and this task checkpoints every `interval` seconds from a worker
thread on a connection of its own. A PASSIVE checkpoint never blocks writers or
readers: it copies what it can and leaves the rest for the next round. SQLite
releases the GIL while it works, so the loop keeps running meanwhile.

What this changes for durability: nothing. A committed transaction is in the log,
and SQLite reads the log at the next open after a crash; the checkpoint only moves
pages from the log into the database file.
"""

import asyncio
import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    def __init__(self, path: Path, interval: float = INTERVAL_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self.rounds = 0
        """Checkpoints run so far (for tests and the log)."""
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()  # the worker thread and `stop` both close
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sqlite-wal-checkpoint")

    async def stop(self) -> None:
        """Run a last checkpoint, then close the connection."""
        if self._task is None:
            return
        self._stop.set()
        await self._task
        self._task = None
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):  # not `wait_for`: notify/sender.py
                    await self._stop.wait()
            try:
                # Not cancelled midway: `stop` waits for this round to end.
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:  # a full disk, a removed file: try again later
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the log, frames copied)."""
        with self._conn_lock:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self.path, check_same_thread=False, isolation_level=None
                )
            row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.rounds += 1
        busy, frames, copied = (int(v) for v in row)
        return busy, frames, copied
