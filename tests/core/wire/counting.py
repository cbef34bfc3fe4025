"""A buffer for the framers' tests that counts the bytes their operations touch."""

from __future__ import annotations


class CountingBuffer(bytearray):
    """A framer buffer that counts the bytes its searches, slices, shifts and appends touch."""

    touched = 0

    def find(self, sub: object, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        at = super().find(sub, start, end)  # type: ignore[arg-type]
        lo = start or 0
        hi = at + len(sub) if at >= 0 else (len(self) if end is None else min(end, len(self)))  # type: ignore[arg-type]
        CountingBuffer.touched += max(0, hi - lo)
        return at

    def __getitem__(self, key: object) -> object:  # type: ignore[override]
        item = super().__getitem__(key)  # type: ignore[index]
        CountingBuffer.touched += len(item) if isinstance(item, bytearray) else 1
        return item

    def __delitem__(self, key: object) -> None:  # type: ignore[override]
        before = len(self)
        super().__delitem__(key)  # type: ignore[arg-type]
        CountingBuffer.touched += len(self) + (before - len(self))  # the shift moves what stays

    def __iadd__(self, data: object) -> CountingBuffer:  # type: ignore[override]
        CountingBuffer.touched += len(data)  # type: ignore[arg-type]
        return super().__iadd__(data)  # type: ignore[operator, return-value]
