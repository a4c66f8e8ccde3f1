"""The part of KQL the dashboards use, read two ways: as Elasticsearch query DSL, and over documents in memory.

Grammar (Kibana's KQL, restricted to what the saved objects contain)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | primary
    primary := "(" expr ")" | FIELD ":" values | FIELD (">=" | "<=" | ">" | "<") NUMBER
    values  := "*" | VALUE | "(" VALUE ("or" VALUE)* ")"

``field : value`` becomes a ``match`` query (``match_phrase`` when quoted), ``field : *`` an
``exists`` query, comparisons ``range`` queries: what Kibana's KQL translation produces. The
in-memory reading resolves a field the way the index template's ``passthrough`` objects do for
the fields the panels use: a short attribute name is the span attribute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|[():<>*])|(?P<word>[^\s():<>"*]+))')
_TOP_LEVEL = ("@timestamp", "duration", "trace_id", "span_id", "parent_span_id", "name", "kind", "event_name")
_NESTED = ("status.", "data_stream.", "scope.")


@dataclass(frozen=True)
class Node:
    kind: str  # or, and, not, match, exists, range
    children: tuple[Node, ...] = ()
    field: str = ""
    values: tuple[Any, ...] = ()
    quoted: bool = False
    operator: str = ""


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        matched = _TOKEN.match(text, position)
        if not matched or matched.end() == position:
            raise ValueError(f"KQL: cannot read {text[position:]!r}")
        position = matched.end()
        for kind in ("quoted", "op", "word"):
            if matched.group(kind) is not None:
                found.append((kind, matched.group(kind)))
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ValueError("KQL: unexpected end")
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.at += 1
            return True
        return False

    def expr(self) -> Node:
        items = [self.conjunction()]
        while self.keyword("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Node("or", tuple(items))

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.keyword("and"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else Node("and", tuple(items))

    def negation(self) -> Node:
        if self.keyword("not"):
            return Node("not", (self.negation(),))
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take()
        if (kind, text) == ("op", "("):
            inner = self.expr()
            if self.take() != ("op", ")"):
                raise ValueError("KQL: ')' expected")
            return inner
        if kind != "word":
            raise ValueError(f"KQL: field expected, got {text!r}")
        field = text
        op_kind, op = self.take()
        if op_kind != "op":
            raise ValueError(f"KQL: operator expected after {field}")
        if op in (">=", "<=", ">", "<"):
            return Node("range", field=field, values=(float(self.take()[1]),), operator=op)
        if op != ":":
            raise ValueError(f"KQL: unknown operator {op!r}")
        if self.peek() == ("op", "*"):
            self.take()
            return Node("exists", field=field)
        if self.peek() == ("op", "("):
            self.take()
            values = [self.value()]
            while self.keyword("or"):
                values.append(self.value())
            if self.take() != ("op", ")"):
                raise ValueError("KQL: ')' expected")
            return Node("or", tuple(Node("match", field=field, values=(v,), quoted=q) for v, q in values))
        value, quoted = self.value()
        return Node("match", field=field, values=(value,), quoted=quoted)

    def value(self) -> tuple[str, bool]:
        kind, text = self.take()
        if kind == "quoted":
            return text[1:-1].replace('\\"', '"'), True
        if kind == "word":
            return text, False
        raise ValueError(f"KQL: value expected, got {text!r}")


def parse(text: str) -> Node | None:
    """The KQL's syntax tree; None for an empty query."""
    if not text.strip():
        return None
    parser = _Parser(text)
    node = parser.expr()
    if parser.peek() is not None:
        raise ValueError(f"KQL: unexpected {parser.peek()!r} in {text!r}")
    return node


def to_dsl(node: Node | None) -> dict[str, Any]:
    """The query DSL Kibana would send for the KQL."""
    if node is None:
        return {"match_all": {}}
    if node.kind == "or":
        return {"bool": {"should": [to_dsl(c) for c in node.children], "minimum_should_match": 1}}
    if node.kind == "and":
        return {"bool": {"filter": [to_dsl(c) for c in node.children]}}
    if node.kind == "not":
        return {"bool": {"must_not": [to_dsl(node.children[0])]}}
    if node.kind == "exists":
        return {"exists": {"field": node.field}}
    if node.kind == "range":
        operator = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[node.operator]
        return {"range": {node.field: {operator: node.values[0]}}}
    return {("match_phrase" if node.quoted else "match"): {node.field: node.values[0]}}


def field_values(doc: Mapping[str, Any], field: str) -> list[Any]:
    """The values of ``field`` in a stored document, as the index template exposes them."""
    value: Any
    if field in _TOP_LEVEL:
        value = doc.get(field)
    elif field.startswith(_NESTED):
        head, _, rest = field.partition(".")
        value = (doc.get(head) or {}).get(rest)
    elif field.startswith("resource.attributes."):
        value = ((doc.get("resource") or {}).get("attributes") or {}).get(field[len("resource.attributes."):])
    elif field.startswith("attributes."):
        value = (doc.get("attributes") or {}).get(field[len("attributes."):])
    else:
        value = (doc.get("attributes") or {}).get(field)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _equal(stored: Any, wanted: str) -> bool:
    if isinstance(stored, bool):
        return str(stored).lower() == wanted.lower()
    if isinstance(stored, (int, float)):
        try:
            return float(wanted) == float(stored)
        except ValueError:
            return False
    return str(stored) == wanted


def matches(node: Node | None, doc: Mapping[str, Any]) -> bool:
    """Whether a document matches, read in memory (keyword, boolean and numeric fields)."""
    if node is None:
        return True
    if node.kind == "or":
        return any(matches(c, doc) for c in node.children)
    if node.kind == "and":
        return all(matches(c, doc) for c in node.children)
    if node.kind == "not":
        return not matches(node.children[0], doc)
    values = field_values(doc, node.field)
    if node.kind == "exists":
        return bool(values)
    if node.kind == "range":
        bound = node.values[0]
        compare = {">=": bound.__le__, "<=": bound.__ge__, ">": bound.__lt__, "<": bound.__gt__}[node.operator]
        return any(compare(float(v)) for v in values if isinstance(v, (int, float)))
    return any(_equal(v, str(node.values[0])) for v in values)


def fields(node: Node | None) -> set[str]:
    """Every field the KQL reads."""
    if node is None:
        return set()
    found = {node.field} if node.field else set()
    for child in node.children:
        found |= fields(child)
    return found
