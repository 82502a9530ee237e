"""How much memory the process can still use, and sizes in words.

:func:`available_memory` is the kernel's ``MemAvailable`` (``/proc/meminfo``), or less where
a cgroup (v1 or v2) memory limit leaves less (its reclaimable page cache counted as free);
None where neither can be read (then memory checks are skipped).
"""

from __future__ import annotations

from pathlib import Path


def human(size: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def available_memory() -> int | None:
    """Bytes this process can still allocate (see the module docstring)."""
    meminfo = _read_fields(Path("/proc/meminfo"))
    if "MemAvailable" not in meminfo:
        return None
    available = meminfo["MemAvailable"] * 1024
    for limit_file, usage_file, stat_key in (
        ("memory.max", "memory.current", "inactive_file"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "total_inactive_file"),
    ):
        root = Path("/sys/fs/cgroup")
        limit, usage = _read_int(root / limit_file), _read_int(root / usage_file)
        if limit is None or usage is None or limit >= meminfo.get("MemTotal", 0) * 1024:
            continue
        stat = _read_fields(root / Path(limit_file).parent / "memory.stat")
        reclaimable = stat.get(stat_key, 0)
        available = min(available, max(0, limit - usage + reclaimable))
    return available


def _read_fields(path: Path) -> dict[str, int]:
    """``name value`` (or ``name: value kB``) lines as a dict of ints; {} when unreadable."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    fields = {}
    for line in lines:
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].isdigit():
            fields[parts[0]] = int(parts[1])
    return fields


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
