"""The sandbox's shell wrapper and the log it reads back.

The command runs under a small shell wrapper (`_WRAPPER`) that, when the command ends,
reports its exit status, peak memory and OOM kills on stderr and then waits on stdin: the
container (and so its /output tmpfs) stays alive until the runner has frozen it and copied
/output out. LogTail keeps the tail of the container's output within the log limit and
takes the wrapper's report lines back out of it.
"""

from __future__ import annotations

import threading

_PEAK_MARKER = b"heldout-sandbox-peak-memory-bytes="
_OOM_MARKER = b"heldout-sandbox-oom-kills="
_EXIT_MARKER = b"heldout-sandbox-exit="
# Runs the command as a child of a shell, then prints on stderr the cgroup's memory
# high-water mark (cgroup v2 memory.peak or v1 max_usage_in_bytes: the engine's stats API
# only samples a running container, and short runs end between samples), its OOM kills
# (v2 memory.events, v1 memory.oom_control) and the command's exit status; then it waits
# on stdin, which stays open and is never written, so /output lives until the runner has
# copied it (the command itself reads an empty stdin). Only the shell's builtins: slim
# images may have no cat.
_WRAPPER = f"""
"$@" < /dev/null
status=$?
for f in /sys/fs/cgroup/memory.peak /sys/fs/cgroup/memory/memory.max_usage_in_bytes; do
    if [ -r "$f" ] && read -r peak < "$f"; then echo "{_PEAK_MARKER.decode()}$peak" >&2; break; fi
done
for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
    if [ -r "$f" ]; then
        while read -r key value; do
            [ "$key" = oom_kill ] && echo "{_OOM_MARKER.decode()}$value" >&2
        done < "$f"
        break
    fi
done
echo "{_EXIT_MARKER.decode()}$status" >&2
read -r _ignored
exit $status
"""


class LogTail:
    """Keeps the last `limit` bytes of a stream and counts everything that went by.

    `ended` is set when the wrapper reports the command's exit status (`exit_status`), or
    when the stream ends (the container stopped without one).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        # Room for the wrapper's lines, which come after the command's own output.
        self._keep = limit + 512
        self._tail = bytearray()
        self.ended = threading.Event()
        self.exit_status: int | None = None
        self.oom_kills: int | None = None

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._tail += chunk
        if len(self._tail) > self._keep:
            del self._tail[: len(self._tail) - self._keep]
        if self.exit_status is None:
            # The marker line may have started in the previous chunk.
            window = bytes(self._tail[-(len(chunk) + len(_EXIT_MARKER) + 16) :])
            _rest, status = _take_marker(window, _EXIT_MARKER, complete=True)
            if status is not None:
                self.exit_status = status
                self.ended.set()

    def finish(self) -> tuple[str, int | None]:
        """The log text (with a note if it was cut) and the peak memory it reported."""
        data = bytes(self._tail)
        data, peak = _take_marker(data, _PEAK_MARKER)
        data, self.oom_kills = _take_marker(data, _OOM_MARKER)
        data, _status = _take_marker(data, _EXIT_MARKER)
        total = self.total - (len(self._tail) - len(data))
        if total <= self.limit:
            return data[-self.limit :].decode(errors="replace"), peak
        cut = total - self.limit
        text = data[-self.limit :].decode(errors="replace")
        return f"[log truncated: {cut} earlier bytes not kept]\n{text}", peak


def _take_marker(data: bytes, marker: bytes, *, complete: bool = False) -> tuple[bytes, int | None]:
    """data without the last `marker<digits>` line, and those digits' value. With
    `complete`, a line whose newline has not come yet is not taken."""
    start = data.rfind(marker)
    if start == -1:
        return data, None
    end = data.find(b"\n", start)
    if end == -1:
        if complete:
            return data, None
        end = len(data)
    digits = data[start + len(marker) : end].strip()
    return data[:start] + data[end + 1 :], int(digits) if digits.isdigit() else None
