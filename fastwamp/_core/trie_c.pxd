# Augments trie_py.py, compiled as fastwamp._core.trie_c.
cimport cython


@cython.final
cdef class _PrefixNode:
    cdef str label
    cdef dict children
    cdef object value


@cython.final
cdef class _WildNode:
    cdef dict children
    cdef _WildNode wild
    cdef object value
    cdef Py_ssize_t depth


@cython.locals(node=_PrefixNode, child=_PrefixNode, mid=_PrefixNode,
               leaf=_PrefixNode, label=str,
               pos=Py_ssize_t, n=Py_ssize_t, m=Py_ssize_t, k=Py_ssize_t)
cdef void _prefix_insert(_PrefixNode root, str uri, object value) except *


@cython.locals(child=_PrefixNode)
cdef void _prefix_merge(_PrefixNode node) except *


@cython.locals(parent=_PrefixNode, node=_PrefixNode, pos=Py_ssize_t, n=Py_ssize_t)
cdef void _prefix_delete(_PrefixNode root, str uri) except *


@cython.locals(node=_PrefixNode, child=_PrefixNode, pos=Py_ssize_t, n=Py_ssize_t)
cdef object _prefix_best(_PrefixNode root, str uri)


@cython.locals(node=_PrefixNode, child=_PrefixNode, start=Py_ssize_t,
               pos=Py_ssize_t, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t)
cdef void _prefix_all(_PrefixNode root, str uri, list out) except *


@cython.locals(node=_WildNode, child=_WildNode, i=Py_ssize_t, k=Py_ssize_t)
cdef object _wild_best(_WildNode root, list parts, Py_ssize_t n, list pending)


@cython.locals(node=_WildNode, child=_WildNode, i=Py_ssize_t, k=Py_ssize_t)
cdef void _wild_all(_WildNode root, list parts, Py_ssize_t n, list out,
                    list pending) except *


@cython.locals(stack=list, node=_WildNode)
cdef void _wild_free(list roots) except *


@cython.locals(stack=list, node=_PrefixNode)
cdef void _prefix_free(_PrefixNode root) except *


@cython.final
cdef class UriTrie:
    cdef dict _exact
    cdef dict _prefixes
    cdef dict _wildcards
    cdef _PrefixNode _prefix_root
    cdef dict _wild_roots
    cdef list _pending

    cdef void _drop_pending(self) except *

    cdef dict _table(self, int match)

    @cython.locals(table=dict, parts=list, node=_WildNode, child=_WildNode, part=str,
                   depth=Py_ssize_t)
    cpdef add(self, str uri, int match, object value)

    @cython.locals(table=dict, parts=list, node=_WildNode, child=_WildNode,
                   parent=_WildNode, path=list, i=Py_ssize_t, part=str)
    cpdef remove(self, str uri, int match)

    cpdef get(self, str uri, int match)

    cpdef list values(self)

    @cython.locals(node=_WildNode, parts=list)
    cpdef match_best(self, str uri)

    @cython.locals(out=list, node=_WildNode, parts=list)
    cpdef list match_all(self, str uri)
