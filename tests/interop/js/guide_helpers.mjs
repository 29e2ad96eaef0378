// Test helpers for the guide's examples (guide_rpc.test.mjs, guide_pubsub.test.mjs).
//
// The facade itself, the guide's callback-style wampy API ("Beyond the Basics",
// /work/shared/reference/bondy-beyond-the-basics.txt) on top of wampy.js 8.0.2, lives in
// examples/guide_api.mjs (read its header for the translation table and for what wampy 8 does
// not send); it gets wampy, ws and the serializers from here (dependency injection). These
// helpers add what the tests need around it: clients closed at the end of a test, abrupt
// disconnects, unique URI roots, polling and a round-trip barrier.
//
// The shared test router runs with `disclosure = "always"` (Bondy's behaviour), so caller and
// publisher identification work without the options wampy 8 drops; the Python tests check the
// "on_request" and "never" realms.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import WebSocket from 'ws';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';

import { createGuideApi } from '../../../examples/guide_api.mjs';
import { REALM, closeSession, dropSession, norm, routerUrl } from './helpers.mjs';

const guideApi = createGuideApi({
    Wampy,
    WebSocket,
    serializers: { json: JsonSerializer, msgpack: MsgpackSerializer },
});

export const { GuideWampy, GuideCallError } = guideApi;

/** Joins realm1 and returns a GuideWampy (`.wampy` is the wampy 8 instance, `.tap` its serializer tap). */
export async function connectGuide(serializer) {
    const client = await guideApi.connect(routerUrl(), REALM, { serializer });
    assert.equal(client.wampy.getOptions().serializer.protocol, serializer);
    return client;
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
