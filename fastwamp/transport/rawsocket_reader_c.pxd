# Augments rawsocket_reader.py, compiled as fastwamp.transport.rawsocket_reader_c: a read
# of whole frames on an established RawSocket session is walked and fed in C, the limit
# and the references it needs in struct fields (four: 64 bytes a connection).
cimport cython


@cython.locals(b1=cython.uchar, b2=cython.uchar, b3=cython.uchar)
cdef Py_ssize_t frame_length(bytes raw, Py_ssize_t pos) except -1


@cython.final
cdef class FrameReader:
    cdef public object conn
    cdef public object session
    cdef public object decode
    cdef public Py_ssize_t max_in

    cpdef open(self, object session, object decode, Py_ssize_t max_in)
    cpdef close(self)

    @cython.locals(raw=bytes, end=Py_ssize_t)
    cpdef feed(self, object data)

    @cython.locals(n=Py_ssize_t, max_in=Py_ssize_t, pos=Py_ssize_t, frames=Py_ssize_t,
                   length=Py_ssize_t, turn=Py_ssize_t)
    cdef Py_ssize_t scan(self, object conn, bytes raw) except -1

    @cython.locals(now=double, pos=Py_ssize_t, start=Py_ssize_t)
    cdef feed_frames(self, object conn, object session, bytes raw, Py_ssize_t end)
