# Augments dealer.py, compiled as fastwamp.router.dealer_c: CALL→INVOCATION and
# YIELD→RESULT run on typed records (Member, Invocation, Registration).
cimport cython

from fastwamp._core.callees_c cimport Callee as CalleeRecord
from fastwamp._core.callees_c cimport CalleeGroup as CalleeGroupC
from fastwamp._core.trie_c cimport UriTrie as UriTrieC
from fastwamp.router.member_c cimport Member as MemberRecord


@cython.final
cdef class CallStats:
    cdef public long calls
    cdef public double seconds
    cdef public list buckets
    cdef public dict errors
    cdef public dict callees
    cdef public long limit

    @cython.locals(errors=dict, callees=dict)
    cpdef record(self, double duration, object error, object callee_id)


@cython.final
cdef class Registration:
    cdef public object id
    cdef public str uri
    cdef public int match
    cdef public str match_name
    cdef public int policy
    cdef public str policy_name
    cdef public CalleeGroupC group
    cdef public dict flags
    cdef public str created
    cdef public CallStats stats


@cython.final
cdef class Invocation:
    cdef public object id
    cdef public MemberRecord caller
    cdef public object call_request
    cdef public MemberRecord callee
    cdef public CalleeRecord callee_ref
    cdef public Registration registration
    cdef public str procedure
    cdef public list payload
    cdef public bint disclose
    cdef public bint receive_progress
    cdef public object timeout_ms
    cdef public object timer
    cdef public set excluded
    cdef public bint interrupted
    cdef public bint streaming_in
    cdef public double started
    cdef public object shard_key


cdef class Dealer:
    cdef public object options
    cdef public UriTrieC trie
    cdef public dict registrations
    cdef object _ids
    cdef object _clock
    cdef object _events
    cdef object _limits
    cdef bint _strict
    cdef str _disclosure
    cdef dict _trustlevels
    cdef object _max_calls_in_flight
    cdef object _max_registrations
    cdef object _default_timeout_ms
    cdef object _max_timeout_ms
    cdef object _max_uri_length
    cdef object _max_uri_components
    cdef public long call_stats_limit
    cdef public dict callee_tiers
    cdef double _last_rank

    @cython.locals(reg=Registration, inv=Invocation, open_call=Invocation, streaming=bint,
                   callee=MemberRecord, wanted=long, callee_ref=CalleeRecord, tiers=list,
                   shard_key=object)
    cpdef call(self, MemberRecord caller, list msg)

    @cython.locals(callee=MemberRecord, reg=Registration, caller=MemberRecord, flags=long,
                   details=dict)
    cpdef _invoke(self, Invocation inv, CalleeRecord callee_ref)

    @cython.locals(callee=MemberRecord, started=double, reg=Registration)
    cpdef _close(self, Invocation inv, object error)

    cpdef Invocation _open_invocation(self, MemberRecord callee, object invocation_id, str what)

    @cython.locals(inv=Invocation)
    cpdef yield_(self, MemberRecord callee, list msg)

    @cython.locals(inv=Invocation)
    cpdef invocation_error(self, MemberRecord callee, list msg)
