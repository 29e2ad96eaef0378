# Augments member.py, compiled as fastwamp.router.member_c: the routing record is an
# extension type, so the compiled dealer reads and writes its fields as C struct members.
cimport cython

from fastwamp._core.fanout_c cimport ReceiverFilter as ReceiverFilterC
from fastwamp._core.fanout_c cimport SharedMessage as SharedMessageC


@cython.final
cdef class MessageCounts:
    cdef long long counts[256]

    cpdef add(self, long code)
    cpdef long long get(self, long code)


cdef class Member:
    cdef public object id
    cdef public object authid
    cdef public object authrole
    cdef public long features
    cdef public bint is_service
    cdef public list outbox
    cdef public bint closed
    cdef public object owner
    cdef public object on_output
    cdef public object callee
    cdef public object registrations
    cdef public object subscriptions
    cdef public dict invocations
    cdef public dict calls
    cdef public object last_invocation_id
    cdef public object testaments
    cdef public Py_ssize_t testament_bytes
    cdef public object exclude_me_filter
    cdef public MessageCounts sent_counts
    cdef public object sink
    cdef public object frame_transport
    cdef public object frame_key
    cdef public Py_ssize_t frame_limit
    cdef public object frame_traffic
    cdef public object frame_encode
    cdef public object frame_pack
    cdef public long frame_opcode
    cdef public Py_ssize_t frame_payload_limit

    @cython.locals(outbox=list, counts=MessageCounts)
    cpdef send(self, object msg)

    @cython.locals(out=list, shared=SharedMessageC, written=Py_ssize_t)
    cpdef deliver(self)

    @cython.locals(frames=list, shared=SharedMessageC, size=Py_ssize_t, length=Py_ssize_t,
                   limit=Py_ssize_t, count=Py_ssize_t)
    cdef Py_ssize_t _write_frames(self, list out, object transport) except -1

    @cython.locals(last=Py_ssize_t)
    cdef object _frame_own(self, object msg)

    cdef object _frame_shared(self, SharedMessageC shared)

    @cython.locals(length=Py_ssize_t, opcode=long)
    cdef object _framed(self, object data)

    cdef _write_own(self, object transport, object frame)

    cpdef send_error(self, object request_type, object request_id, str error,
                     object args=*, object kwargs=*)


@cython.locals(sent=Py_ssize_t, i=Py_ssize_t, flt=ReceiverFilterC, member=Member)
cpdef Py_ssize_t send_to(list receivers, Py_ssize_t start, Py_ssize_t stop,
                         object event, object disclosed, object want_disclosure,
                         object receiver_filter) except -1


@cython.locals(batch=list, member=Member)
cpdef deliver_all(list pending)
