# Augments broker.py, compiled as fastwamp.router.broker_c: PUBLISH→EVENT (the publish
# checks, the subscriptions' EVENTs and their Details, the turn accounting) runs on
# typed records (Broker, Subscription, Member).
cimport cython

from fastwamp._core.trie_c cimport UriTrie as UriTrieC
from fastwamp.router.member_c cimport Member as MemberRecord


@cython.final
cdef class Subscription:
    cdef public object id
    cdef public str uri
    cdef public int match
    cdef public str match_name
    cdef public dict subscribers
    cdef public str created
    cdef public set want_publisher
    cdef list _receivers

    cpdef list receivers(self)
    cpdef changed(self)


cdef class Broker:
    cdef public object options
    cdef public UriTrieC trie
    cdef public dict subscriptions
    cdef public object _ids
    cdef object _clock
    cdef object _events
    cdef object _limits
    cdef bint _strict
    cdef str _disclosure
    cdef public bint _retention
    cdef object _retained_max
    cdef object _retained_bytes_max
    cdef public object retained_bytes
    cdef object _max_subscriptions
    cdef object _max_list
    cdef object _max_uri_length
    cdef object _max_uri_components
    cdef object _backlog
    cdef bint _pump_scheduled
    cdef public object backlog_bytes
    cdef public dict _paused_publishers
    cdef Py_ssize_t _turn_room
    cdef Py_ssize_t _turn_events
    cdef set _turn_subs
    cdef bint _turn_reset_scheduled
    cdef public dict retained

    @cython.locals(acknowledge=bint, disclose=bint, publisher_details=object, payload=list,
                   options=dict)
    cpdef publish(self, MemberRecord publisher, list msg)

    @cython.locals(total=Py_ssize_t, n=Py_ssize_t, jobs=list, subs=list, sub=Subscription,
                   details=dict, receivers=list, disclosed=object, want=set, event=object)
    cpdef Py_ssize_t deliver(self, str topic, object publication, list payload,
                             object receiver_filter, object publisher=*, bint disclose=*,
                             object source=*) except -1

    @cython.locals(seen=set, receivers=Py_ssize_t, sub=Subscription)
    cdef bint _fits_turn(self, list subs, Py_ssize_t events) except -1
