// The API the guide ("Beyond the Basics", /work/shared/reference/bondy-beyond-the-basics.txt)
// writes its examples in, implemented on top of wampy.js 8.0.2, so that the guide's code can be
// pasted into the tests unchanged and run against fastwamp.
//
// Why a facade at all: the guide's snippets do NOT run on wampy 8 verbatim. They use an older,
// callback-style wampy API (roughly wampy 6) with positional handler arguments:
//
//   guide                                                   wampy 8.0.2
//   ------------------------------------------------------  ---------------------------------------
//   register(uri, {rpc: fn, invoke, match, disclose_caller})  register(uri, fn, {invoke, match})
//     rpc(args, kwargs, details)                              fn({argsList, argsDict, details})
//     (an object {rpc: ...} as 2nd argument throws NoCallbackError in wampy 8)
//   call(uri, args, kwargs)                                 call(uri, {argsList, argsDict}, options)
//   call(uri, args, {...options, onSuccess, onError})       call(...) returns a Promise; onSuccess /
//                                                           onError are silently ignored, so the
//                                                           guide's `new Promise(... onSuccess:
//                                                           resolve, onError: reject)` never settles
//   onError(error): error.error === 'wamp.error.timeout'   rejection: CallError, URI in .errorUri
//                                                           (error.error is undefined)
//   publish(uri, args, kwargs, options)                     publish(uri, payload, options)
//   subscribe(uri, fn(args, kwargs, details))               subscribe(uri, fn({argsList, argsDict,
//   subscribe(uri, {onEvent, match, get_publisher})           details}), {match, get_retained})
//
// wampy 8 also drops options it does not know (REGISTER disclose_caller, SUBSCRIBE get_publisher)
// and falsy ones (PUBLISH exclude_me: false); they never reach the router. The shared test router
// runs with `disclosure = "always"` (Bondy's behaviour), so caller/publisher identification works
// without them; the Python tests check the "on_request" and "never" realms.
//
// The facade only translates call shapes. Everything the router sees is what wampy 8 sends.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import WebSocket from 'ws';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';

import { REALM, closeSession, dropSession, norm, routerUrl } from './helpers.mjs';

/** Keys of the guide's call() third argument that are callbacks, not kwargs. */
const CALLBACK_KEYS = new Set(['onSuccess', 'onError', 'onProgress']);
/** Keys of the guide's call() third argument that are CALL options, not kwargs. */
const CALL_OPTION_KEYS = new Set(['timeout', 'disclose_me', 'receive_progress']);

/** What the guide's onError callbacks receive (wampy 6 shape): the URI is `error.error`. */
export class GuideCallError extends Error {
    constructor(cause) {
        super(cause?.errorUri ? `WAMP error ${cause.errorUri}` : String(cause?.message ?? cause));
        this.name = 'GuideCallError';
        this.error = cause?.errorUri;
        this.details = cause?.details;
        this.argsList = cause?.argsList;
        this.argsDict = cause?.argsDict;
        this.cause = cause;
    }
}

/**
 * A serializer wrapper that lets a test change a message after wampy built it and before it is
 * encoded ("below wampy"). `rewrite(msg)` may modify the message array in place.
 */
class TappedSerializer {
    constructor(inner) {
        this.inner = inner;
        this.protocol = inner.protocol;
        this.isBinary = inner.isBinary;
        this.rewrites = [];
        this.sent = [];
        this.received = [];
    }

    encode(msg) {
        for (const rewrite of this.rewrites) rewrite(msg);
        this.sent.push(msg);
        return this.inner.encode(msg);
    }

    decode(data) {
        const msg = this.inner.decode(data);
        this.received.push(msg);
        return msg;
    }
}

function makeSerializer(name) {
    if (name === 'json') return new JsonSerializer();
    if (name === 'msgpack') return new MsgpackSerializer();
    throw new Error(`unknown serializer ${name}`);
}

/** One guide-style client: `wampy.register(...)`, `wampy.call(...)` as the guide writes them. */
export class GuideWampy {
    constructor(wampy, tap) {
        /** The real wampy 8 instance. */
        this.wampy = wampy;
        this.tap = tap;
    }

    getSessionId() {
        return this.wampy.getSessionId();
    }

    /** register(uri, {rpc: function(args, kwargs, details), invoke, match, ...options}) */
    register(uri, spec) {
        const { rpc, onSuccess, onError, ...options } = spec;
        const handler = ({ argsList, argsDict, details }) => rpc(argsList, argsDict, details);
        const p = this.wampy.register(uri, handler, options);
        return withCallbacks(p, onSuccess, onError);
    }

    unregister(uri) {
        return this.wampy.unregister(uri);
    }

    /**
     * call(uri, args, third): the guide passes either kwargs (`{order_id: 123}`) or options with
     * callbacks (`{timeout: 5000, onSuccess, onError}`, `{...kwargs, onSuccess, onError}`) as the
     * third argument. Callbacks and the option names the guide uses are taken out; whatever is
     * left is kwargs. Resolves with wampy's result object {details, argsList, argsDict}.
     */
    call(uri, args, third) {
        const options = {};
        const callbacks = {};
        let kwargs;
        for (const [key, value] of Object.entries(third ?? {})) {
            if (CALLBACK_KEYS.has(key)) callbacks[key] = value;
            else if (CALL_OPTION_KEYS.has(key) || key.startsWith('_')) options[key] = value;
            else (kwargs ??= {})[key] = value;
        }
        if (callbacks.onProgress) options.progress_callback = callbacks.onProgress;
        const payload = kwargs ? { argsList: args ?? [], argsDict: kwargs } : args;
        const p = this.wampy.call(uri, payload ?? null, options);
        return withCallbacks(p, callbacks.onSuccess, callbacks.onError);
    }

    /** publish(uri, args, kwargs, options) */
    publish(uri, args, kwargs, options) {
        const payload = kwargs && Object.keys(kwargs).length ? { argsList: args ?? [], argsDict: kwargs } : args;
        return this.wampy.publish(uri, payload, options);
    }

    /** subscribe(uri, function(args, kwargs, details)) or subscribe(uri, {onEvent, match, ...}) */
    subscribe(uri, spec) {
        const { onEvent, onSuccess, onError, ...options } = typeof spec === 'function' ? { onEvent: spec } : spec;
        const handler = ({ argsList, argsDict, details }) => onEvent(argsList, argsDict, details);
        const p = this.wampy.subscribe(uri, handler, Object.keys(options).length ? options : undefined);
        return withCallbacks(p, onSuccess, onError);
    }

    unsubscribe(subscriptionId) {
        return this.wampy.unsubscribe(subscriptionId);
    }
}

function withCallbacks(promise, onSuccess, onError) {
    if (!onSuccess && !onError) {
        return promise.catch((e) => { throw e.errorUri ? new GuideCallError(e) : e; });
    }
    return promise.then(
        (res) => (onSuccess ? onSuccess(res) : res),
        (e) => {
            const err = new GuideCallError(e);
            if (onError) return onError(err);
            throw err;
        },
    );
}

/** Joins realm1 and returns a GuideWampy (`.wampy` is the wampy 8 instance, `.tap` its serializer tap). */
export async function connectGuide(serializer) {
    const tap = new TappedSerializer(makeSerializer(serializer));
    const wampy = new Wampy(routerUrl(), {
        realm: REALM,
        ws: WebSocket,
        serializer: tap,
        autoReconnect: false,
    });
    await wampy.connect();
    assert.equal(wampy.getOptions().serializer.protocol, serializer);
    return new GuideWampy(wampy, tap);
}

/** Guide clients opened by one test, all closed when it ends. */
export function guidePeers(t) {
    const clients = [];
    t.after(() => Promise.allSettled(clients.map((c) => closeSession(c.wampy))));
    return {
        async connect(serializer) {
            const c = await connectGuide(serializer);
            clients.push(c);
            return c;
        },
    };
}

/** Close a guide client's TCP connection abruptly (the guide's "kill an instance"). */
export function kill(client) {
    return dropSession(client.wampy);
}

/**
 * A URI root standing in for the guide's `com.myapp`: `com.myapp_<hex>`. Same number of
 * components as the guide's URIs (so prefix and wildcard patterns keep their meaning), but
 * unique, so that tests sharing the router never see each other's registrations.
 */
export function myapp() {
    return `com.myapp_${randomBytes(5).toString('hex')}`;
}

/** Session ids are Numbers with JSON and BigInts with msgpack: compare by value. */
export function sameId(a, b) {
    return a !== undefined && a !== null && b !== undefined && b !== null && BigInt(a) === BigInt(b);
}

/** Resolves with the first truthy value of `pred()` (polled every 5 ms); rejects after timeoutMs. */
export async function until(pred, what, timeoutMs = 5000) {
    const t0 = Date.now();
    for (;;) {
        const v = pred();
        if (v) return v;
        if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
    }
}

/**
 * A round trip answered by the router itself: everything the router sent to this client
 * because of earlier messages has arrived once it returns.
 */
export async function barrier(client) {
    await assert.rejects(client.wampy.call('com.fastwamp.interop.js.barrier.nobody_registered_this'), (e) => {
        assert.equal(e.errorUri, 'wamp.error.no_such_procedure');
        return true;
    });
}

export { norm };
