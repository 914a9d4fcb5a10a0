"""Stripe's list pages (cursor pagination, newest first) and `expand`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any, Generic, TypeVar

from harness.emulator import params as p
from harness.emulator.errors import StripeError

T = TypeVar("T")
LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "expand", "created"})
MAX_EXPAND_DEPTH = 4


class Collection(Generic[T]):
    """Objects by id in creation order; a cursor's position is found in O(1)."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._order: list[str] = []
        self._position: dict[str, int] = {}

    def add(self, ident: str, item: T) -> None:
        self._position[ident] = len(self._order)
        self._order.append(ident)
        self._items[ident] = item

    def get(self, ident: str) -> T | None:
        return self._items.get(ident)

    def __len__(self) -> int:
        return len(self._order)

    def values(self) -> list[T]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()
        self._order.clear()
        self._position.clear()

    def position(self, ident: str) -> int | None:
        return self._position.get(ident)

    def older_than(self, index: int) -> Iterator[T]:
        """Newest first, starting just below `index`."""
        for i in range(index - 1, -1, -1):
            yield self._items[self._order[i]]

    def newer_than(self, index: int) -> Iterator[T]:
        """Oldest first, starting just above `index`."""
        for i in range(index + 1, len(self._order)):
            yield self._items[self._order[i]]


def limit(params: dict[str, Any]) -> int:
    value = params.get("limit", "10")
    number = p.integer(value, "limit")
    if not 1 <= number <= 100:
        raise StripeError.invalid_param(
            f"Invalid limit: must be between 1 and 100 (got {number})", param="limit"
        )
    return number


def created_filter(value: Any) -> Callable[[int], bool]:
    """`created=T` or `created[gt|gte|lt|lte]=T`."""
    if value is None:
        return lambda _created: True
    if isinstance(value, str):
        exact = p.integer(value, "created")
        return lambda created: created == exact
    if not isinstance(value, dict):
        raise StripeError.invalid_param(
            "Invalid created: give a timestamp or a hash", param="created"
        )
    bounds: list[Callable[[int], bool]] = []
    for op, raw in value.items():
        bound = p.integer(raw, f"created[{op}]")
        test = {
            "gt": lambda c, b=bound: c > b,
            "gte": lambda c, b=bound: c >= b,
            "lt": lambda c, b=bound: c < b,
            "lte": lambda c, b=bound: c <= b,
        }.get(op)
        if test is None:
            raise StripeError.invalid_param(
                f"Received unknown parameter: created[{op}]",
                param=f"created[{op}]",
                code="parameter_unknown",
            )
        bounds.append(test)
    return lambda created: all(test(created) for test in bounds)


def where(
    params: dict[str, Any], created: Callable[[T], int], **equal: Callable[[T], Any]
) -> Callable[[T], bool]:
    """A list's filter: the `created` range, and each `equal` field that the
    request names, to the value it gives."""
    in_range = created_filter(params.get("created"))
    wanted = {name: params[name] for name in equal if params.get(name) is not None}
    return lambda obj: (
        in_range(created(obj)) and all(equal[name](obj) == value for name, value in wanted.items())
    )


def page(
    collection: Collection[T],
    params: dict[str, Any],
    *,
    url: str,
    kind: str,
    matches: Callable[[T], bool],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """One page, newest first. `starting_after` gives the objects older than the
    cursor; `ending_before` the ones newer than it, closest to it first in time."""
    size = limit(params)
    after, before = (
        p.optional_str(params, "starting_after"),
        p.optional_str(params, "ending_before"),
    )
    if after is not None and before is not None:
        raise StripeError.invalid_param(
            "You may only specify one of these parameters: ending_before, starting_after."
        )
    cursor = after or before
    index = len(collection)
    if cursor is not None:
        found = collection.position(cursor)
        if found is None:
            raise StripeError.missing(
                kind, cursor, param="starting_after" if after else "ending_before"
            )
        index = found
    source = collection.newer_than(index) if before is not None else collection.older_than(index)
    picked: list[T] = []
    for item in source:
        if matches(item):
            picked.append(item)
            if len(picked) > size:
                break
    has_more = len(picked) > size
    picked = picked[:size]
    if before is not None:
        picked.reverse()
    return {
        "object": "list",
        "data": [render(item) for item in picked],
        "has_more": has_more,
        "url": url,
    }


# (object type, field) -> what an id in that field expands to.
EXPANDABLE = {
    ("payment_intent", "latest_charge"): "charge",
    ("payment_intent", "payment_method"): "payment_method",
    ("charge", "balance_transaction"): "balance_transaction",
    ("charge", "payment_intent"): "payment_intent",
    ("charge", "refunds"): "refunds",
    ("refund", "charge"): "charge",
    ("refund", "payment_intent"): "payment_intent",
    ("refund", "balance_transaction"): "balance_transaction",
}
# resolve(target kind, id, parent object) -> the expanded object.
Resolver = Callable[[str, Any, dict[str, Any]], dict[str, Any]]


def expand_paths(params: dict[str, Any]) -> list[str]:
    paths = p.string_list(params.get("expand"), "expand") or []
    for path in paths:
        if path.count(".") >= MAX_EXPAND_DEPTH:
            raise StripeError.invalid_param(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property.",
                param="expand",
            )
    return paths


def check_paths(kind: str, paths: list[str]) -> None:
    """Refuse, before anything runs, a path that cannot be expanded on `kind` (an
    object type, or `list:<type>` for a list page)."""
    for path in paths:
        current: str | None = kind
        for part in path.split("."):
            if current is not None and current.startswith("list:") and part == "data":
                current = current[5:]
                continue
            current = EXPANDABLE.get((current or "", part))
            if current is None:
                raise StripeError.invalid_param(
                    f"This property cannot be expanded ({path}).", param="expand"
                )


def expand(body: dict[str, Any], paths: list[str], resolve: Resolver) -> dict[str, Any]:
    """`body` with each dotted path's ids replaced by their objects. `body` is a
    fresh rendering; nested objects are copied before they change."""
    for path in paths:
        body = _expand(body, path.split("."), path, resolve)
    return body


def _expand(obj: dict[str, Any], parts: list[str], path: str, resolve: Resolver) -> dict[str, Any]:
    obj = dict(obj)
    field, rest = parts[0], parts[1:]
    if obj.get("object") == "list" and field == "data" and rest:
        obj["data"] = [_expand(item, rest, path, resolve) for item in obj["data"]]
        return obj
    current = obj.get(field)
    target = EXPANDABLE.get((str(obj.get("object")), field))
    if isinstance(current, dict):
        child = current
    elif target is None:
        raise StripeError.invalid_param(
            f"This property cannot be expanded ({path}).", param="expand"
        )
    elif current is None and target != "refunds":
        return obj
    else:
        child = resolve(target, current, obj)
    obj[field] = _expand(child, rest, path, resolve) if rest else child
    return obj


def list_records(
    collection: Collection[dict[str, Any]],
    params: dict[str, Any],
    *,
    url: str,
    kind: str,
    filters: tuple[str, ...],
) -> dict[str, Any]:
    """A list of plain records (charges, refunds) filtered by equal `filters` fields."""
    p.reject_unknown(params, LIST_PARAMS | set(filters))
    getters = {name: itemgetter(name) for name in filters}
    matches = where(params, itemgetter("created"), **getters)
    return page(collection, params, url=url, kind=kind, matches=matches, render=dict)
