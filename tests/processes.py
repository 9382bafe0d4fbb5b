"""Looking at another process's children through /proc (Linux), for tests that must see that a
server or worker really started what it was told to (a durable-rules child, say)."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def children_running(parent: int, script: Path) -> list[int]:
    """Pids of `parent`'s direct children whose command line runs `script`."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, then ppid
        if ppid == parent and str(script).encode() in cmdline:
            found.append(int(entry.name))
    return found
