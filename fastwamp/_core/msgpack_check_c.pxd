# Augments msgpack_check_py.py, compiled as fastwamp._core.msgpack_check_c.
cimport cython


@cython.locals(b=cython.uchar, c=cython.uchar, lo=cython.uchar, hi=cython.uchar,
               need=Py_ssize_t, i=Py_ssize_t)
cdef bint _utf8_valid(const unsigned char[:] data, Py_ssize_t pos, Py_ssize_t end)


@cython.locals(value=cython.ulonglong, i=Py_ssize_t)
cdef unsigned long long _uint(const unsigned char[:] data, Py_ssize_t pos,
                              Py_ssize_t size)


@cython.locals(n=Py_ssize_t, top=Py_ssize_t, left=cython.longlong,
               entry=cython.longlong, b=cython.uchar, size=Py_ssize_t,
               count=Py_ssize_t, width=Py_ssize_t, mapping=bint,
               stack=cython.longlong[:])
cpdef Py_ssize_t payload_end(const unsigned char[:] data, Py_ssize_t pos,
                             Py_ssize_t items, int depth, int max_depth)


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(raw=bytes, n=Py_ssize_t, i=Py_ssize_t, b=cython.uchar)
cpdef bint plain_small(object data, Py_ssize_t max_depth) except -1
