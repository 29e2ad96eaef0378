"""URIs that WAMP and fastwamp define, as constants whose values are the literal URIs."""

# Session close reasons
CLOSE_NORMAL = "wamp.close.normal"
CLOSE_GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
CLOSE_SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
CLOSE_KILLED = "wamp.close.killed"

# Errors
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_SUCH_REALM = "wamp.error.no_such_realm"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
NO_SUCH_SESSION = "wamp.error.no_such_session"
INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NOT_AUTHORIZED = "wamp.error.not_authorized"
CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
UNAVAILABLE = "wamp.error.unavailable"
NO_AVAILABLE_CALLEE = "wamp.error.no_available_callee"
FEATURE_NOT_SUPPORTED = "wamp.error.feature_not_supported"
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
OPTION_DISALLOWED_DISCLOSE_ME = "wamp.error.option_disallowed.disclose_me"
NO_MATCHING_AUTH_METHOD = "wamp.error.no_matching_auth_method"
#: No authmethod of HELLO is enabled on the realm (the URI Autobahn and Crossbar use;
#: the spec's is NO_MATCHING_AUTH_METHOD).
NO_AUTH_METHOD = "wamp.error.no_auth_method"
#: Wrong or unknown credentials (never says which).
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"

# fastwamp's own (the "wamp." namespace belongs to the spec)
QUOTA_EXCEEDED = "fastwamp.error.quota_exceeded"
#: A configured limit (sessions, registrations, subscriptions, testaments) is reached.
LIMIT_EXCEEDED = "fastwamp.error.limit_exceeded"
#: A message for this peer could not be encoded with its serializer.
UNENCODABLE = "fastwamp.error.unencodable"
