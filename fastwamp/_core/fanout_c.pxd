# Augments fanout_py.py, compiled as fastwamp._core.fanout_c.
cimport cython


cdef class SharedMessage(list):
    cdef public dict encoded


@cython.final
cdef class ReceiverFilter:
    cdef readonly object exclude_id
    cdef readonly object eligible
    cdef readonly object excluded
    cdef readonly object eligible_authid
    cdef readonly object excluded_authid
    cdef readonly object eligible_authrole
    cdef readonly object excluded_authrole
    cdef readonly bint has_lists

    @cython.locals(sid=object, authid=object, authrole=object)
    cpdef bint admits(self, object receiver) except -1

