"""UriTrie on URIs of 200,000 components, without any URI cap: no recursion, no crash.

The router refuses such URIs (``max_uri_length``, ``max_uri_components``), but the
trie must not depend on it. Each case runs in a child process with a 1 MiB C
stack, so that a recursion per component (in a walk or in a deallocator) would
crash it at this size, and a crash fails the test instead of the test run.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import pytest

N = 200_000  # components
STACK = 1 << 20  # bytes: a C recursion per component overflows it many times over

CHILD = textwrap.dedent(
    """
    import sys
    from fastwamp._core import trie

    cls = trie.UriTrieC if sys.argv[1] == "c" else trie.UriTriePy
    n = int(sys.argv[2])
    steps = []

    def check(got, expected, what):
        assert got == expected, (what, got if len(repr(got)) < 200 else repr(got)[:200])
        steps.append(what)

    t = cls()
    a_s = ".".join(["a"] * n)                      # a.a.a...a (n components)
    t.add(a_s, 2, "A")                             # wildcard without any empty component
    t.add("." * (n - 1), 2, "B")                   # n empty components
    t.add(".".join(["a"] * (n - 1) + [""]), 2, "C")  # a.a...a. (last one empty)
    t.add(a_s, 0, "E")
    t.add(a_s, 1, "Q")                             # the same URI as a prefix pattern
    t.add("a" * (2 * n), 1, "P")                   # a string prefix of 400,000 characters

    last_c = ".".join(["a"] * (n - 1) + ["c"])
    first_c = ".".join(["c"] + ["a"] * (n - 1))
    check(t.match_best(a_s), "E", "best exact")
    check(t.match_all(a_s), ["E", "Q", "A", "C", "B"], "all of a.a...a")
    check(t.match_best(last_c), "C", "best: backtrack from the last component")
    check(t.match_all(last_c), ["C", "B"], "all of a...a.c")
    check(t.match_all(first_c), ["B"], "all of c.a...a")
    check(t.match_all(".".join(["a"] * (n + 1))), ["Q"], "n + 1 components: prefix only")
    check(t.match_best("a" * (2 * n) + "x"), "P", "long string prefix")
    check(t.match_all("." * (n - 1)), ["B"], "all-empty call URI")

    # 2,000 nested prefixes of one URI: all match it, longest first.
    for i in range(1, 2001):
        t.add(a_s[: 2 * i], 1, i)
    got = t.match_all(a_s)
    check(got, ["E", "Q", *range(2000, 0, -1), "A", "C", "B"], "nested prefixes, longest first")
    for i in range(1, 2001, 2):
        t.remove(a_s[: 2 * i], 1)
    check(t.match_all(a_s), ["E", "Q", *range(2000, 0, -2), "A", "C", "B"], "after removals")

    # Remove the deep wildcards (pruning walks the whole chain) and check again.
    check(t.remove("." * (n - 1), 2), "B", "remove B")
    check(t.match_all(last_c), [*range(2000, 0, -2), "C"], "without B")
    check(t.remove(".".join(["a"] * (n - 1) + [""]), 2), "C", "remove C")
    check(t.match_all(last_c), [*range(2000, 0, -2)], "no wildcard left for a...a.c")
    t.add("." * (n - 1), 2, "B2")
    check(t.match_best(first_c), "B2", "re-added")

    # Dropping the trie frees every node of chains of n nodes.
    del t
    print("ok", len(steps), flush=True)
    """
)


def _small_stack() -> None:
    resource.setrlimit(resource.RLIMIT_STACK, (STACK, STACK))


def run_child(build: str, code: str = CHILD, n: int = N) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if build == "py":
        env["FASTWAMP_NO_EXTENSIONS"] = "1"
    return subprocess.run(
        [sys.executable, "-c", code, build, str(n)],
        env=env,
        preexec_fn=_small_stack,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(300)
def test_200k_components_without_cap(impl) -> None:
    proc = run_child(impl.name)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith("ok "), proc.stdout


DEALLOC_CHILD = textwrap.dedent(
    """
    import sys
    from fastwamp._core import trie

    cls = trie.UriTrieC if sys.argv[1] == "c" else trie.UriTriePy
    n = int(sys.argv[2])
    t = cls()
    t.add("." * (n - 1), 2, "w")              # a chain through the "" slots
    t.add(".".join(["a"] * n), 2, "v")        # a chain through the children dicts
    assert t.match_best(".".join(["b"] * n)) == "w"
    del t                                     # must not free the chain recursively
    print("ok", flush=True)
    """
)


@pytest.mark.timeout(300)
def test_dropping_a_deep_trie_does_not_recurse(impl) -> None:
    proc = run_child(impl.name, DEALLOC_CHILD, 300_000)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.strip() == "ok"
