"""WAMP vocabulary: message codes, URIs, validation and serializers (no I/O)."""
