"""Facts about one class or function, gathered in one pass over its syntax tree.

Detectors never look at the tree themselves: they read these facts (identifier tokens, dotted
calls, ``self`` attribute use, time comparisons, counters, running averages, percentiles, ...),
so adding a detector costs no extra walk. Every fact keeps the first line where it was seen, so
each piece of evidence can point at a line.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Facts", "Unit", "collect", "shape_of", "split_ident", "walk"]

_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9]|\b|_|$)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_split_memo: dict[str, tuple[str, ...]] = {}

_TIME_CALLS = frozenset(
    {
        "time.time",
        "time.monotonic",
        "time.perf_counter",
        "time.time_ns",
        "time.monotonic_ns",
        "time.perf_counter_ns",
        "time",
        "monotonic",
        "perf_counter",
        "datetime.now",
        "datetime.utcnow",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "loop.time",
    }
)
_TIME_TOKENS = frozenset(
    {"ttl", "expire", "expires", "expiry", "expiration", "expired", "stale", "deadline"}
)
_TIME_IDENTS = frozenset(
    {
        "now",
        "ts",
        "timestamp",
        "created_at",
        "cached_at",
        "stored_at",
        "expires_at",
        "expire_at",
        "expiry_time",
        "max_age",
        "age",
    }
)
_AVG_TOKENS = frozenset({"avg", "average", "mean", "ewma", "ema"})


_BOUND_WORDS = frozenset(
    {"max", "maxsize", "size", "capacity", "limit", "maxlen", "entries", "bound", "cap"}
)


def _node_words(node: ast.AST) -> tuple[str, ...]:
    if isinstance(node, ast.Name):
        return split_ident(node.id)
    if isinstance(node, ast.Attribute):
        return split_ident(node.attr)
    return ()


def split_ident(name: str) -> tuple[str, ...]:
    """Split ``getCachedValue`` or ``_get_cached_value`` into lower-case words."""
    got = _split_memo.get(name)
    if got is None:
        got = tuple(w.lower() for w in _SPLIT.findall(name))
        if len(_split_memo) < 200_000:
            _split_memo[name] = got
    return got


def dotted(node: ast.expr) -> str:
    """Return ``a.b.c`` for a Name/Attribute chain (calls in the chain are dropped), else ''."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return ".".join(reversed(parts)) if parts else ""
    return ".".join(reversed(parts))


def _self_attr(node: ast.expr) -> str | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "cls")
    ):
        return node.attr
    return None


def _container_name(node: ast.expr) -> str | None:
    """Return the attribute or global name of a container: ``self._cache`` -> ``_cache``."""
    got = _self_attr(node)
    if got is not None:
        return got
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript):
        return _container_name(node.value)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("setdefault", "get", "__getitem__")
    ):
        return _container_name(node.func.value)
    return None


_CALL_KINDS: dict[str, str] = {
    "dict": "dict",
    "OrderedDict": "ordereddict",
    "defaultdict": "dict",
    "WeakValueDictionary": "weakdict",
    "WeakKeyDictionary": "weakdict",
    "deque": "deque",
    "list": "list",
    "set": "set",
    "Counter": "counter",
    "Lock": "lock",
    "RLock": "lock",
    "Semaphore": "semaphore",
    "BoundedSemaphore": "semaphore",
    "Queue": "queue",
    "PriorityQueue": "queue",
    "LifoQueue": "queue",
    "SimpleQueue": "queue",
}


def _value_kind(node: ast.expr) -> str:
    if isinstance(node, ast.Dict | ast.DictComp):
        return "dict"
    if isinstance(node, ast.List | ast.ListComp):
        return "list"
    if isinstance(node, ast.Set | ast.SetComp):
        return "set"
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or v is None:
            return "const"
        if isinstance(v, int | float):
            return "number"
        return "const"
    if isinstance(node, ast.Call):
        name = dotted(node.func).rsplit(".", 1)[-1]
        return _CALL_KINDS.get(name) or "call:" + name
    return "other"


@dataclass(slots=True)
class Facts:
    """What a class or function does, as sets of observations with their first line."""

    tokens: set[str] = field(default_factory=set)
    idents: set[str] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)
    tails: dict[str, int] = field(default_factory=dict)
    signals: dict[str, int] = field(default_factory=dict)
    attr_kinds: dict[str, str] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)
    loads: dict[str, int] = field(default_factory=dict)
    incr: dict[str, int] = field(default_factory=dict)
    strings: set[str] = field(default_factory=set)
    dict_keys: set[str] = field(default_factory=set)
    fields: dict[str, int] = field(default_factory=dict)
    statements: int = 0
    shape: dict[type, int] = field(default_factory=dict)
    _blob: str | None = None

    def sig(self, name: str, line: int) -> None:
        """Record a structural signal at its first line."""
        old = self.signals.get(name)
        if old is None or line < old:
            self.signals[name] = line

    def merge(self, other: Facts) -> None:
        """Add the facts of ``other`` (a method) into these (its class)."""
        self._blob = None
        self.tokens |= other.tokens
        self.idents |= other.idents
        self.strings |= other.strings
        self.dict_keys |= other.dict_keys
        for mine, theirs in (
            (self.calls, other.calls),
            (self.tails, other.tails),
            (self.signals, other.signals),
            (self.stores, other.stores),
            (self.loads, other.loads),
            (self.incr, other.incr),
            (self.fields, other.fields),
        ):
            # Methods are merged in source order, so a key already here has the smaller line:
            # only new keys need copying, in their source order (a set difference would order
            # them by string hash, which changes with PYTHONHASHSEED and so would the evidence).
            if not mine:
                mine.update(theirs)
            else:
                for k in theirs:
                    if k not in mine:
                        mine[k] = theirs[k]
        kinds = self.attr_kinds
        if not kinds:
            kinds.update(other.attr_kinds)
        else:
            for k, v in other.attr_kinds.items():
                if k not in kinds:
                    kinds[k] = v
        self.statements += other.statements
        shape = self.shape
        for t, c in other.shape.items():
            shape[t] = shape.get(t, 0) + c

    def call_blob(self) -> str:
        """Return every call name on its own line (cached), for fast prefix tests."""
        blob = self._blob
        if blob is None:
            blob = self._blob = "\n" + "\n".join(self.calls)
        return blob

    def shape_names(self) -> dict[str, int]:
        """Return the node-type histogram keyed by type name."""
        return {t.__name__: c for t, c in self.shape.items()}


@dataclass(slots=True)
class Unit:
    """A class, function or method with its span and facts; methods hang under their class."""

    symbol: str
    kind: str
    name: str
    start: int
    end: int
    node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    facts: Facts
    bases: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    methods: list[Unit] = field(default_factory=list)
    in_import_fallback: bool = False
    skip: bool = False
    trivial: bool = False
    verdicts: dict[str, list[Any]] = field(default_factory=dict)
    is_async: bool = False
    parent: Unit | None = None

    @property
    def lines(self) -> int:
        """Return the span length."""
        return self.end - self.start + 1


def _is_time_expr(node: ast.AST) -> bool:
    nodes: list[Any] = walk(node)
    for sub in nodes:
        t = type(sub)
        if t is ast.Call:
            d = dotted(sub.func)
            if d in _TIME_CALLS or d.endswith((".time", ".monotonic", ".perf_counter", ".now")):
                return True
        elif t is ast.Name:
            ident = sub.id
            if ident.lower() in _TIME_IDENTS or _TIME_TOKENS.intersection(split_ident(ident)):
                return True
        elif t is ast.Attribute:
            ident = sub.attr
            if ident.lower() in _TIME_IDENTS or _TIME_TOKENS.intersection(split_ident(ident)):
                return True
    return False


def _trivial_body(body: list[ast.stmt]) -> bool:
    for stmt in body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring or ``...``
        if isinstance(stmt, ast.Raise):
            exc = stmt.exc
            name = dotted(exc) if exc is not None else ""
            if name.endswith("NotImplementedError") or name.endswith("ImportError"):
                continue
            return False
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            if _trivial_body(stmt.body):
                continue
            return False
        return False
    return True


def _percentile_index(node: ast.Subscript) -> bool:
    for sub in walk(node.slice):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Mult):
            for side in (sub.left, sub.right):
                if (
                    isinstance(side, ast.Constant)
                    and isinstance(side.value, float)
                    and 0.5 <= side.value < 1.0
                ):
                    return True
                if isinstance(side, ast.Constant) and side.value in (95, 99, 90):
                    return True
    return False


def _target_words(node: ast.expr) -> list[str]:
    """Return the words naming an assignment target: attrs, names and string subscripts."""
    words: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            words.extend(split_ident(node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript):
            sl = node.slice
            if isinstance(sl, ast.Constant) and isinstance(sl.value, str):
                words.extend(split_ident(sl.value))
            elif isinstance(sl, ast.Name):
                words.extend(split_ident(sl.id))
            node = node.value
        elif isinstance(node, ast.Name):
            if node.id not in ("self", "cls"):
                words.extend(split_ident(node.id))
            break
        else:
            break
    return words


_SKIP_FIELDS = frozenset(
    {
        "annotation",
        "returns",
        "ctx",
        "type_comment",
        "id",
        "attr",
        "arg",
        "level",
        "module",
        "kind",
        "conversion",
        "is_async",
        "simple",
        "lineno",
        "col_offset",
        "end_lineno",
        "end_col_offset",
    }
)
_fields_memo: dict[type, tuple[str, ...]] = {}
_collect_plan: dict[type, tuple[tuple[str, ...], bool]] = {}
_LOG_NAMES = frozenset({"logger", "log", "logging", "LOGGER", "LOG", "_logger", "_log"})


def _node_fields(cls: type) -> tuple[str, ...]:
    if cls is ast.Constant or cls is ast.JoinedStr:
        # Constants have no children; f-string internals are formatting, never evidence.
        fields: tuple[str, ...] = ()
    else:
        fields = tuple(f for f in getattr(cls, "_fields", ()) if f not in _SKIP_FIELDS)
    _fields_memo[cls] = fields
    return fields


def walk(node: ast.AST) -> list[ast.AST]:
    """Return every node under ``node`` (itself included), depth first; faster than ast.walk."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = [node]
    pop = stack.pop
    push = stack.append
    add = out.append
    AST = ast.AST
    memo = _fields_memo
    while stack:
        n = pop()
        add(n)
        cls = n.__class__
        fields = memo.get(cls)
        if fields is None:
            fields = _node_fields(cls)
        for name in fields:
            v = getattr(n, name, None)
            if v is None:
                continue
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)
    return out


def collect(node: ast.AST) -> Facts:
    """Walk ``node`` (a def or a class body statement) once and return its facts."""
    f = Facts()
    tokens = f.tokens
    idents = f.idents
    calls = f.calls
    tails = f.tails
    stores = f.stores
    loads = f.loads
    Name, Attribute, Call, Compare = ast.Name, ast.Attribute, ast.Call, ast.Compare
    # why: every ``ast.X`` in the dispatch chain below is a global plus an attribute lookup per
    # node; locals are one fast load.
    Expr, Subscript, AugAssign, Assign, AnnAssign = (
        ast.Expr,
        ast.Subscript,
        ast.AugAssign,
        ast.Assign,
        ast.AnnAssign,
    )
    BinOp, Dict, Constant, Store, arg = ast.BinOp, ast.Dict, ast.Constant, ast.Store, ast.arg
    shape = f.shape
    plan = _collect_plan
    AST = ast.AST
    isinst = isinstance
    # One fused pass: the traversal is inlined (no generator, no node list) because this loop
    # runs once per syntax node of every candidate unit and dominates the analyzer's CPU time.
    stack: list[Any] = [node]
    pop = stack.pop
    push = stack.append
    # The node-type histogram is counted at the end in C (Counter keeps first-seen order, as
    # the per-node dict update it replaces did).
    types: list[type] = []
    seen = types.append
    while stack:
        sub = pop()
        t = sub.__class__
        seen(t)
        if t is Expr:
            call = sub.value
            if call.__class__ is Call:
                fn = call.func
                if (
                    fn.__class__ is Attribute
                    and fn.value.__class__ is Name
                    and fn.value.id in _LOG_NAMES
                ) or (fn.__class__ is Name and fn.id == "print"):
                    continue  # a log line's arguments are messages, never evidence
        entry = plan.get(t)
        if entry is None:
            entry = plan[t] = (_node_fields(t), t in _BORING)
        for fname in entry[0]:
            v = getattr(sub, fname)
            if v is None:
                continue
            if v.__class__ is list:
                for x in v:
                    if isinst(x, AST):
                        push(x)
            elif isinst(v, AST):
                push(v)
        if entry[1]:
            continue
        if t is Name:
            ident = sub.id
            if ident not in idents:
                idents.add(ident)
                tokens.update(split_ident(ident))
        elif t is Attribute:
            ident = sub.attr
            if ident not in idents:
                idents.add(ident)
                tokens.update(split_ident(ident))
            value = sub.value
            if type(value) is Name and value.id in ("self", "cls"):
                key = "self." + ident
                target = stores if type(sub.ctx) is Store else loads
                if key not in target:
                    target[key] = sub.lineno
        elif t is Call:
            d = dotted(sub.func)
            if d:
                line = sub.lineno
                if d not in calls or line < calls[d]:
                    calls[d] = line
                tail = d.rsplit(".", 1)[-1]
                if tail not in tails or line < tails[tail]:
                    tails[tail] = line
                if tail == "popitem":
                    for kw in sub.keywords:
                        if kw.arg == "last" and isinstance(kw.value, ast.Constant):
                            f.sig("fifo_evict", line)
                    f.sig("popitem", line)
                elif tail == "move_to_end":
                    f.sig("lru_touch", line)
                elif tail in ("get", "pop", "setdefault", "__getitem__", "__contains__"):
                    owner = (
                        _container_name(sub.func.value) if isinstance(sub.func, Attribute) else None
                    )
                    if owner:
                        k = "sub:" + owner
                        m = stores if tail in ("setdefault",) else loads
                        if k not in m:
                            m[k] = line
                elif tail == "append" or tail == "appendleft":
                    owner = (
                        _container_name(sub.func.value) if isinstance(sub.func, Attribute) else None
                    )
                    if owner:
                        k = "append:" + owner
                        if k not in stores:
                            stores[k] = line
        elif t is Compare:
            line = sub.lineno
            left = sub.left
            ops = sub.ops
            comps = sub.comparators
            if type(ops[0]) in (ast.In, ast.NotIn):
                owner = _container_name(comps[0])
                if owner:
                    k = "sub:" + owner
                    if k not in loads:
                        loads[k] = line
            elif type(ops[0]) in (ast.Lt, ast.LtE, ast.Gt, ast.GtE):
                if "time_compare" not in f.signals and _is_time_expr(sub):
                    f.sig("time_compare", line)
                if (type(left) is Call and dotted(left.func) == "len") or (
                    comps and type(comps[0]) is Call and dotted(comps[0].func) == "len"
                ):
                    other = comps[0] if type(left) is Call else left
                    bound = {w for s2 in walk(other) for w in _node_words(s2)}
                    if bound & _BOUND_WORDS:
                        f.sig("len_bound", line)
                f.sig("threshold_compare", line)
        elif t is Subscript:
            line = sub.lineno
            owner = _container_name(sub.value)
            ctx = type(sub.ctx)
            if owner:
                k = "sub:" + owner
                m = stores if ctx is ast.Store else loads
                if ctx is ast.Del:
                    f.sig("delete:" + owner, line)
                elif k not in m:
                    m[k] = line
            # Only an arithmetic index can be a percentile rank: skip plain names/constants.
            if ctx is ast.Load and type(sub.slice) is ast.BinOp and _percentile_index(sub):
                f.sig("percentile", line)
        elif t is AugAssign:
            line = sub.lineno
            words = _target_words(sub.target)
            key = "_".join(words) or "?"
            if key not in f.incr:
                f.incr[key] = line
            if _AVG_TOKENS.intersection(words) and isinstance(sub.value, ast.BinOp):
                f.sig("running_avg", line)
        elif t is Assign or t is AnnAssign:
            line = sub.lineno
            value = sub.value
            targets = sub.targets if t is Assign else [sub.target]
            for tgt in targets:
                attr = _self_attr(tgt)
                if attr is None and type(tgt) is Name:
                    attr = tgt.id
                if attr is not None and value is not None and attr not in f.attr_kinds:
                    f.attr_kinds[attr] = _value_kind(value)
                if (
                    type(value) is ast.BinOp
                    and type(value.op) is ast.Div
                    and _AVG_TOKENS.intersection(_target_words(tgt))
                ):
                    f.sig("running_avg", line)
            if (
                type(value) is ast.BinOp
                and type(value.op) is ast.Sub
                and "time_delta" not in f.signals
                and _is_time_expr(value.left)
                and _is_time_expr(value.right)
            ):
                f.sig("time_delta", line)
        elif t is BinOp:
            if type(sub.op) is ast.Sub and "time_delta" not in f.signals:
                left = sub.left
                if type(left) is Call:
                    d = dotted(left.func)
                    if d in _TIME_CALLS or d.endswith((".perf_counter", ".monotonic")):
                        f.sig("time_delta", sub.lineno)
        elif t is Dict:
            for k in sub.keys:
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and len(k.value) < 40:
                    f.dict_keys.add(k.value.lower())
        elif t is Constant:
            v = sub.value
            if type(v) is str and 2 < len(v) < 40 and v.isidentifier():
                f.strings.add(v.lower())
        elif t is ast.Await or t is ast.AsyncFor or t is ast.AsyncWith:
            f.sig("await", sub.lineno)
        elif t is ast.Yield or t is ast.YieldFrom:
            f.sig("yield", sub.lineno)
        elif t is ast.Delete:
            for tgt in sub.targets:
                owner = _container_name(tgt)
                if owner:
                    f.sig("delete:" + owner, sub.lineno)
        elif t is ast.Global or t is ast.Nonlocal:
            f.sig("global", sub.lineno)
        elif t is arg:
            ident = sub.arg
            if ident not in idents:
                idents.add(ident)
                tokens.update(split_ident(ident))
    shape.update(Counter(types))
    stmt_types = _STMT_TYPES
    f.statements = sum(c for t, c in shape.items() if t in stmt_types)
    return f


# Node types the fact collector has no branch for: skip the dispatch chain for them.
_INTERESTING = frozenset(
    {
        ast.Name,
        ast.Attribute,
        ast.Call,
        ast.Compare,
        ast.Subscript,
        ast.AugAssign,
        ast.Assign,
        ast.AnnAssign,
        ast.BinOp,
        ast.Dict,
        ast.Constant,
        ast.Await,
        ast.AsyncFor,
        ast.AsyncWith,
        ast.Yield,
        ast.YieldFrom,
        ast.Delete,
        ast.Global,
        ast.Nonlocal,
        ast.arg,
    }
)
_BORING = frozenset(
    c
    for c in vars(ast).values()
    if isinstance(c, type) and issubclass(c, ast.AST) and c not in _INTERESTING
)

_STMT_TYPES = frozenset(
    c for c in vars(ast).values() if isinstance(c, type) and issubclass(c, ast.stmt)
)


def shape_of(node: ast.AST) -> dict[str, int]:
    """Return a histogram of node types under ``node``: the structure, blind to names."""
    out: dict[str, int] = {}
    for sub in walk(node):
        name = type(sub).__name__
        out[name] = out.get(name, 0) + 1
    return out


def is_trivial(body: list[ast.stmt]) -> bool:
    """Return True when a body holds only docstrings, ``pass``, ``...`` or ``raise``."""
    return _trivial_body(body)
