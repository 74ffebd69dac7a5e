"""Find repeated addresses in one pass over a million rows without a million objects in memory."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from itertools import compress

# Filter bits per expected address: a false "maybe seen" then happens for ~1 row in 30, and
# a million addresses take 2 MB, which stays in the CPU cache (a byte per slot would not).
BITS_PER_ADDRESS = 16
MIN_FILTER_BITS, MAX_FILTER_BITS = 16, 30  # 8 KB .. 128 MB
LEFT_OUT = -1  # the hash recorded for a row that does not count (never a str hash in CPython)


class AddressLedger:
    """Every address of a pass, recorded compactly, and the exact repeats among them.

    For each block of rows the caller records the keys and lines (`add_block`) and then the
    keys' hashes, in order (LEFT_OUT for a row that does not count), through `add_hashes`.
    A bit filter notes at once which hashes *may* have come before; at the end `repeats()`
    looks only at those, and lets the keys themselves decide, so the answer is exact.
    Memory: the keys as text, 8 bytes a hash and 2 bytes of filter per row.
    """

    def __init__(self, expected: int) -> None:
        bits = (max(expected, 1) * BITS_PER_ADDRESS).bit_length()
        bits = min(MAX_FILTER_BITS, max(MIN_FILTER_BITS, bits))
        self._mask = (1 << bits) - 1
        self._filter = bytearray(1 << (bits - 3))
        self._maybe: set[int] = set()
        self._hashes = array("q")  # by ordinal: the position of a key among all recorded
        self._chunks: list[str] = []  # each block's keys, newline-joined
        self._lines: list[Sequence[int]] = []  # each block's physical lines
        self._starts = array("q")  # the ordinal of each block's first key
        self._split: dict[int, list[str]] = {}  # blocks split while looking up keys

    def add_block(self, keys: str, lines: Sequence[int]) -> None:
        """Record a block's keys, newline-joined (valid addresses never hold one), and lines."""
        self._starts.append(len(self._hashes))
        self._chunks.append(keys)
        self._lines.append(lines)

    def add_hashes(self, hashes: list[int]) -> None:
        """Record the hashes of the keys of the last block, LEFT_OUT where a row does not count."""
        self._hashes.extend(hashes)
        seen, mask, maybe = self._filter, self._mask, self._maybe.add
        for h in hashes:  # the one loop per row here: a few steps
            slot = h & mask
            byte = slot >> 3
            bit = 1 << (slot & 7)
            flags = seen[byte]
            if flags & bit:
                maybe(h)
            else:
                seen[byte] = flags | bit

    def line_of(self, ordinal: int) -> int:
        """The physical line of the key recorded at `ordinal`."""
        block = bisect_right(self._starts, ordinal) - 1
        return self._lines[block][ordinal - self._starts[block]]

    def repeats(self) -> dict[int, int]:
        """Each ordinal whose key was recorded before, mapped to the ordinal of its first."""
        self._maybe.discard(LEFT_OUT)
        if not self._maybe:
            return {}
        hashes = self._hashes
        # In C: the ordinals whose hash the filter flagged (and their earlier twins).
        flagged = compress(range(len(hashes)), map(self._maybe.__contains__, hashes))
        groups: dict[int, list[int]] = {}
        for ordinal in flagged:
            groups.setdefault(hashes[ordinal], []).append(ordinal)
        first_of: dict[int, int] = {}
        for group in groups.values():
            if len(group) < 2:
                continue  # the filter's false alarm: a slot shared by different hashes
            first: dict[str, int] = {}  # equal hashes, nearly always equal keys: keys decide
            for ordinal in group:
                earlier = first.setdefault(self.key_of(ordinal), ordinal)
                if earlier != ordinal:
                    first_of[ordinal] = earlier
        return first_of

    def key_of(self, ordinal: int) -> str:
        """The key recorded at `ordinal`."""
        block = bisect_right(self._starts, ordinal) - 1
        if block not in self._split:
            self._split[block] = self._chunks[block].split("\n")
        return self._split[block][ordinal - self._starts[block]]
