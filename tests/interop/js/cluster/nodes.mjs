// Guide clients connected to chosen nodes of a fastwamp cluster.
//
// tests/interop/test_cluster.py starts a nats-server and three fastwamp nodes and runs this
// folder with FASTWAMP_CLUSTER_WS_URLS = the nodes' WebSocket URLs, comma-separated (node 0
// first). guide_helpers.mjs connects to FASTWAMP_WS_URL, read when a client is created, so
// clusterPeers() points it at the wanted node just before each connect.

import { guidePeers } from '../guide_helpers.mjs';
import { norm, sleep } from '../helpers.mjs';

export const NODE_URLS = (process.env.FASTWAMP_CLUSTER_WS_URLS ?? '').split(',').filter(Boolean);
if (NODE_URLS.length < 3) {
    throw new Error('FASTWAMP_CLUSTER_WS_URLS must name three nodes: run these tests through '
        + 'tests/interop/test_cluster.py');
}

/** Guide clients of one test, each on the node it names, all closed when the test ends. */
export function clusterPeers(t) {
    const peers = guidePeers(t);
    return {
        connect(node, serializer) {
            process.env.FASTWAMP_WS_URL = NODE_URLS[node]; // read synchronously by connectGuide
            return peers.connect(serializer);
        },
    };
}

async function pollUntil(read, want, what, timeoutMs = 8000) {
    const t0 = Date.now();
    let last;
    while ((last = await read()) !== want) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: ${last}, expected ${want}`);
        await sleep(20);
    }
}

/** Wait until `client`'s node counts `n` callees of (uri, match) in the whole cluster. */
export function untilCallees(client, uri, n, match = 'exact') {
    return pollUntil(() => count(client, 'registration', 'count_callees', uri, match), n,
        `${uri}: callees seen from this node`);
}

/** Wait until `client`'s node counts `n` subscribers of (uri, match) in the whole cluster. */
export function untilSubscribers(client, uri, n, match = 'exact') {
    return pollUntil(() => count(client, 'subscription', 'count_subscribers', uri, match), n,
        `${uri}: subscribers seen from this node`);
}

async function count(client, kind, procedure, uri, match) {
    const found = await client.wampy.call(`wamp.${kind}.lookup`, [uri, { match }]);
    const id = found.argsList[0];
    if (id === null || id === undefined) return 0;
    try {
        return norm((await client.wampy.call(`wamp.${kind}.${procedure}`, [id])).argsList[0]);
    } catch (e) {
        if (e.errorUri === `wamp.error.no_such_${kind}`) return 0; // gone meanwhile
        throw e;
    }
}
