# Augments message_py.py, compiled as fastwamp._core.message_c.
cimport cython

cdef long long MAX_ID
cdef dict LAYOUTS
cdef tuple KIND_NAMES


@cython.locals(n=Py_ssize_t, lo=Py_ssize_t, hi=Py_ssize_t, nkinds=Py_ssize_t,
               i=Py_ssize_t, at=Py_ssize_t, kind=int, ok=bint, layout=tuple,
               kinds=tuple)
cpdef str message_problem(object msg)
