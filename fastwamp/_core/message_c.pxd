# Augments message_py.py, compiled as fastwamp._core.message_c.
cimport cython

cdef long long MAX_ID
cdef object MIN_INT
cdef object MAX_INT
cdef dict LAYOUTS
cdef tuple KIND_NAMES


@cython.locals(n=Py_ssize_t, lo=Py_ssize_t, hi=Py_ssize_t, nkinds=Py_ssize_t,
               i=Py_ssize_t, at=Py_ssize_t, kind=int, ok=bint, layout=tuple,
               kinds=tuple)
cpdef str message_problem(object msg)


@cython.locals(t=type)
cdef int _foreign_kind(object value, object undefined) except? -2


cdef str _scalar_problem(object value)


@cython.locals(kind=int, level=list, below=list, spare=list, depth=Py_ssize_t,
               index=Py_ssize_t, items=list, mapping=dict, i=Py_ssize_t, t=type)
cpdef str value_problem(object value, Py_ssize_t max_depth, object undefined)


@cython.locals(level=list, below=list, depth=Py_ssize_t, t=type)
cpdef bint depth_exceeds(object value, Py_ssize_t max_depth) except -1
