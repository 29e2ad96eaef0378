// The guide's wampy API on wampy.js 8: run the code of "Beyond the Basics" unchanged.
//
// The guide writes its examples for an older, callback-style wampy (about wampy 6). They do not
// run on wampy 8 verbatim: handlers take positional (args, kwargs, details), register() takes
// {rpc: fn, invoke, match}, call() takes onSuccess/onError callbacks. This module translates
// those call shapes to wampy 8's promise API, and nothing else: what reaches the router is
// what wampy 8 sends.
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
// wampy 8 drops options it does not know and falsy ones (see examples/README.md, "Options wampy 8
// does not send"). A client made here has a serializer tap: `client.tap.rewrites.push(fn)` lets
// `fn(message)` change every outgoing message after wampy built it, e.g. to put REGISTER's
// `disclose_caller` or PUBLISH's `exclude_me: false` on the wire anyway.
//
// Nothing here imports wampy or ws: the application passes them in (dependency injection), so
// the module works with whatever copy the application installed:
//
//   import WebSocket from 'ws';
//   import { Wampy } from 'wampy';
//   import { JsonSerializer } from 'wampy/JsonSerializer.js';
//   import { createGuideApi } from './guide_api.mjs';
//
//   const guide = createGuideApi({ Wampy, WebSocket, serializers: { json: JsonSerializer } });
//   const wampy = await guide.connect('ws://127.0.0.1:8080/ws', 'realm1');   // a GuideWampy
//   await wampy.register('com.myapp.add', { rpc: (args) => args[0] + args[1], invoke: 'roundrobin' });

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
 * Wraps a wampy serializer: `rewrites` (functions of the message array, changing it in place)
 * run on every outgoing message before it is encoded; `sent` and `received` keep the messages.
 */
export class TappedSerializer {
    constructor(inner, { keep = true } = {}) {
        this.inner = inner;
        this.protocol = inner.protocol;
        this.isBinary = inner.isBinary;
        this.keep = keep;
        this.rewrites = [];
        this.sent = [];
        this.received = [];
    }

    encode(msg) {
        for (const rewrite of this.rewrites) rewrite(msg);
        if (this.keep) this.sent.push(msg);
        return this.inner.encode(msg);
    }

    decode(data) {
        const msg = this.inner.decode(data);
        if (this.keep) this.received.push(msg);
        return msg;
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

/** One client with the guide's API: `wampy.register(...)`, `wampy.call(...)` as the guide writes them. */
export class GuideWampy {
    /** @param wampy a connected wampy 8 instance; @param tap its TappedSerializer, if any. */
    constructor(wampy, tap) {
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
        return withCallbacks(this.wampy.register(uri, handler, options), onSuccess, onError);
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

    /** Leave the realm and close the connection. */
    disconnect() {
        return this.wampy.disconnect();
    }
}

/**
 * The guide API bound to the packages the application installed.
 *
 * @param Wampy        the Wampy class (`import { Wampy } from 'wampy'`)
 * @param WebSocket    a WebSocket implementation for Node (`import WebSocket from 'ws'`); leave it
 *                     out in a browser
 * @param serializers  serializer classes by protocol name, e.g. `{ json: JsonSerializer,
 *                     msgpack: MsgpackSerializer }` (default: wampy's own JSON)
 * @returns {{ connect, GuideWampy, GuideCallError, TappedSerializer }}
 */
export function createGuideApi({ Wampy, WebSocket, serializers = {} }) {
    if (typeof Wampy !== 'function') throw new TypeError('createGuideApi needs { Wampy }');

    /**
     * Join `realm` at `url` and return a GuideWampy. `serializer` names one of `serializers`;
     * `options` go to wampy as they are (e.g. authid, onChallenge, autoReconnect).
     */
    async function connect(url, realm, { serializer, keepMessages = true, ...options } = {}) {
        let tap;
        if (serializer !== undefined) {
            const Serializer = serializers[serializer];
            if (!Serializer) throw new Error(`no serializer class given for ${serializer}`);
            tap = new TappedSerializer(new Serializer(), { keep: keepMessages });
        }
        const wampy = new Wampy(url, {
            realm,
            autoReconnect: false,
            ...(WebSocket ? { ws: WebSocket } : {}),
            ...(tap ? { serializer: tap } : {}),
            ...options,
        });
        await wampy.connect();
        return new GuideWampy(wampy, tap);
    }

    return { connect, GuideWampy, GuideCallError, TappedSerializer };
}
