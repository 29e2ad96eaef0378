// Shared helpers for the wampy.js interop tests (run with `node --test`).
//
// The router URL comes from FASTWAMP_WS_URL (set by tests/interop/test_wampy.py).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import WebSocket from 'ws';
import { Wampy, Errors } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
// wampy 8 exports the serializers under "<Name>.js" subpaths only; its README's
// 'wampy/MsgpackSerializer' (no extension) fails with ERR_PACKAGE_PATH_NOT_EXPORTED.
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';

export { Errors };

export const REALM = process.env.FASTWAMP_REALM || 'realm1';
export const SERIALIZERS = ['json', 'msgpack'];
export const TEST_TIMEOUT = 15000;

export function routerUrl() {
    const url = process.env.FASTWAMP_WS_URL;
    if (!url) {
        throw new Error('FASTWAMP_WS_URL is not set: run these tests through tests/interop/test_wampy.py '
            + 'or set it to a running router, e.g. ws://127.0.0.1:8080/ws');
    }
    return url;
}

function makeSerializer(name) {
    if (name === 'json') return new JsonSerializer();
    if (name === 'msgpack') return new MsgpackSerializer();
    throw new Error(`unknown serializer ${name}`);
}

/** A URI no other test uses (wampy's strict URI check: [0-9a-z_] components). */
export function uniqueUri(name) {
    return `com.fastwamp.interop.js.${name}.u${randomBytes(6).toString('hex')}`;
}

/** Joins realm1 with the given serializer; returns the connected Wampy instance. */
export async function connect(serializer) {
    const wampy = new Wampy(routerUrl(), {
        realm: REALM,
        ws: WebSocket,
        serializer: makeSerializer(serializer),
        autoReconnect: false,
    });
    await wampy.connect();
    assert.equal(wampy.getOptions().serializer.protocol, serializer,
        `router chose another serializer than ${serializer}`);
    return wampy;
}

/**
 * Sessions opened by one test, all closed at its end:
 *   const p = peers(t); const a = await p.connect('json');
 */
export function peers(t) {
    const sessions = [];
    const p = {
        async connect(serializer) {
            const s = await connect(serializer);
            sessions.push(s);
            return s;
        },
        async closeAll() {
            await Promise.allSettled(sessions.map((s) => closeSession(s)));
        },
    };
    t.after(() => p.closeAll());
    return p;
}

/** GOODBYE if still joined; terminate the socket if the router does not close it in time. */
export async function closeSession(wampy, timeoutMs = 3000) {
    const ws = wampy._ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => ws.once('close', resolve));
    const timer = setTimeout(() => ws.terminate(), timeoutMs);
    try {
        if (wampy.getSessionId()) {
            await Promise.race([wampy.disconnect().catch(() => {}), closed]);
        } else {
            ws.close();
        }
        await closed;
    } finally {
        clearTimeout(timer);
    }
}

/** Close the TCP connection abruptly: no GOODBYE, no WebSocket close handshake. */
export function dropSession(wampy) {
    const ws = wampy._ws;
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.terminate();
    return closed;
}

/**
 * A round trip answered by the router itself (CALL of an unregistered URI):
 * every event the router sent to this session because of earlier messages
 * has arrived once it returns.
 */
export async function barrier(wampy) {
    await assert.rejects(wampy.call('com.fastwamp.interop.js.barrier.nobody_registered_this'), (e) => {
        assert.equal(e.errorUri, 'wamp.error.no_such_procedure');
        return true;
    });
}

/**
 * Normalizes decoded values for comparison: BigInt (msgpackr decodes uint64
 * as BigInt) to Number when safe, Buffer to plain Uint8Array.
 */
export function norm(value) {
    if (typeof value === 'bigint') {
        return Number.isSafeInteger(Number(value)) ? Number(value) : value;
    }
    if (value instanceof Uint8Array) {
        return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice();
    }
    if (Array.isArray(value)) return value.map(norm);
    if (value && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, norm(v)]));
    }
    return value;
}

/** Collects events; `await sink.wait(n)` resolves with the first n. */
export class EventSink {
    constructor() {
        this.events = [];
        this._waiters = [];
        this.handler = (ev) => {
            this.events.push({ argsList: ev.argsList, argsDict: ev.argsDict, details: ev.details });
            this._waiters = this._waiters.filter((w) => !w());
        };
    }

    wait(n = 1, timeoutMs = 5000) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                reject(new Error(`expected ${n} event(s) within ${timeoutMs} ms, got ${this.events.length}`));
            }, timeoutMs);
            const check = () => {
                if (this.events.length >= n) {
                    clearTimeout(timer);
                    resolve(this.events.slice(0, n));
                    return true;
                }
                return false;
            };
            if (!check()) this._waiters.push(check);
        });
    }
}

/** Resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON binary convention: "\0" + base64. */
export const jsonBytes = (bytes) => `\u0000${Buffer.from(bytes).toString('base64')}`;
