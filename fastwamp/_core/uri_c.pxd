# Augments uri_py.py, compiled as fastwamp._core.uri_c.
cimport cython


@cython.locals(wildcard=bint, comp_len=Py_ssize_t, ch=Py_UCS4)
cpdef bint validate_uri(str uri, int match, bint strict) except -1


@cython.locals(n=Py_ssize_t)
cpdef bint uri_within_limits(str uri, Py_ssize_t max_length,
                             Py_ssize_t max_components) except -1
