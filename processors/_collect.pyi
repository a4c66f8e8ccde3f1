from collections.abc import Callable
from typing import Any

def collect(
    match: Callable[[Any, memoryview, int, int], list[tuple[int, int]]],
    anchor: Any,
    view: memoryview,
    data: bytes,
    text: str,
    taken: bytearray,
    ascii_only: bool,
    group: int,
    reject: Callable[[str, int, int], object] | None,
    refine: Callable[[str], Any] | None,
    validator: Callable[[str], object] | None,
    entity: str,
    kind: str,
    priority: int,
    finding: type[tuple[Any, ...]],
    found: list[Any],
    /,
) -> None: ...
