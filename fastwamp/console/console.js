// fastwamp live console: a WAMP session of its own (JSON over WebSocket) that reads
// the meta API and fastwamp.router.get_stats once a second, and at once when a
// session joins or leaves or a registration or subscription changes.
// It shows only what its session may see. No dependencies.
"use strict";

const MSG = {
  HELLO: 1, WELCOME: 2, ABORT: 3, GOODBYE: 6, ERROR: 8, SUBSCRIBE: 32, SUBSCRIBED: 33,
  EVENT: 36, CALL: 48, RESULT: 50,
};
const REFRESH_MS = 1000;
const RECONNECT_MS = 2000;
const META_TOPICS = [
  "wamp.session.on_join", "wamp.session.on_leave",
  "wamp.registration.on_create", "wamp.registration.on_register",
  "wamp.registration.on_unregister", "wamp.registration.on_delete",
  "wamp.subscription.on_create", "wamp.subscription.on_subscribe",
  "wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete",
];

/** A minimal WAMP v2 client: caller and subscriber roles, JSON serializer. */
class WampSession {
  constructor(url, realm) {
    this.url = url;
    this.realm = realm;
    this.requestId = 0;
    this.pending = new Map();      // request id -> {resolve, reject}
    this.handlers = new Map();     // subscription id -> handler
    this.onclose = () => {};
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, ["wamp.2.json"]);
      this.ws = ws;
      let joined = false;
      ws.onopen = () => this.send([MSG.HELLO, this.realm, {
        agent: "fastwamp-console",
        roles: { caller: { features: {} }, subscriber: { features: {} } },
      }]);
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg[0] === MSG.WELCOME) {
          joined = true;
          this.id = msg[1];
          resolve(msg[2]);
        } else if (msg[0] === MSG.ABORT) {
          reject(new Error(`${msg[2]}: ${JSON.stringify(msg[1])}`));
        } else {
          this.dispatch(msg);
        }
      };
      ws.onerror = () => { if (!joined) reject(new Error(`cannot connect to ${this.url}`)); };
      ws.onclose = () => {
        for (const { reject: fail } of this.pending.values()) fail(new Error("connection closed"));
        this.pending.clear();
        if (joined) this.onclose();
        else reject(new Error(`cannot connect to ${this.url}`));
      };
    });
  }

  send(msg) { this.ws.send(JSON.stringify(msg)); }

  request(msg) {
    return new Promise((resolve, reject) => {
      this.pending.set(msg[1], { resolve, reject });
      this.send(msg);
    });
  }

  dispatch(msg) {
    const kind = msg[0];
    if (kind === MSG.RESULT || kind === MSG.SUBSCRIBED) {
      const waiter = this.pending.get(msg[1]);
      this.pending.delete(msg[1]);
      if (waiter) waiter.resolve(msg);
    } else if (kind === MSG.ERROR) {
      const waiter = this.pending.get(msg[2]);
      this.pending.delete(msg[2]);
      if (waiter) waiter.reject(new Error(`${msg[4]} ${JSON.stringify(msg[5] || [])}`));
    } else if (kind === MSG.EVENT) {
      const handler = this.handlers.get(msg[1]);
      if (handler) handler(msg[4] || [], msg[5] || {});
    } else if (kind === MSG.GOODBYE) {
      this.send([MSG.GOODBYE, {}, "wamp.close.goodbye_and_out"]);
      this.ws.close();
    }
  }

  /** The first positional result of calling `procedure`. */
  async call(procedure, args = []) {
    const result = await this.request([MSG.CALL, ++this.requestId, {}, procedure, args]);
    return (result[3] || [])[0];
  }

  async subscribe(topic, handler) {
    const reply = await this.request([MSG.SUBSCRIBE, ++this.requestId, {}, topic]);
    this.handlers.set(reply[2], handler);
  }
}

/** Settings from the query string: ?url=ws://HOST:PORT/ws&realm=REALM */
function settings() {
  const query = new URLSearchParams(location.search);
  const host = location.hostname || "127.0.0.1";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return {
    url: query.get("url") || `${scheme}://${host}:8080/ws`,
    realm: query.get("realm") || "realm1",
  };
}

function element(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows);
  document.getElementById(`${id}-count`).textContent = String(rows.length);
}

function row(cells, attrs = {}) {
  const tr = element("tr", null, attrs);
  for (const cell of cells) tr.append(cell instanceof Node ? cell : element("td", cell));
  return tr;
}

function formatRate(value) {
  if (value === null || value === undefined) return "–";
  return value >= 10 ? value.toFixed(0) : value.toFixed(1);
}

/** A cell listing the callees, each with its share of the invocations when known. */
function calleesCell(callees, sessions, invocations) {
  const td = element("td", null, { class: "callees" });
  const total = invocations
    ? callees.reduce((sum, id) => sum + (invocations[id] || 0), 0) : 0;
  for (const id of callees) {
    const who = sessions.get(id);
    const item = element("span", null, { class: "callee", "data-session": String(id) });
    item.append(element("span", who && who.authid ? `${id} (${who.authid})` : id));
    if (invocations) {
      const count = invocations[id] || 0;
      const share = total ? (100 * count) / total : 0;
      const bar = element("span", null, { class: "bar" });
      bar.style.width = `${share.toFixed(0)}%`;
      item.append(element("span", ` ${count} · ${share.toFixed(0)}%`, { class: "share" }), bar);
    }
    td.append(item);
  }
  return td;
}

class Console {
  constructor() {
    this.config = settings();
    this.sessionDetails = new Map();   // session id -> details (fixed for a session's life)
    this.registrationDetails = new Map();
    this.subscriptionDetails = new Map();
    this.previous = null;              // {time, stats} of the last refresh, for rates
    this.refreshing = false;
    this.again = false;
    document.getElementById("url").textContent = this.config.url;
    document.getElementById("realm").textContent = this.config.realm;
  }

  status(text, state) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.dataset.state = state;
  }

  async connect() {
    this.status("connecting", "connecting");
    const session = new WampSession(this.config.url, this.config.realm);
    try {
      await session.open();
    } catch (error) {
      this.status(`disconnected: ${error.message}`, "down");
      setTimeout(() => this.connect(), RECONNECT_MS);
      return;
    }
    this.session = session;
    this.previous = null;
    session.onclose = () => {
      clearInterval(this.timer);
      this.session = null;
      this.status("disconnected", "down");
      setTimeout(() => this.connect(), RECONNECT_MS);
    };
    this.status(`connected as session ${session.id}`, "up");
    const soon = () => this.refresh();
    for (const topic of META_TOPICS) {
      session.subscribe(topic, soon).catch((error) => this.problem(`${topic}: ${error.message}`));
    }
    this.timer = setInterval(soon, REFRESH_MS);
    await this.refresh();
  }

  problem(text) {
    document.getElementById("problem").textContent = text;
  }

  /** Read everything again; a refresh asked for while one runs runs after it. */
  async refresh() {
    if (!this.session) return;
    if (this.refreshing) { this.again = true; return; }
    this.refreshing = true;
    try {
      do {
        this.again = false;
        await this.readAndRender(this.session);
      } while (this.again && this.session);
      this.problem("");
    } catch (error) {
      this.problem(error.message);
    } finally {
      this.refreshing = false;
    }
  }

  async cached(cache, id, procedure) {
    if (!cache.has(id)) cache.set(id, await this.session.call(procedure, [id]));
    return cache.get(id);
  }

  async readAndRender(session) {
    const now = performance.now();
    const [stats, sessionIds, registrations, subscriptions] = await Promise.all([
      session.call("fastwamp.router.get_stats").catch(() => null),
      session.call("wamp.session.list"),
      session.call("wamp.registration.list"),
      session.call("wamp.subscription.list"),
    ]);
    const sessions = new Map();
    await Promise.all(sessionIds.map(async (id) => {
      try {
        sessions.set(id, await this.cached(this.sessionDetails, id, "wamp.session.get"));
      } catch { /* left meanwhile */ }
    }));
    for (const id of this.sessionDetails.keys()) {
      if (!sessions.has(id)) this.sessionDetails.delete(id);
    }
    const regIds = [].concat(registrations.exact, registrations.prefix, registrations.wildcard);
    const regs = (await Promise.all(regIds.map(async (id) => {
      try {
        const details = await this.cached(this.registrationDetails, id, "wamp.registration.get");
        const callees = await session.call("wamp.registration.list_callees", [id]);
        return { details, callees };
      } catch { return null; }
    }))).filter(Boolean);
    const subIds = [].concat(subscriptions.exact, subscriptions.prefix, subscriptions.wildcard);
    const subs = (await Promise.all(subIds.map(async (id) => {
      try {
        const details = await this.cached(this.subscriptionDetails, id, "wamp.subscription.get");
        const count = await session.call("wamp.subscription.count_subscribers", [id]);
        return { details, count };
      } catch { return null; }
    }))).filter(Boolean);
    const seconds = this.previous ? (now - this.previous.time) / 1000 : 0;
    this.render(stats, sessions, regs, subs, seconds);
    this.previous = { time: now, stats };
  }

  /** Change per second of a counter since the last refresh (null before there is one). */
  rate(path, stats, seconds) {
    if (!this.previous || !this.previous.stats || !seconds) return null;
    const read = (root) => path.reduce((node, key) => (node == null ? node : node[key]), root);
    const [now, before] = [read(stats), read(this.previous.stats)];
    if (typeof now !== "number" || typeof before !== "number") return null;
    return Math.max(0, now - before) / seconds;
  }

  render(stats, sessions, regs, subs, seconds) {
    const realm = (stats && stats.realm) || {};
    document.getElementById("router-sessions").textContent =
      stats ? String(stats.sessions) : "–";
    document.getElementById("realm-sessions").textContent = String(sessions.size);

    const counters = [];
    for (const [name, value] of Object.entries(stats || {})) {
      if (typeof value !== "number") continue;
      counters.push(row([name, value, formatRate(this.rate([name], stats, seconds))],
        { "data-counter": name }));
    }
    fillTable("counters", counters);

    fillTable("sessions", [...sessions.values()].sort((a, b) => a.session - b.session).map(
      (s) => {
        const transport = s.transport || {};
        const own = this.session && s.session === this.session.id;
        return row([
          own ? `${s.session} (this console)` : s.session, s.authid, s.authrole, s.authmethod,
          transport.type || transport.protocol || "", transport.peer || "",
        ], { "data-session": String(s.session) });
      }));

    // Per-registration counters, where the router reports them in get_stats:
    // registrations: {id: {calls, errors, callees: {session id: invocations}}}.
    const perRegistration = (stats && stats.registrations) || {};
    fillTable("registrations", regs.sort((a, b) => a.details.uri.localeCompare(b.details.uri))
      .map(({ details, callees }) => {
        const counts = perRegistration[details.id] || null;
        const calls = this.rate(["registrations", details.id, "calls"], stats, seconds);
        const errors = this.rate(["registrations", details.id, "errors"], stats, seconds);
        const errorRate = calls ? `${((100 * (errors || 0)) / calls).toFixed(1)}%` : "–";
        return row([
          details.uri, details.match, details.invoke,
          calleesCell(callees, sessions, counts && counts.callees),
          formatRate(calls), errorRate,
        ], { "data-uri": details.uri, "data-id": String(details.id),
          "data-callees": String(callees.length) });
      }));

    fillTable("subscriptions", subs.filter(({ details }) => !details.uri.startsWith("wamp."))
      .sort((a, b) => a.details.uri.localeCompare(b.details.uri))
      .map(({ details, count }) => row([details.uri, details.match, count],
        { "data-uri": details.uri })));
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.realm = realm.name || this.config.realm;
  }
}

window.addEventListener("DOMContentLoaded", () => {
  window.fastwampConsole = new Console();
  window.fastwampConsole.connect();
});
