# Augments callees_py.py, compiled as fastwamp._core.callees_c.
cimport cython


cdef class Callee:
    cdef public object session
    cdef public long inflight
    cdef public unsigned long long ident


@cython.final
cdef class CalleeGroup:
    cdef readonly int policy
    cdef list _callees
    cdef list _ranks
    cdef set _members
    cdef Py_ssize_t _cursor
    cdef object _random

    @cython.locals(i=Py_ssize_t, ranks=list)
    cpdef add(self, Callee callee, double rank=*)

    cpdef double rank_of(self, Callee callee) except? -1.0

    @cython.locals(i=Py_ssize_t)
    cpdef bint remove(self, object callee) except -1

    cpdef list callees(self)

    @cython.locals(best=Callee, callee=Callee, mask=cython.ulonglong, k=cython.ulonglong,
                   x=cython.ulonglong, best_score=cython.ulonglong, golden=cython.ulonglong,
                   mix_a=cython.ulonglong, mix_b=cython.ulonglong)
    cpdef Callee select_keyed(self, object key, object excluded=*)

    @cython.locals(callees=list, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t,
                   policy=int, r=double, callee=Callee, other=Callee)
    cpdef Callee select(self, object excluded=*)

    @cython.locals(i=Py_ssize_t, best=Callee, best_i=Py_ssize_t, best_load=long,
                   callee=Callee)
    cdef Callee _least_inflight(self, list callees, Py_ssize_t n, object excluded)
