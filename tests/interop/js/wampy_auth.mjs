// wampy.js 8 authenticating to fastwamp: ticket (onChallenge), wampcra (salted and
// plain) and cryptosign, with wampy's bundled plugins ('wampy/wampcra.js',
// 'wampy/cryptosign.js') and the standalone 'wampy-cra' / 'wampy-cryptosign' packages.
// Run by tests/interop/test_auth_wampy.py, which starts a router with the auth realm
// and passes the URL, realm and credentials in the environment. Not a *.test.mjs file:
// the shared-router suite (test_wampy.py) does not run it.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import WebSocket from 'ws';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';
import * as bundledCra from 'wampy/wampcra.js';
import * as bundledCryptosign from 'wampy/cryptosign.js';
import * as standaloneCra from 'wampy-cra';
import * as standaloneCryptosign from 'wampy-cryptosign';

const env = process.env;
const URL = env.FASTWAMP_WS_URL;
const REALM = env.FASTWAMP_AUTH_REALM;
const TIMEOUT = 15000;

function serializer(name) {
    return name === 'json' ? new JsonSerializer() : new MsgpackSerializer();
}

/** Connects with the given auth options; returns the WELCOME details or throws. */
async function join(ser, options) {
    const wampy = new Wampy(URL, {
        realm: REALM, ws: WebSocket, serializer: serializer(ser), autoReconnect: false,
        ...options,
    });
    try {
        return await wampy.connect();
    } finally {
        await wampy.disconnect().catch(() => {});
    }
}

async function refused(ser, options) {
    await assert.rejects(join(ser, options), (err) => {
        const text = JSON.stringify(err, Object.getOwnPropertyNames(err));
        assert.match(text, /authentication_failed/, text);
        return true;
    });
}

function assertWelcome(details, authid, authrole, authmethod) {
    assert.equal(details.authid, authid);
    assert.equal(details.authrole, authrole);
    assert.equal(details.authmethod, authmethod);
    assert.equal(details.authprovider, 'static');
}

for (const ser of ['json', 'msgpack']) {
    test(`${ser}: ticket through onChallenge`, { timeout: TIMEOUT }, async () => {
        const ticket = (ticketValue) => ({
            authid: 'tina', authmethods: ['ticket'],
            onChallenge: (method) => { assert.equal(method, 'ticket'); return ticketValue; },
        });
        assertWelcome(await join(ser, ticket(env.FASTWAMP_TICKET)), 'tina', 'ticketeer', 'ticket');
        await refused(ser, ticket('wrong-ticket'));
    });

    test(`${ser}: wampcra (bundled plugin), salted and plain`, { timeout: TIMEOUT }, async () => {
        const cra = (authid, secret) => ({
            authid, authmethods: ['wampcra'], onChallenge: bundledCra.sign(secret),
        });
        assertWelcome(await join(ser, cra('carl', env.FASTWAMP_CRA_SECRET)),
            'carl', 'crafter', 'wampcra');
        assertWelcome(await join(ser, cra('paula', env.FASTWAMP_CRA_SECRET)),
            'paula', 'plain', 'wampcra');
        await refused(ser, cra('carl', 'not-it'));
        await refused(ser, cra('nobody', 'not-it'));
    });

    test(`${ser}: cryptosign (bundled plugin)`, { timeout: TIMEOUT }, async () => {
        const cs = (seed, pubkey) => ({
            authid: 'sam', authmethods: ['cryptosign'], authextra: { pubkey },
            authMode: 'auto', authPlugins: { cryptosign: bundledCryptosign.sign(seed) },
        });
        assertWelcome(await join(ser, cs(env.FASTWAMP_CS_SEED, env.FASTWAMP_CS_PUBKEY)),
            'sam', 'signer', 'cryptosign');
        await refused(ser, cs(env.FASTWAMP_CS_STRANGER_SEED, env.FASTWAMP_CS_STRANGER_PUBKEY));
    });
}

test('standalone wampy-cra and wampy-cryptosign packages work with wampy 8',
    { timeout: TIMEOUT }, async () => {
        assertWelcome(await join('json', {
            authid: 'carl', authmethods: ['wampcra'],
            onChallenge: standaloneCra.sign(env.FASTWAMP_CRA_SECRET),
        }), 'carl', 'crafter', 'wampcra');
        assertWelcome(await join('msgpack', {
            authid: 'sam', authmethods: ['cryptosign'],
            authextra: { pubkey: env.FASTWAMP_CS_PUBKEY },
            onChallenge: standaloneCryptosign.sign(env.FASTWAMP_CS_SEED),
        }), 'sam', 'signer', 'cryptosign');
    });
