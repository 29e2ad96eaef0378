# cython: annotation_typing=False
"""URI pattern index for the broker and the dealer (WAMP §5.2, §6.4).

Reference implementation; ``trie_c.pxd`` types it and the same source is
compiled as ``fastwamp._core.trie_c``. Import through ``fastwamp._core.trie``.

Three indexes, one per match policy:

* exact URIs: a ``dict``;
* prefix patterns: a radix tree over characters, because prefix matching is
  string-level (``com.myapp.myobject1`` matches ``com.myapp.myobject1-x``).
  One walk down the tree visits every stored prefix of the URI, shortest first,
  so the last one seen is the longest;
* wildcard patterns: one per-component trie per component count (a wildcard
  matches only URIs with as many components). Each node keeps its literal
  children in a ``dict`` and its empty-component (``""``) child in a separate
  slot. A depth-first walk that tries the literal child before the ``""`` child
  meets the patterns in the spec's precedence order (the literal wins at the
  first position where two patterns differ), so its first hit is the best.

Every operation is a loop with an explicit stack where it needs one, never a
recursion: a client chooses the number of components (and characters) of the
URIs it sends, and the compiled build would use one C stack frame per level.
For the same reason a trie takes its nodes apart one by one when it is freed
(``__del__``): a compiled node frees its children from its own deallocator, so
dropping a chain of 2,000,000 nodes at once would recurse that deep in C.
"""

from __future__ import annotations

from typing import Any


class _PrefixNode:
    """Radix-tree node; the edge from its parent spells ``label``.

    ``children`` maps the first character of a child's label to the child.
    ``value`` is ``None`` when no pattern ends here. Every node other than the
    root holds a value or has at least two children.
    """

    __slots__ = ("label", "children", "value")

    def __init__(self, label: str) -> None:
        self.label = label
        self.children: dict[str, _PrefixNode] = {}
        self.value: Any = None


class _WildNode:
    """Per-component trie node: literal children by component, ``""`` child in ``wild``.

    ``depth`` is the number of components on the path from the root (the root
    is 0), so that the matching walks can resume at a node without a stack of
    positions.
    """

    __slots__ = ("children", "wild", "value", "depth")

    def __init__(self, depth: int) -> None:
        self.children: dict[str, _WildNode] = {}
        self.wild: _WildNode | None = None
        self.value: Any = None
        self.depth = depth


def _prefix_insert(root: _PrefixNode, uri: str, value: Any) -> None:
    """Store ``value`` under ``uri``, splitting an edge where the URI leaves it."""
    node = root
    pos = 0
    n = len(uri)
    while pos < n:
        key = uri[pos]
        child = node.children.get(key)
        if child is None:
            leaf = _PrefixNode(uri[pos:])
            leaf.value = value
            node.children[key] = leaf
            return
        label = child.label
        m = len(label)
        k = 1  # the first character matched through ``key``
        while k < m and pos + k < n and label[k] == uri[pos + k]:
            k += 1
        if k == m:
            node = child
            pos += m
            continue
        # The URI leaves the edge after k characters: split it there.
        mid = _PrefixNode(label[:k])
        child.label = label[k:]
        mid.children[child.label[0]] = child
        node.children[key] = mid
        pos += k
        if pos == n:
            mid.value = value
        else:
            leaf = _PrefixNode(uri[pos:])
            leaf.value = value
            mid.children[uri[pos]] = leaf
        return
    node.value = value


def _prefix_merge(node: _PrefixNode) -> None:
    """Fold the only child of a valueless ``node`` into it."""
    for child in node.children.values():
        node.label += child.label
        node.children = child.children
        node.value = child.value


def _prefix_delete(root: _PrefixNode, uri: str) -> None:
    """Remove the value stored under ``uri`` (which must be stored) and compact."""
    parent = root
    node = root
    pos = 0
    n = len(uri)
    while pos < n:
        parent = node
        node = node.children[uri[pos]]
        pos += len(node.label)
    node.value = None
    if node is root:
        return
    if not node.children:
        del parent.children[node.label[0]]
        if parent is not root and parent.value is None and len(parent.children) == 1:
            _prefix_merge(parent)
    elif len(node.children) == 1:
        _prefix_merge(node)


def _prefix_best(root: _PrefixNode, uri: str) -> Any:
    """Return the value of the longest stored prefix of ``uri``, or ``None``."""
    best = root.value
    node = root
    pos = 0
    n = len(uri)
    while pos < n:
        child = node.children.get(uri[pos])
        if child is None or not uri.startswith(child.label, pos):
            break
        node = child
        pos += len(node.label)
        if node.value is not None:
            best = node.value
    return best


def _prefix_all(root: _PrefixNode, uri: str, out: list) -> None:
    """Append the values of all stored prefixes of ``uri`` to ``out``, longest first."""
    start = len(out)  # the walk meets them shortest first: reversed at the end
    if root.value is not None:
        out.append(root.value)
    node = root
    pos = 0
    n = len(uri)
    while pos < n:
        child = node.children.get(uri[pos])
        if child is None or not uri.startswith(child.label, pos):
            break
        node = child
        pos += len(node.label)
        if node.value is not None:
            out.append(node.value)
    # Reverse them in place: linear however many prefixes match (inserting
    # each one in front would be quadratic).
    i = start
    j = len(out) - 1
    while i < j:
        value = out[i]
        out[i] = out[j]
        out[j] = value
        i += 1
        j -= 1


def _wild_best(root: _WildNode, parts: list, n: int, pending: list) -> Any:
    """Depth-first search, literal child before ``""`` child; the first hit is the best.

    Iterative, in constant C stack whatever the number of components: the walk
    follows one path and remembers only the ``""`` children it passed over for
    a literal one, in ``pending[:k]`` (deepest last), to resume there on a dead
    end. ``pending`` is the trie's scratch list: slots are overwritten, not
    appended and popped, which keeps this as fast as the recursive walk was.
    """
    node = root
    i = 0
    k = 0
    while True:
        while i < n:
            child = node.children.get(parts[i])
            if child is not None:
                if node.wild is not None:
                    if k < len(pending):
                        pending[k] = node.wild
                    else:
                        pending.append(node.wild)
                    k += 1
                node = child
            elif node.wild is not None:
                node = node.wild
            else:
                break
            i += 1
        else:  # all n components matched
            if node.value is not None:
                return node.value
        if k == 0:
            return None
        k -= 1
        node = pending[k]
        i = node.depth


def _wild_all(root: _WildNode, parts: list, n: int, out: list, pending: list) -> None:
    """Append every matching value to ``out``, in precedence order (best first).

    The walk of :func:`_wild_best`, continued after each hit.
    """
    node = root
    i = 0
    k = 0
    while True:
        while i < n:
            child = node.children.get(parts[i])
            if child is not None:
                if node.wild is not None:
                    if k < len(pending):
                        pending[k] = node.wild
                    else:
                        pending.append(node.wild)
                    k += 1
                node = child
            elif node.wild is not None:
                node = node.wild
            else:
                break
            i += 1
        else:
            if node.value is not None:
                out.append(node.value)
        if k == 0:
            return
        k -= 1
        node = pending[k]
        i = node.depth


def _wild_free(roots: list) -> None:
    """Unlink every node under ``roots`` so that each one is freed on its own."""
    stack = roots
    while stack:
        node = stack.pop()
        if node.wild is not None:
            stack.append(node.wild)
            node.wild = None
        if node.children:
            stack.extend(node.children.values())
            node.children = {}


def _prefix_free(root: _PrefixNode) -> None:
    """Unlink every node of the radix tree under ``root`` (see :func:`_wild_free`)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.children:
            stack.extend(node.children.values())
            node.children = {}


class UriTrie:
    """Opaque values keyed by ``(uri, match)``, matched against concrete URIs.

    ``match`` is one of the ``MATCH_*`` codes of ``fastwamp._core.uri``
    (0 exact, 1 prefix, 2 wildcard). Values must not be ``None``: lookups
    return ``None`` for "no match". URIs are not validated here.
    """

    __slots__ = ("_exact", "_prefixes", "_wildcards", "_prefix_root", "_wild_roots", "_pending")

    def __init__(self) -> None:
        self._exact: dict[str, Any] = {}
        self._prefixes: dict[str, Any] = {}
        self._wildcards: dict[str, Any] = {}
        self._prefix_root = _PrefixNode("")
        self._wild_roots: dict[int, _WildNode] = {}  # component count -> trie
        # Scratch stack of the wildcard walks. They call no Python code, so
        # they cannot be reentered; slots left over from a walk are stale
        # references, dropped by remove() and after a walk that needed many.
        self._pending: list = []

    def _drop_pending(self) -> None:
        """Forget the walks' stale references (removed nodes must not stay alive)."""
        if self._pending:
            self._pending = []

    def __del__(self) -> None:
        # Iteratively: freeing the nodes through their own deallocators would
        # recurse once per level (see the module docstring).
        self._pending = []
        _wild_free(list(self._wild_roots.values()))
        self._wild_roots = {}
        _prefix_free(self._prefix_root)

    def _table(self, match: int) -> dict:
        # Literals stand for MATCH_EXACT/PREFIX/WILDCARD (no global lookups in C).
        if match == 0:
            return self._exact
        if match == 1:
            return self._prefixes
        if match == 2:
            return self._wildcards
        raise ValueError(f"unknown match policy {match!r}")

    def add(self, uri: str, match: int, value: Any) -> None:
        """Store ``value`` under ``(uri, match)``.

        Raises:
            KeyError: ``(uri, match)`` is already stored.
            ValueError: ``value`` is ``None`` or ``match`` is unknown.
        """
        table = self._table(match)
        if value is None:
            raise ValueError("UriTrie values must not be None")
        if uri in table:
            raise KeyError((uri, match))
        if match == 1:
            _prefix_insert(self._prefix_root, uri, value)
        elif match == 2:
            parts = uri.split(".")
            node = self._wild_roots.get(len(parts))
            if node is None:
                node = self._wild_roots[len(parts)] = _WildNode(0)
            for depth, part in enumerate(parts, 1):
                if part:
                    child = node.children.get(part)
                    if child is None:
                        child = node.children[part] = _WildNode(depth)
                else:
                    child = node.wild
                    if child is None:
                        child = node.wild = _WildNode(depth)
                node = child
            node.value = value
        table[uri] = value

    def remove(self, uri: str, match: int) -> Any:
        """Remove ``(uri, match)`` and return its value.

        Raises:
            KeyError: ``(uri, match)`` is not stored.
        """
        table = self._table(match)
        value = table.pop(uri)
        self._drop_pending()
        if match == 1:
            _prefix_delete(self._prefix_root, uri)
        elif match == 2:
            parts = uri.split(".")
            node = self._wild_roots[len(parts)]
            path = [node]
            for part in parts:
                child = node.children[part] if part else node.wild
                assert child is not None  # (uri, match) is stored, so its whole path exists
                node = child
                path.append(node)
            node.value = None
            # Prune the nodes left without value or children, deepest first.
            i = len(parts)
            while i > 0:
                node = path[i]
                if node.value is not None or node.children or node.wild is not None:
                    break
                i -= 1
                parent = path[i]
                part = parts[i]
                if part:
                    del parent.children[part]
                else:
                    parent.wild = None
            if i == 0:
                node = path[0]
                if not node.children and node.wild is None:
                    del self._wild_roots[len(parts)]
        return value

    def get(self, uri: str, match: int) -> Any:
        """Return the value stored under ``(uri, match)``, or ``None``."""
        return self._table(match).get(uri)

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefixes) + len(self._wildcards)

    def values(self) -> list:
        """Return all stored values: exact, then prefix, then wildcard."""
        out = list(self._exact.values())
        out.extend(self._prefixes.values())
        out.extend(self._wildcards.values())
        return out

    def match_best(self, uri: str) -> Any:
        """Return the one value a call to ``uri`` is routed to (dealer, §5.2), or ``None``.

        Exact beats the longest (string) prefix, which beats the best wildcard.
        """
        value = self._exact.get(uri)
        if value is not None:
            return value
        if self._prefixes:
            value = _prefix_best(self._prefix_root, uri)
            if value is not None:
                return value
        if self._wild_roots:
            # Splitting first is cheaper than counting dots when, as usual, a
            # trie exists for the URI's component count.
            parts = uri.split(".")
            node = self._wild_roots.get(len(parts))
            if node is not None:
                value = _wild_best(node, parts, len(parts), self._pending)
                if len(self._pending) > 64:  # a pathological walk: release its slots
                    self._pending = []
                return value
        return None

    def match_all(self, uri: str) -> list:
        """Return every value matching ``uri`` (broker, §6.4).

        Order: the exact value, then prefixes longest first, then wildcards in
        precedence order, so ``match_all(uri)[0]`` is ``match_best(uri)``.
        """
        out: list = []
        value = self._exact.get(uri)
        if value is not None:
            out.append(value)
        if self._prefixes:
            _prefix_all(self._prefix_root, uri, out)
        if self._wild_roots:
            parts = uri.split(".")
            node = self._wild_roots.get(len(parts))
            if node is not None:
                _wild_all(node, parts, len(parts), out, self._pending)
                if len(self._pending) > 64:  # a pathological walk: release its slots
                    self._pending = []
        return out
