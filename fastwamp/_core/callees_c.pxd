# Augments callees_py.py, compiled as fastwamp._core.callees_c.
cimport cython


cdef class Callee:
    cdef public object session
    cdef public long inflight


@cython.final
cdef class CalleeGroup:
    cdef readonly int policy
    cdef list _callees
    cdef set _members
    cdef Py_ssize_t _cursor
    cdef object _random

    cpdef add(self, Callee callee)

    @cython.locals(i=Py_ssize_t)
    cpdef bint remove(self, object callee) except -1

    cpdef list callees(self)

    @cython.locals(callees=list, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t,
                   policy=int, r=double, callee=Callee, other=Callee)
    cpdef Callee select(self, object excluded=*)

    @cython.locals(i=Py_ssize_t, best=Callee, best_i=Py_ssize_t, best_load=long,
                   callee=Callee)
    cdef Callee _least_inflight(self, list callees, Py_ssize_t n, object excluded)
